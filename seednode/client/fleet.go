package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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

// fleetsPath holds the fleets that accepted this home's hosting requests,
// by subject ("agent", or a plain vault's namespace ID): the ticket each
// was asked through.
func (h *Home) fleetsPath() string { return filepath.Join(h.Dir, "fleets.json") }

// RememberFleet records t as the fleet hosting subject ("agent" or a
// namespace ID), so that later `host status`, `host release` and `host
// request` on this device need no --fleet.
func (h *Home) RememberFleet(subject string, t ticket.FleetTicket) error {
	fleets, err := h.rememberedFleets()
	if err != nil {
		return err
	}
	if fleets[subject] == t.String() {
		return nil
	}
	fleets[subject] = t.String()
	return writeJSON(h.fleetsPath(), fleets)
}

// RememberedFleet returns the fleet RememberFleet recorded for subject;
// ok is false if there is none.
func (h *Home) RememberedFleet(subject string) (t ticket.FleetTicket, ok bool, err error) {
	fleets, err := h.rememberedFleets()
	if err != nil {
		return t, false, err
	}
	s, ok := fleets[subject]
	if !ok {
		return t, false, nil
	}
	if t, err = ticket.ParseFleetTicket(s); err != nil {
		return t, false, fmt.Errorf("%s: the fleet recorded for %s: %w", h.fleetsPath(), subject, err)
	}
	return t, true, nil
}

func (h *Home) rememberedFleets() (map[string]string, error) {
	fleets := map[string]string{}
	raw, err := os.ReadFile(h.fleetsPath())
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fleets, nil
	case err != nil:
		return nil, err
	}
	if err := json.Unmarshal(raw, &fleets); err != nil {
		return nil, fmt.Errorf("%s is damaged (%w): remove it, and pass --fleet to the host commands", h.fleetsPath(), err)
	}
	return fleets, nil
}
