package client

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/rendezvous"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

func TestRecordAddrs(t *testing.T) {
	own := []ma.Multiaddr{
		ma.StringCast("/ip4/0.0.0.0/tcp/4001"), // not dialable from anywhere
		ma.StringCast("/ip4/127.0.0.1/tcp/4001"),
		ma.StringCast("/ip6/::/udp/4001/quic-v1"),
		ma.StringCast("/ip4/127.0.0.1/tcp/4001"), // twice
	}
	circuit := ma.StringCast("/ip4/127.0.0.1/tcp/7400/p2p/12D3KooWC7xY5KTZd3ExxLugeo3VzaihJdEYXdPoeq1rgQrThwby/p2p-circuit")
	got := recordAddrs(own, []ma.Multiaddr{circuit})
	if len(got) != 2 || got[0].String() != "/ip4/127.0.0.1/tcp/4001" || !got[1].Equal(circuit) {
		t.Fatalf("record addresses %v, want the loopback one and the circuit", got)
	}
	var many []ma.Multiaddr
	for i := range 40 {
		many = append(many, ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 1000+i)))
	}
	if got := recordAddrs(many, []ma.Multiaddr{circuit}); len(got) != rendezvous.MaxAddrs || !slices.ContainsFunc(got, circuit.Equal) {
		t.Fatalf("%d addresses %v, want the record's limit %d with the circuit among them", len(got), got, rendezvous.MaxAddrs)
	}
	// Many circuits (a seed with several addresses, several relays) keep
	// half the record; many own addresses the other half.
	var circuits []ma.Multiaddr
	for i := range 20 {
		circuits = append(circuits, ma.StringCast(fmt.Sprintf("/ip4/127.0.0.%d/tcp/7400/p2p/12D3KooWC7xY5KTZd3ExxLugeo3VzaihJdEYXdPoeq1rgQrThwby/p2p-circuit", i+1)))
	}
	got = recordAddrs(many, circuits)
	var nc int
	for _, a := range got {
		if slices.ContainsFunc(circuits, a.Equal) {
			nc++
		}
	}
	if len(got) != rendezvous.MaxAddrs || nc != rendezvous.MaxAddrs/2 {
		t.Fatalf("%d addresses of which %d circuits, want %d with %d circuits", len(got), nc, rendezvous.MaxAddrs, rendezvous.MaxAddrs/2)
	}
	// Few own addresses leave the rest of the record to circuits.
	if got := recordAddrs(own, circuits); len(got) != rendezvous.MaxAddrs {
		t.Fatalf("%d addresses, want %d (1 own, 15 circuits)", len(got), rendezvous.MaxAddrs)
	}
}

// TestServeKeepsItsRecordFresh: a serving device registers on its agent's
// seed and registers again before the seed's TTL (told in the
// registration's answer) runs out; once it stops serving, the record
// expires.
func TestServeKeepsItsRecordFresh(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seedKey, _ := identity.Generate()
	seedHost, err := p2p.NewHost(p2p.HostOptions{Key: seedKey, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer seedHost.Close()
	const ttl = 3 * time.Second
	svc, err := rendezvous.New(seedHost, rendezvous.AuthorizerFunc(func(string, ed25519.PublicKey) error { return nil }), rendezvous.WithTTL(ttl))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()

	h, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	a, err := h.InitAgent("laptop")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.SetAgentSeeds([]string{p2p.FullAddrs(seedHost)[0].String()}); err != nil {
		t.Fatal(err)
	}
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- h.Serve(serveCtx, ServeOptions{Vaults: []vault.NamespaceID{a.Namespace}, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	}()

	askerKey, _ := identity.Generate()
	asker, err := p2p.NewHost(p2p.HostOptions{Key: askerKey})
	if err != nil {
		t.Fatal(err)
	}
	defer asker.Close()
	if err := asker.Connect(ctx, peer.AddrInfo{ID: seedHost.ID(), Addrs: seedHost.Addrs()}); err != nil {
		t.Fatal(err)
	}
	self, _ := identity.PeerID(h.Key.Public().(ed25519.PublicKey))
	lookup := func() (rendezvous.Record, bool) {
		recs, err := rendezvous.Lookup(ctx, asker, seedHost.ID(), a.DID)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if id, _ := identity.PeerID(r.Device); id == self {
				return r, true
			}
		}
		return rendezvous.Record{}, false
	}
	// Three registrations seen: the first and two renewals, each made
	// before the one before expired (a record outlives the seed's TTL only
	// if renewed).
	seen := map[uint64]bool{}
	for len(seen) < 3 {
		if ctx.Err() != nil {
			t.Fatalf("saw %d registrations before the deadline, want 3 (renewals before the %s TTL runs out)", len(seen), ttl)
		}
		if r, ok := lookup(); ok {
			if len(r.Addrs) != 1 || r.Addrs[0].String() == "" || r.Context != "laptop" {
				t.Fatalf("record %+v, want the laptop on its one loopback address", r)
			}
			seen[r.Timestamp] = true
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	for {
		if _, ok := lookup(); !ok {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the record outlived the device's serving")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
