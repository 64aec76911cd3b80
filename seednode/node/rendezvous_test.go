package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/rendezvous"
)

// TestRendezvousReturnsOnlyAuthorizedDevices: the agent's key registers and
// is found; another key claiming to be the agent's device is refused with
// the reason and never listed.
func TestRendezvousReturnsOnlyAuthorizedDevices(t *testing.T) {
	n := startNode(t, Config{})
	seed := peer.AddrInfo{ID: n.Host().ID(), Addrs: n.Host().Addrs()}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	agentKey, _ := identity.Generate()
	agent := identity.DIDKey(agentKey.Public().(ed25519.PublicKey))
	register := func(key ed25519.PrivateKey, context string) error {
		h, err := p2p.NewHost(p2p.HostOptions{Key: key})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		if err := h.Connect(ctx, seed); err != nil {
			t.Fatal(err)
		}
		rec, err := rendezvous.NewRecord(agent, context, key, n.Host().Addrs()[:1], time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return rendezvous.Register(ctx, h, seed.ID, rec)
	}
	if err := register(agentKey, "laptop"); err != nil {
		t.Fatalf("the agent's own key: %v", err)
	}
	intruder, _ := identity.Generate()
	err := register(intruder, "phone")
	var refused *rendezvous.RefusedError
	if !errors.As(err, &refused) || !strings.Contains(refused.Reason, "not authorized for agent") {
		t.Fatalf("unlisted key: want a refusal with the reason, got %v", err)
	}
	h, _ := p2p.NewHost(p2p.HostOptions{Key: agentKey})
	defer h.Close()
	if err := h.Connect(ctx, seed); err != nil {
		t.Fatal(err)
	}
	recs, err := rendezvous.Lookup(ctx, h, seed.ID, agent)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Context != "laptop" {
		t.Fatalf("lookup: %+v", recs)
	}
}
