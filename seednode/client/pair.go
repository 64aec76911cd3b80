package client

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/pairing"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// welcome is what the approving device sends a newly paired one (over the
// pairing channel, authenticated by the code): which agent it now acts for,
// where that agent's vault lives, and the seeds to sync it through.
type welcome struct {
	DID       string   `json:"did"`
	Namespace string   `json:"namespace"`
	Device    string   `json:"device"`
	Seeds     []string `json:"seeds,omitempty"`
}

const maxWelcomeSeeds = 16

func parseWelcome(raw []byte) (*welcome, vault.NamespaceID, error) {
	var w welcome
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, vault.NamespaceID{}, fmt.Errorf("pairing welcome: %w", err)
	}
	if _, err := identity.ParseDIDKey(w.DID); err != nil {
		return nil, vault.NamespaceID{}, fmt.Errorf("pairing welcome: %w", err)
	}
	ns, err := vault.ParseNamespaceID(w.Namespace)
	if err != nil {
		return nil, ns, fmt.Errorf("pairing welcome: %w", err)
	}
	if len(w.Seeds) > maxWelcomeSeeds {
		return nil, ns, fmt.Errorf("pairing welcome: %d seeds (at most %d)", len(w.Seeds), maxWelcomeSeeds)
	}
	for _, s := range w.Seeds {
		if _, err := p2p.ParsePeerAddr(s); err != nil {
			return nil, ns, fmt.Errorf("pairing welcome: seed %q: %w", s, err)
		}
	}
	return &w, ns, nil
}

// AwaitPairing runs on a new device: it waits on hst for a trusted device to
// approve it with code, then records the agent it now acts for. The caller
// syncs the agent vault from a seed next.
func (h *Home) AwaitPairing(ctx context.Context, hst host.Host, code pairing.Code, name string) (*AgentInfo, error) {
	if a, err := h.Agent(); err == nil {
		return nil, fmt.Errorf("this device already acts for agent %s", a.DID)
	} else if !errors.Is(err, ErrNoAgent) {
		return nil, err
	}
	if id, err := identity.PeerID(h.Key.Public().(ed25519.PublicKey)); err != nil || hst.ID() != id {
		return nil, errors.New("pairing host does not use this device's key")
	}
	raw, _, err := pairing.Await(ctx, hst, code, pairing.Request{Name: name})
	if err != nil {
		return nil, err
	}
	w, ns, err := parseWelcome(raw)
	if err != nil {
		return nil, err
	}
	if err := h.JoinAgent(w.DID, ns, w.Device, w.Seeds); err != nil {
		return nil, err
	}
	return h.Agent()
}

// ApprovePairing runs on the device that holds the agent's root key: it
// checks code with the new device, adds the device's key to the agent
// document with the name it asked for, seals it the content keys, pushes
// both to the agent's seeds (so the new device finds them there) and sends
// the welcome.
func (h *Home) ApprovePairing(ctx context.Context, hst host.Host, newDevice peer.AddrInfo, code pairing.Code, progress func(string)) (pairing.Request, ed25519.PublicKey, error) {
	a, err := h.Agent()
	if err != nil {
		return pairing.Request{}, nil, err
	}
	if a.Root == nil {
		return pairing.Request{}, nil, ErrNotRootDevice
	}
	if progress == nil {
		progress = func(string) {}
	}
	decide := func(ctx context.Context, req pairing.Request, device ed25519.PublicKey) ([]byte, error) {
		progress(fmt.Sprintf("code matched; adding %s as %q", identity.DIDKey(device), req.Name))
		if _, err := h.ApproveDevice(req.Name, device); err != nil {
			return nil, err
		}
		if err := h.pushToSeeds(ctx, a.Seeds, progress); err != nil {
			return nil, err
		}
		return json.Marshal(welcome{DID: a.DID, Namespace: a.Namespace.String(), Device: req.Name, Seeds: a.Seeds})
	}
	return pairing.Approve(ctx, hst, newDevice, code, decide)
}

// pushToSeeds pushes the agent's document to each of seeds. The new device
// syncs from the first seed that serves it, so one seed that took the
// document is enough: a seed that is down learns it from the other replicas
// or at the agent's next sync, and pairing does not wait for it. With no
// seed reached the approval fails, since the new device could not sync.
func (h *Home) pushToSeeds(ctx context.Context, seeds []string, progress func(string)) error {
	var errs []error
	for _, s := range seeds {
		progress("pushing the agent document to seed " + s)
		if err := h.PushAgent(ctx, s); err != nil {
			progress(fmt.Sprintf("seed %s could not be updated: %v", s, err))
			errs = append(errs, fmt.Errorf("seed %s: %w", s, err))
		}
	}
	if len(seeds) > 0 && len(errs) == len(seeds) {
		return fmt.Errorf("the device was approved, but none of the agent's seeds could be updated, so it could not sync (%w): sync to a seed, then approve again", errors.Join(errs...))
	}
	return nil
}

// PushAgent syncs the agent vault and every project vault of its catalog
// with the peer at addr (after an approval or a revocation, so that seeds
// enforce the new document everywhere).
func (h *Home) PushAgent(ctx context.Context, addr string) error {
	a, err := h.Agent()
	if err != nil {
		return err
	}
	vaults := []vault.NamespaceID{a.Namespace}
	projects, err := h.Projects()
	if err != nil {
		return err
	}
	for _, p := range projects {
		vaults = append(vaults, p.Namespace)
	}
	for _, ns := range vaults {
		if _, err := h.Sync(ctx, ns, addr, SyncOptions{}); err != nil {
			return fmt.Errorf("vault %s: %w", ns.Short(), err)
		}
	}
	return nil
}
