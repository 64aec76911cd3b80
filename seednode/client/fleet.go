package client

import (
	"errors"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/ticket"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// FleetSeeds are the seeds of the fleet that t describes that hold vault ns,
// best first: the device computes them as every pod of the fleet does,
// by rendezvous placement over the pods' ordinals. The agent's own vault
// and its project vaults are placed by the agent (its DID), any other vault
// by its namespace ID (a vault an agent asked for by name is placed by the
// agent too; AskFleet remembered its seeds when it was admitted).
//
// A ticket lists at most its fleet's first ticket.MaxPeers pods: a home pod
// beyond them is left out, and when none is listed the error says how to
// learn the seeds instead.
func (h *Home) FleetSeeds(t ticket.FleetTicket, ns vault.NamespaceID) ([]peer.AddrInfo, error) {
	key, err := h.placementKey(ns)
	if err != nil {
		return nil, err
	}
	var out []peer.AddrInfo
	for _, o := range fleet.Top(key, t.Pods, t.Replicas) {
		if o < len(t.Peers) {
			out = append(out, t.Peers[o])
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("fleet %s: none of the seeds holding vault %s is listed in its ticket (it lists %d of %d pods); `seedfleet host status` names them",
			t.Name, ns.Short(), len(t.Peers), t.Pods)
	}
	return out, nil
}

// placementKey is what a fleet places ns by: the agent's DID for its own
// vault and its projects, else the namespace ID.
func (h *Home) placementKey(ns vault.NamespaceID) (string, error) {
	a, err := h.Agent()
	if errors.Is(err, ErrNoAgent) {
		return ns.String(), nil
	}
	if err != nil {
		return "", err
	}
	if ns == a.Namespace {
		return a.DID, nil
	}
	projects, err := h.Projects()
	if err != nil && !errors.Is(err, ErrNoAgent) {
		return "", err
	}
	if slices.ContainsFunc(projects, func(p Project) bool { return p.Namespace == ns }) {
		return a.DID, nil
	}
	return ns.String(), nil
}

// AddAgentSeeds adds seeds to the agent's seeds (after those it has), so
// that `sync agent` reaches them and devices paired later learn them.
func (h *Home) AddAgentSeeds(seeds []peer.AddrInfo) error {
	a, err := h.Agent()
	if err != nil {
		return err
	}
	have := slices.Clone(a.Seeds)
	for _, s := range seeds {
		if len(s.Addrs) == 0 {
			continue // nothing to dial
		}
		full, err := peer.AddrInfoToP2pAddrs(&s)
		if err != nil {
			return err
		}
		for _, addr := range full {
			if !slices.Contains(have, addr.String()) {
				have = append(have, addr.String())
			}
		}
	}
	if len(have) == len(a.Seeds) {
		return nil
	}
	return h.SetAgentSeeds(have)
}
