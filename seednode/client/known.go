package client

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/seedfleet/seedfleet/seednode/vault"
)

// ErrUnknownVault: the home holds neither the vault's key nor any of its
// entries, and never synced it. Mostly a mistyped namespace or --home.
var ErrUnknownVault = errors.New("this device home does not know the vault")

// ErrBadVaultName: a vault name is neither "agent", "agent/PROJECT" nor a
// namespace ID.
var ErrBadVaultName = errors.New(`a vault is "agent", "agent/PROJECT" or a namespace ID`)

// KnownVault is a vault this home has met.
type KnownVault struct {
	Namespace vault.NamespaceID
	// CanWrite: the home holds the vault's namespace key (it created the
	// vault, or imported a write ticket).
	CanWrite bool
}

// KnownVaults lists the vaults this home created or holds a key for, and
// those with entries in its local replica, in namespace order.
func (h *Home) KnownVaults() ([]KnownVault, error) {
	owned, err := h.OwnedVaults()
	if err != nil {
		return nil, err
	}
	stored, err := h.Store.Namespaces()
	if err != nil {
		return nil, err
	}
	out := make([]KnownVault, 0, len(owned)+len(stored))
	for _, ns := range owned {
		out = append(out, KnownVault{Namespace: ns, CanWrite: true})
	}
	for _, ns := range stored {
		if !slices.Contains(owned, ns) {
			out = append(out, KnownVault{Namespace: ns})
		}
	}
	slices.SortFunc(out, func(a, b KnownVault) int { return bytes.Compare(a.Namespace[:], b.Namespace[:]) })
	return out, nil
}

// CheckKnown returns an error wrapping ErrUnknownVault unless this home
// knows ns: it holds its key or entries of it, synced it before, or it is
// the agent's vault or one of its projects.
func (h *Home) CheckKnown(ns vault.NamespaceID) error {
	known, err := h.KnownVaults()
	if err != nil {
		return err
	}
	if slices.ContainsFunc(known, func(k KnownVault) bool { return k.Namespace == ns }) {
		return nil
	}
	if peers, err := h.readRemembered(ns); err == nil && len(peers) > 0 {
		return nil
	}
	if h.IsPrivate(ns) {
		return nil
	}
	if a, err := h.Agent(); err == nil && a.Namespace == ns {
		return nil
	}
	return fmt.Errorf("vault %s: %w (no key, no entries, never synced)", ns.Short(), ErrUnknownVault)
}

// AgentVaultName names the agent's private vault wherever a namespace ID
// is expected; "agent/PROJECT" names a project vault of its catalog.
const AgentVaultName = "agent"

// ResolveVault reads a vault name as the device's commands and its local
// API take it: a namespace ID, "agent" (the agent's vault) or
// "agent/PROJECT" (a project vault of its catalog). A namespace ID the home
// does not know is refused (an error wrapping ErrUnknownVault): reading it
// would find nothing and writing it would fail without saying why. A
// project the catalog lacks wraps ErrNoProject, a home acting for no agent
// ErrNoAgent, and anything else ErrBadVaultName.
func (h *Home) ResolveVault(name string) (vault.NamespaceID, error) {
	if project, ok := strings.CutPrefix(name, AgentVaultName+"/"); ok {
		p, err := h.Project(project)
		return p.Namespace, err
	}
	if name == AgentVaultName {
		a, err := h.Agent()
		if err != nil {
			return vault.NamespaceID{}, err
		}
		return a.Namespace, nil
	}
	ns, err := vault.ParseNamespaceID(name)
	if err != nil {
		return ns, fmt.Errorf("%w: %w", ErrBadVaultName, err)
	}
	return ns, h.CheckKnown(ns)
}
