package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/discovery"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/rendezvous"
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

// TestSyncAnyFindsTheAgentsOtherDevicesThroughRendezvous: the laptop keeps
// a project that no seed hosts and serves it through the seed's relay
// only; serving registers its record on the agent's seed. The phone, with
// no address for the project and nothing in the DHT, finds the laptop
// through that record and syncs through the relay. A device of another
// agent learns nothing there.
func TestSyncAnyFindsTheAgentsOtherDevicesThroughRendezvous(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	seed := startNode(t, Config{AdminListen: "off"})
	seedAddr := p2p.FullAddrs(seed.Host())[0].String()

	laptop := newDevice(t)
	a, err := laptop.InitAgent("laptop")
	if err != nil {
		t.Fatal(err)
	}
	if err := laptop.SetAgentSeeds([]string{seedAddr}); err != nil {
		t.Fatal(err)
	}
	seed.SetHostedVaults([]vault.NamespaceID{a.Namespace}) // the agent vault, not the project
	syncOK(t, laptop, a.Namespace, seedAddr)
	phone := newDevice(t)
	pair(t, laptop, phone, "phone", seedAddr)
	// A project the seed does not host: the catalog (in the agent vault)
	// reaches the phone through the seed, the project itself does not.
	drafts, err := laptop.CreateProject("drafts")
	if err != nil {
		t.Fatal(err)
	}
	plan := []byte("kept on the laptop only")
	if _, err := laptop.PutPrivate(drafts.Namespace, "plan", plan); err != nil {
		t.Fatal(err)
	}
	syncOK(t, laptop, a.Namespace, seedAddr)
	syncOK(t, phone, a.Namespace, seedAddr)
	if ps, err := phone.Projects(); err != nil || len(ps) != 1 || ps[0].Namespace != drafts.Namespace {
		t.Fatalf("the phone's catalog: %+v, %v", ps, err)
	}
	// Pairing is over: only the serving host speaks for the laptop now.
	laptop.host.Close()
	phone.host.Close()

	var mu sync.Mutex
	var logged []string
	serveCtx, stopServing := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- laptop.Serve(serveCtx, client.ServeOptions{
			Vaults: []vault.NamespaceID{drafts.Namespace},
			Relays: []peer.AddrInfo{info(seed)},
			Logf: func(format string, args ...any) {
				mu.Lock()
				defer mu.Unlock()
				logged = append(logged, fmt.Sprintf(format, args...))
			},
		})
	}()
	defer func() {
		stopServing()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	laptopID, _ := identity.PeerID(laptop.Key.Public().(ed25519.PublicKey))
	var rec rendezvous.Record
	eventually(t, "the serving laptop registers on the agent's seed", func() error {
		h, err := p2p.NewHost(p2p.HostOptions{Key: phone.Key})
		if err != nil {
			return err
		}
		defer h.Close()
		h.Peerstore().AddAddrs(seed.Host().ID(), seed.Host().Addrs(), time.Minute)
		recs, err := rendezvous.Lookup(ctx, h, seed.Host().ID(), a.DID)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if id, _ := identity.PeerID(r.Device); id == laptopID {
				rec = r
				return nil
			}
		}
		mu.Lock()
		defer mu.Unlock()
		return fmt.Errorf("not registered; serve said: %s", strings.Join(logged, "; "))
	})
	// Reachable through the relay only: the record says so, and nothing else.
	if rec.Context != "laptop" || len(rec.Addrs) != 1 || !strings.HasSuffix(rec.Addrs[0].String(), "/p2p/"+seed.Host().ID().String()+"/p2p-circuit") {
		t.Fatalf("laptop's record: context %q, addresses %v; want one circuit address through the seed", rec.Context, rec.Addrs)
	}

	var attempts []string
	st, used, err := phone.SyncAny(ctx, drafts.Namespace, client.DiscoverOptions{
		Attempt: func(c client.Candidate, err error) {
			attempts = append(attempts, fmt.Sprintf("%s %s %v", c.Source, c.Peer.ID, err))
		},
	})
	if err != nil {
		t.Fatalf("SyncAny: %v\nattempts:\n%s", err, strings.Join(attempts, "\n"))
	}
	if used.Source != client.SourceRendezvous || used.Peer.ID != laptopID {
		t.Fatalf("synced with %s via %s, want the laptop via rendezvous; attempts:\n%s", used.Peer.ID, used.Source, strings.Join(attempts, "\n"))
	}
	if st.ItemsReceived == 0 {
		t.Fatalf("received nothing from the laptop: %+v", st)
	}
	mustRead(t, phone, drafts.Namespace, "plan", plan)

	// Another agent's device: the seed does not tell it where the laptop is,
	// and its sync of the project finds nobody.
	stranger := newDevice(t)
	if _, err := stranger.InitAgent("desk"); err != nil {
		t.Fatal(err)
	}
	if err := stranger.SetAgentSeeds([]string{seedAddr}); err != nil {
		t.Fatal(err)
	}
	stranger.host.Close()
	h, err := p2p.NewHost(p2p.HostOptions{Key: stranger.Key})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	h.Peerstore().AddAddrs(seed.Host().ID(), seed.Host().Addrs(), time.Minute)
	if recs, err := rendezvous.Lookup(ctx, h, seed.Host().ID(), a.DID); err == nil || len(recs) != 0 {
		t.Fatalf("a device of another agent looked up the laptop: %d records, %v", len(recs), err)
	}
	_, _, err = stranger.SyncAny(ctx, drafts.Namespace, client.DiscoverOptions{NoDHT: true})
	if !errors.Is(err, client.ErrNoPeer) || !strings.Contains(err.Error(), "rendezvous") {
		t.Fatalf("stranger's sync: %v, want no peer, with the rendezvous step's reason", err)
	}
}
