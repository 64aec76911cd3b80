//go:build cgo

package state

import (
	"slices"
	"strings"

	"github.com/automerge/automerge-go"
)

func sortStrings(s []string) { slices.Sort(s) }

func equalStrings(a, b []string) bool { return slices.Equal(a, b) }

func sameHeads(a, b []automerge.ChangeHash) bool { return slices.Equal(a, b) }

// joinOps is a change's message: what the transaction did, for history.
func joinOps(ops []string) string {
	const maxMessage = 200
	s := strings.Join(ops, "; ")
	if len(s) > maxMessage {
		s = s[:maxMessage] + "…"
	}
	return s
}
