package relay

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/seedfleet/seedfleet/seednode/config"
)

// ACL decides who may reserve and whom circuits may reach, by the relay
// mode: config.RelayAgents (only keys of agents this seed serves: configured
// keys and the authors of hosted vaults) or config.RelayPublic (anyone, within
// the per-IP and per-ASN limits). It remembers why it refused each peer, for
// InfoProtocol.
type ACL struct {
	mode config.RelayMode

	mu      sync.RWMutex
	allowed map[peer.ID]bool
	refused map[peer.ID]string // bounded: cleared when it grows past maxRefusals
}

const maxRefusals = 4096

// NewACL returns an ACL for mode (New refuses any mode but config.RelayAgents
// and config.RelayPublic).
func NewACL(mode config.RelayMode) *ACL {
	return &ACL{mode: mode, allowed: map[peer.ID]bool{}, refused: map[peer.ID]string{}}
}

// Mode is the relay mode the ACL enforces.
func (a *ACL) Mode() config.RelayMode { return a.mode }

// SetAllowed replaces the peers allowed in agents mode.
func (a *ACL) SetAllowed(ids []peer.ID) {
	m := make(map[peer.ID]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	a.mu.Lock()
	a.allowed = m
	a.mu.Unlock()
}

// Allow adds peers allowed in agents mode.
func (a *ACL) Allow(ids ...peer.ID) {
	a.mu.Lock()
	for _, id := range ids {
		a.allowed[id] = true
	}
	a.mu.Unlock()
}

// Allowed reports whether p may use the relay.
func (a *ACL) Allowed(p peer.ID) bool {
	if a.mode == config.RelayPublic {
		return true
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.allowed[p]
}

// AllowedCount is how many peers are allowed in agents mode.
func (a *ACL) AllowedCount() int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return len(a.allowed)
}

func (a *ACL) refuse(p peer.ID, why string) {
	a.mu.Lock()
	if len(a.refused) >= maxRefusals {
		clear(a.refused)
	}
	a.refused[p] = why
	a.mu.Unlock()
}

// Reason returns why p was last refused ("" if it was not).
func (a *ACL) Reason(p peer.ID) string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.refused[p]
}

// AllowReserve implements relayv2.ACLFilter.
func (a *ACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool {
	if a.Allowed(p) {
		return true
	}
	a.refuse(p, "this seed relays only for devices of the agents it serves; your key "+p.String()+
		" is not in a hosted vault or the seed's allowed keys (ask the operator to add it, or use a seed in public mode)")
	return false
}

// AllowConnect implements relayv2.ACLFilter: in agents mode both ends must
// be known devices.
func (a *ACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dest peer.ID) bool {
	if a.Allowed(src) && a.Allowed(dest) {
		return true
	}
	a.refuse(src, "this seed relays only between devices of the agents it serves")
	return false
}
