package state

import (
	"slices"
	"strings"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// Documents lists the names of the documents of the private vault ns that
// this device holds a change or a snapshot of, sorted. It decrypts the
// names of every state entry: a listing, not a per-request lookup.
func Documents(h *client.Home, ns vault.NamespaceID) ([]string, error) {
	vals, err := h.ListPrivate(ns, keyRoot, 0)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, pv := range vals {
		if name, ok := documentOf(pv.Path); ok && pv.Err == nil && !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// documentOf is the document a change or snapshot path belongs to.
func documentOf(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, keyRoot)
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, snapshotSuffix)
	if !ok {
		i := strings.LastIndex(rest, changeSegment)
		if i < 0 {
			return "", false
		}
		name = rest[:i]
	}
	return name, CheckName(name) == nil
}
