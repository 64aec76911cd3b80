package node

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// refreshAllowed rebuilds the agent index (hosted vaults' agent documents)
// and the relay's allowed keys: the configured keys, the active keys of hosted
// agents' documents, and the authors of hosted vaults not bound to an agent,
// leaving out the vaults placed with NoRelay.
// It runs with garbage collection and after an agent document arrives.
func (n *Node) refreshAllowed() error {
	var ids []peer.ID
	if n.acl != nil {
		ids = append(ids, n.configuredAllowed...)
	}
	agents := map[string]*identity.AgentDocument{}
	seen := map[vault.AuthorID]bool{}
	allow := func(k ed25519.PublicKey) {
		if a := vault.AuthorID(k); !seen[a] {
			seen[a] = true
			if id, err := identity.PeerID(k); err == nil {
				ids = append(ids, id)
			}
		}
	}
	for _, ns := range n.hosted.List() {
		relayed := !n.vaultOptions(ns).NoRelay
		doc, err := n.store.AgentDocument(ns)
		if err != nil {
			// A damaged vault must not stop the others being served: the
			// store reported it, and integrity quarantines it.
			n.log.Warn("agent document of a hosted vault unreadable; its devices are left out until it is repaired",
				"vault", ns.Short(), "err", err)
			continue
		}
		if doc != nil {
			if held := agents[string(doc.Root)]; held == nil || held.Version < doc.Version {
				agents[string(doc.Root)] = doc
			}
			if relayed {
				for _, k := range doc.ActiveKeys() {
					allow(k)
				}
			}
			continue
		}
		if n.acl == nil || !relayed {
			continue
		}
		err = n.store.ForEach(ns, func(e *vault.SignedEntry) error {
			allow(e.Author.PublicKey())
			return nil
		})
		if err != nil {
			n.log.Warn("authors of a hosted vault unreadable; they are left out until it is repaired", "vault", ns.Short(), "err", err)
		}
	}
	n.agentsMu.Lock()
	n.agentDocs = agents
	n.agentsMu.Unlock()
	if n.acl != nil {
		n.acl.SetAllowed(ids)
	}
	n.setProvided()
	return nil
}

// agentDocument returns the newest document of the agent with root key root
// among hosted vaults, or nil.
func (n *Node) agentDocument(root ed25519.PublicKey) *identity.AgentDocument {
	n.agentsMu.RLock()
	defer n.agentsMu.RUnlock()
	return n.agentDocs[string(root)]
}

// agentAuthorizer decides which device keys act for an agent: the keys the
// agent's document lists (and the root key itself), from the hosted vaults
// bound to that agent. For an agent none of whose vaults is hosted here,
// only the agent's own root key may register.
type agentAuthorizer struct{ n *Node }

func (a agentAuthorizer) Authorized(agentDID string, device ed25519.PublicKey) error {
	root, err := identity.ParseDIDKey(agentDID)
	if err != nil {
		return fmt.Errorf("agent DID: %w", err)
	}
	doc := a.n.agentDocument(root)
	if doc == nil {
		if !root.Equal(device) {
			return fmt.Errorf("key %s is not authorized for agent %s: this seed hosts no vault of that agent, so it accepts only the agent's own key",
				identity.DIDKey(device), agentDID)
		}
		return nil
	}
	return doc.Authorized(device, uint64(time.Now().UnixMicro()))
}
