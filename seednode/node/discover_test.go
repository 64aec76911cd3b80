package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/discovery"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

func info(n *Node) peer.AddrInfo { return peer.AddrInfo{ID: n.Host().ID(), Addrs: n.Host().Addrs()} }

// TestSyncAnyTriesSourcesInOrder: a device given a dead peer and a seed
// that does not host its vault is told of both, finds the hosting seed
// through the DHT, syncs with it and remembers it; the next sync needs no
// address at all. A vault nobody hosts fails with every reason listed.
func TestSyncAnyTriesSourcesInOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	laptop, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer laptop.Close()
	ns, err := laptop.CreateVault()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := laptop.Put(ns, fmt.Appendf(nil, "notes/%d", i), []byte("note")); err != nil {
			t.Fatal(err)
		}
	}

	a := startNode(t, Config{}) // hosts nothing; a DHT server
	b := startNode(t, Config{HostedVaults: []vault.NamespaceID{ns},
		DHT: DHTConfig{BootstrapPeers: []peer.AddrInfo{info(a)}}})
	eventually(t, "the hosting seed announces the vault", func() error {
		if b.provider.LastProvided(discovery.VaultCID(ns)).IsZero() {
			return errors.New("not yet announced")
		}
		return nil
	})
	if _, err := laptop.Sync(ctx, ns, p2p.FullAddrs(b.Host())[0].String(), client.SyncOptions{}); err != nil {
		t.Fatal(err)
	}

	deadKey, _ := identity.Generate()
	deadID, err := identity.PeerID(deadKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	dead := peer.AddrInfo{ID: deadID, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}}

	phone, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	var attempts []string
	opts := client.DiscoverOptions{
		Peers:       []peer.AddrInfo{dead, info(a)},
		DialTimeout: 3 * time.Second,
		Attempt: func(c client.Candidate, err error) {
			attempts = append(attempts, fmt.Sprintf("%s %s %v", c.Source, c.Peer.ID, err))
		},
	}
	st, used, err := phone.SyncAny(ctx, ns, opts)
	if err != nil {
		t.Fatalf("SyncAny: %v\nattempts:\n%s", err, strings.Join(attempts, "\n"))
	}
	if used.Source != client.SourceDHT || used.Peer.ID != b.Host().ID() {
		t.Fatalf("synced with %s via %s, want the hosting seed %s via the DHT", used.Peer.ID, used.Source, b.Host().ID())
	}
	if st.ItemsReceived != 5 {
		t.Fatalf("received %d entries, want 5", st.ItemsReceived)
	}
	if len(attempts) != 3 ||
		!strings.HasPrefix(attempts[0], "given "+dead.ID.String()) || strings.HasSuffix(attempts[0], "<nil>") ||
		!strings.HasPrefix(attempts[1], "given "+a.Host().ID().String()) || !strings.Contains(attempts[1], "does not host") ||
		attempts[2] != fmt.Sprintf("dht %s <nil>", b.Host().ID()) {
		t.Fatalf("attempts, want the dead peer, the refusing seed, then the hosting seed from the DHT:\n%s", strings.Join(attempts, "\n"))
	}

	// Remembered: no address, no DHT.
	remembered, err := phone.RememberedPeers(ns)
	if err != nil || len(remembered) != 1 || remembered[0].ID != b.Host().ID() {
		t.Fatalf("remembered %v (%v), want the hosting seed", remembered, err)
	}
	if _, used, err = phone.SyncAny(ctx, ns, client.DiscoverOptions{NoDHT: true}); err != nil || used.Source != client.SourceKnown {
		t.Fatalf("second sync: %v via %q, want the remembered seed", err, used.Source)
	}

	// A vault nobody hosts: every reason, and what to do next.
	other, err := phone.CreateVault()
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = phone.SyncAny(ctx, other, client.DiscoverOptions{Peers: []peer.AddrInfo{info(a)}})
	if !errors.Is(err, client.ErrNoPeer) || !strings.Contains(err.Error(), "does not host") || !strings.Contains(err.Error(), "no seed announces") {
		t.Fatalf("unhosted vault: %v", err)
	}
	if _, _, err = phone.SyncAny(ctx, other, client.DiscoverOptions{}); !errors.Is(err, client.ErrNoPeer) || !strings.Contains(err.Error(), "knows no peer") {
		t.Fatalf("no peer known: %v", err)
	}
}
