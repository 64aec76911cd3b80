package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/seednode/hosting"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/ticket"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// HostingAsk is what a device asks a fleet for.
type HostingAsk struct {
	Op    hosting.Op
	Fleet string // the fleet's name (from its ticket)
	// Vault, if set, makes the request about that plain vault, signed by its
	// namespace key (which this home must hold); otherwise it is about the
	// home's agent, signed by its root key or, on other devices, by this
	// device's key with the agent document attached.
	Vault *vault.NamespaceID
	// Vaults are the vaults to host or release. Empty for an agent's host
	// request: the agent's own vault and its project vaults.
	Vaults       []vault.NamespaceID
	QuotaBytes   uint64 // 0: the fleet's default
	QuotaEntries uint64 // 0: the fleet's default
	Invite       string // an invite ticket, for fleets that admit by invite
}

// HostingRequest builds and signs a hosting request from this home.
func (h *Home) HostingRequest(ask HostingAsk) (*hosting.Request, error) {
	r := &hosting.Request{Op: ask.Op, Fleet: ask.Fleet, Invite: ask.Invite, Time: time.Now()}
	if _, err := rand.Read(r.Nonce[:]); err != nil {
		return nil, err
	}
	var key ed25519.PrivateKey
	vaults := ask.Vaults
	if ask.Vault != nil {
		nsKey, err := h.NamespaceKey(*ask.Vault)
		if err != nil {
			return nil, fmt.Errorf("a plain vault's request is signed by its namespace key, which this device lacks: %w", err)
		}
		r.Kind, r.Subject, key = hosting.SubjectVault, ed25519.PublicKey(ask.Vault[:]), nsKey
		if ask.Op == hosting.OpHost || ask.Op == hosting.OpRelease {
			vaults = []vault.NamespaceID{*ask.Vault}
		}
	} else {
		var err error
		if key, err = h.agentSigner(r); err != nil {
			return nil, err
		}
		if len(vaults) == 0 && ask.Op == hosting.OpHost {
			if vaults, err = h.agentVaults(); err != nil {
				return nil, err
			}
		}
	}
	for _, ns := range vaults {
		r.Vaults = append(r.Vaults, hosting.VaultAsk{Namespace: ns, QuotaBytes: ask.QuotaBytes, QuotaEntries: ask.QuotaEntries})
	}
	r.Sign(key)
	return r, nil
}

// agentSigner fills in the request's agent and returns the key that signs
// it: the root key where this device holds it, else this device's key, with
// the agent document that lists it.
func (h *Home) agentSigner(r *hosting.Request) (ed25519.PrivateKey, error) {
	a, err := h.Agent()
	if err != nil {
		return nil, err
	}
	root, err := identity.ParseDIDKey(a.DID)
	if err != nil {
		return nil, fmt.Errorf("agent.json: %w", err)
	}
	r.Kind, r.Subject = hosting.SubjectAgent, root
	if a.Root != nil {
		return a.Root, nil
	}
	doc, err := h.signedAgentDocument(a)
	if err != nil {
		return nil, err
	}
	r.AgentDoc = doc
	return h.Key, nil
}

// signedAgentDocument is the agent document as its root key signed it, from
// the agent's vault.
func (h *Home) signedAgentDocument(a *AgentInfo) ([]byte, error) {
	items, err := h.Store.List(a.Namespace, vault.AgentDocKey, 0)
	if err != nil {
		return nil, err
	}
	var best []byte
	var version uint64
	for _, it := range items {
		d, err := identity.ParseAgentDocument(it.Content)
		if err != nil || d.DID() != a.DID {
			continue
		}
		if best == nil || d.Version > version {
			best, version = it.Content, d.Version
		}
	}
	if best == nil {
		return nil, fmt.Errorf("this device has no copy of the agent document yet: sync the agent's vault first (seedfleet sync)")
	}
	return best, nil
}

// agentVaults are the agent's own vault and its project vaults.
func (h *Home) agentVaults() ([]vault.NamespaceID, error) {
	a, err := h.Agent()
	if err != nil {
		return nil, err
	}
	out := []vault.NamespaceID{a.Namespace}
	projects, err := h.Projects()
	if err != nil && !errors.Is(err, ErrNoAgent) {
		return nil, err
	}
	for _, p := range projects {
		out = append(out, p.Namespace)
	}
	return out, nil
}

// FleetTicket asks the first seed that answers for its fleet's ticket.
func (h *Home) FleetTicket(ctx context.Context, seeds []peer.AddrInfo) (ticket.FleetTicket, error) {
	hst, err := p2p.NewHost(p2p.HostOptions{Key: h.Key})
	if err != nil {
		return ticket.FleetTicket{}, err
	}
	defer hst.Close()
	var errs []error
	for _, s := range seeds {
		t, err := hosting.FleetInfo(ctx, hst, h.withKnownAddrs(s))
		if err == nil {
			return t, nil
		}
		errs = append(errs, err)
	}
	return ticket.FleetTicket{}, fmt.Errorf("no seed told its fleet: %w", errors.Join(errs...))
}

// AskFleet sends req to the fleet's seeds in turn until one answers, and
// remembers the seeds an accepted host request names for each vault, so
// sync finds them first. A refusal is an answer (see Answer.Err), not an
// error; the error is for a fleet none of whose seeds could be reached.
func (h *Home) AskFleet(ctx context.Context, seeds []peer.AddrInfo, req *hosting.Request) (*hosting.Answer, error) {
	hst, err := p2p.NewHost(p2p.HostOptions{Key: h.Key})
	if err != nil {
		return nil, err
	}
	defer hst.Close()
	var errs []error
	for _, s := range seeds {
		ans, err := hosting.Ask(ctx, hst, h.withKnownAddrs(s), req)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		_ = h.rememberWorkingAddrs(hst, s.ID)
		if ans.OK() && req.Op == hosting.OpHost {
			for _, v := range req.Vaults {
				for i := len(ans.Seeds) - 1; i >= 0; i-- { // the best-ranked ends up first
					_ = h.rememberPeer(vault.NamespaceID(v.Namespace), ans.Seeds[i])
				}
			}
		}
		return ans, nil
	}
	return nil, fmt.Errorf("no seed of the fleet answered: %w", errors.Join(errs...))
}
