package discovery

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/seedfleet/seedfleet/internal/p2ptest"
)

func info(h host.Host) peer.AddrInfo { return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()} }

// TestDeviceFindsTheSeedsHostingItsVault: 12 seeds (DHT servers) and 20
// devices (clients) on loopback. Three seeds announce a vault; a device that
// knows a single, unrelated seed finds exactly those three.
func TestDeviceFindsTheSeedsHostingItsVault(t *testing.T) {
	if testing.Short() {
		t.Skip("32 hosts")
	}
	const seeds, devices = 12, 20
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var seedHosts []host.Host
	var seedDHTs []*dht.IpfsDHT
	for i := range seeds {
		h := p2ptest.NewHost(t, true)
		var boot []peer.AddrInfo
		if i > 0 {
			boot = []peer.AddrInfo{info(seedHosts[0])}
		}
		store, err := OpenDatastore(t.TempDir()) // seeds keep provider records in Pebble
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		d, err := NewDHT(h, DHTOptions{Server: true, BootstrapPeers: boot, Datastore: store})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		seedHosts, seedDHTs = append(seedHosts, h), append(seedDHTs, d)
	}
	for i, d := range seedDHTs {
		if i > 0 {
			if err := seedHosts[i].Connect(ctx, info(seedHosts[0])); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Let routing tables fill.
	deadline := time.Now().Add(30 * time.Second)
	for _, d := range seedDHTs {
		for d.RoutingTable().Size() < 3 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	var ns [32]byte
	copy(ns[:], "vault hosted by seeds 3, 7 and 9")
	hosting := []int{3, 7, 9}
	var want []peer.ID
	for _, i := range hosting {
		reg := prometheus.NewRegistry()
		p, err := NewProvider(seedDHTs[i], WithRegisterer(reg))
		if err != nil {
			t.Fatal(err)
		}
		p.Set([]cid.Cid{VaultCID(ns)})
		p.pass(ctx)
		if p.LastProvided(VaultCID(ns)).IsZero() {
			t.Fatalf("seed %d did not announce the vault", i)
		}
		if p.Lag() != 0 {
			t.Fatalf("lag %s right after providing", p.Lag())
		}
		want = append(want, seedHosts[i].ID())
	}
	slices.Sort(want)

	for i := range devices {
		h := p2ptest.NewHost(t, false)
		via := seedHosts[(i%(seeds-1))+1] // any seed, mostly not a hosting one
		d, err := NewDHT(h, DHTOptions{Server: false, BootstrapPeers: []peer.AddrInfo{info(via)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		if err := h.Connect(ctx, info(via)); err != nil {
			t.Fatal(err)
		}
		if err := d.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
		for d.RoutingTable().Size() == 0 && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
		if i%5 != 0 {
			continue // every device joins the DHT; a few of them look the vault up
		}
		fctx, fcancel := context.WithTimeout(ctx, 20*time.Second)
		found := FindProviders(fctx, d, VaultCID(ns), 10)
		fcancel()
		var got []peer.ID
		for _, f := range found {
			got = append(got, f.ID)
		}
		slices.Sort(got)
		got = slices.Compact(got)
		if !slices.Equal(got, want) {
			t.Fatalf("device %d (via %s) found %v, want the hosting seeds %v", i, via.ID(), got, want)
		}
		// And a vault nobody hosts has no providers.
		var other [32]byte
		fctx, fcancel = context.WithTimeout(ctx, 5*time.Second)
		if none := FindProviders(fctx, d, VaultCID(other), 10); len(none) != 0 {
			t.Fatalf("providers for an unhosted vault: %v", none)
		}
		fcancel()
	}
}

func TestKeysAreDistinctAndStable(t *testing.T) {
	var a, b [32]byte
	b[0] = 1
	if VaultCID(a) == VaultCID(b) || VaultCID(a) != VaultCID(a) {
		t.Fatal("vault keys not distinct or not stable")
	}
	if AgentCID("did:key:z6Mk") == VaultCID(a) || AgentCID("x") == AgentCID("y") {
		t.Fatal("agent keys collide")
	}
	// Golden: a change of key derivation would orphan every announcement
	// made by seeds of the previous version.
	if got := VaultCID(a).String(); got != "bafkreigmyc22omvavfvyoxo24p66pttqlpywscvosy66nyjg3x7begj2ae" {
		t.Fatalf("VaultCID changed: %s", got)
	}
	if got := AgentCID("did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp").String(); got != "bafkreidkfpagqrreawoa6cygd5mibol3rp55fjblxmykmw2256x5r47oue" {
		t.Fatalf("AgentCID changed: %s", got)
	}
}

// TestFindProvidersViaPutsTheSeedsBack: kad-dht drops a peer from a
// client's routing table after one failed query; a device whose table held
// only its seed then finds nothing with FindProviders, and FindProvidersVia
// puts the seed back and finds the vault.
func TestFindProvidersViaPutsTheSeedsBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seedHost := p2ptest.NewHost(t, true)
	seedDHT, err := NewDHT(seedHost, DHTOptions{Server: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seedDHT.Close() })
	var ns [32]byte
	copy(ns[:], "vault hosted by the only seed")
	p, err := NewProvider(seedDHT)
	if err != nil {
		t.Fatal(err)
	}
	p.Set([]cid.Cid{VaultCID(ns)})
	p.pass(ctx) // a lone seed stores its own record

	dev := p2ptest.NewHost(t, false)
	d, err := NewDHT(dev, DHTOptions{BootstrapPeers: []peer.AddrInfo{info(seedHost)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := dev.Connect(ctx, info(seedHost)); err != nil {
		t.Fatal(err)
	}
	for d.RoutingTable().Size() == 0 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	// What kad-dht does after a query to the seed times out. Its own
	// low-peers routine may put the connected seed back at any moment, and
	// a FindProviders that starts after that finds the vault: a few tries
	// show the problem, while a kad-dht that always recovers fails here.
	shown := false
	var found []peer.AddrInfo
	for try := 0; try < 5 && !shown; try++ {
		d.RoutingTable().RemovePeer(seedHost.ID())
		short, scancel := context.WithTimeout(ctx, 2*time.Second)
		found = FindProviders(short, d, VaultCID(ns), 1)
		scancel()
		shown = len(found) == 0
	}
	if !shown {
		t.Fatalf("with an empty routing table FindProviders found %v, 5 times out of 5: the test no longer shows the problem", found)
	}
	d.RoutingTable().RemovePeer(seedHost.ID())
	found = FindProvidersVia(ctx, d, []peer.AddrInfo{info(seedHost)}, VaultCID(ns), 1)
	if len(found) != 1 || found[0].ID != seedHost.ID() {
		t.Fatalf("FindProvidersVia found %v, want the seed %s", found, seedHost.ID())
	}
}

// TestNewProviderRefusesBadOptions: a missing DHT or an option out of its
// range is an error that names it; metrics go only to the registerer given.
func TestNewProviderRefusesBadOptions(t *testing.T) {
	d, err := NewDHT(p2ptest.NewHost(t, true), DHTOptions{Server: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := NewProvider(nil); err == nil || !strings.Contains(err.Error(), "nil DHT") {
		t.Fatalf("nil DHT: %v", err)
	}
	for _, tc := range []struct {
		opt  ProviderOption
		want string
	}{
		{WithReprovideInterval(0), "WithReprovideInterval: 0s is not between"},
		{WithReprovideInterval(49 * time.Hour), "WithReprovideInterval: 49h0m0s is not between"},
		{WithProvideWorkers(0), "WithProvideWorkers: 0 is not positive"},
		{WithRegisterer(nil), "nil registerer"},
	} {
		if _, err := NewProvider(d, tc.opt); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want it to say %q", err, tc.want)
		}
	}
	reg := prometheus.NewRegistry()
	if _, err := NewProvider(d, WithRegisterer(reg)); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "seedfleet_dht_provided_keys"); err != nil || n != 1 {
		t.Fatalf("provided keys metric: %d, %v", n, err)
	}
}

// TestNewDHTNamesTheProtocolPrefix: a prefix kad-dht refuses (/ipfs wants
// values, which a providers-only DHT does not store) is named in the error.
func TestNewDHTNamesTheProtocolPrefix(t *testing.T) {
	_, err := NewDHT(p2ptest.NewHost(t, true), DHTOptions{Server: true, ProtocolPrefix: "/ipfs"})
	if err == nil || !strings.Contains(err.Error(), "protocol prefix /ipfs") {
		t.Fatalf("error %v, want one naming the protocol prefix", err)
	}
}

// countingStore counts the provider records written to it.
type countingStore struct {
	ds.Batching
	puts atomic.Int64
}

func (c *countingStore) count(k ds.Key) {
	if strings.HasPrefix(k.String(), "/providers/") {
		c.puts.Add(1)
	}
}

func (c *countingStore) Put(ctx context.Context, k ds.Key, v []byte) error {
	c.count(k)
	return c.Batching.Put(ctx, k, v)
}

func (c *countingStore) Batch(ctx context.Context) (ds.Batch, error) {
	b, err := c.Batching.Batch(ctx)
	return &countingBatch{Batch: b, c: c}, err
}

type countingBatch struct {
	ds.Batch
	c *countingStore
}

func (b *countingBatch) Put(ctx context.Context, k ds.Key, v []byte) error {
	b.c.count(k)
	return b.Batch.Put(ctx, k, v)
}

// TestProviderWithoutPeersStoresEachKeyOnce: a seed whose routing table is
// empty (no DHT peer yet, or none left) stores its keys in its own
// provider store once, not again at every pass; they are announced to the
// network once a peer is there. A seed hosting 100,000 vaults rewrote them
// all every 2 s.
func TestProviderWithoutPeersStoresEachKeyOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store := &countingStore{Batching: dssync.MutexWrap(ds.NewMapDatastore())}
	d, err := NewDHT(p2ptest.NewHost(t, true), DHTOptions{Server: true, Datastore: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	p, err := NewProvider(d)
	if err != nil {
		t.Fatal(err)
	}
	var keys []cid.Cid
	// kad-dht writes provider records in batches of 256.
	for i := range 1000 {
		keys = append(keys, VaultCID([32]byte{byte(i), byte(i >> 8)}))
	}
	p.Set(keys)
	for range 3 {
		p.pass(ctx)
	}
	if got := store.puts.Load(); got == 0 || got > int64(len(keys)) {
		t.Fatalf("three passes without peers wrote %d provider records, want each of the %d keys at most once", got, len(keys))
	}
	if found := FindProviders(ctx, d, keys[7], 1); len(found) != 1 || found[0].ID != d.Host().ID() {
		t.Fatalf("the seed does not answer for its own key: found %v", found)
	}
	if !p.LastProvided(keys[7]).IsZero() {
		t.Fatal("a key stored only locally counts as announced to the network")
	}

	// A peer joins: every key is announced to the network, once.
	peerHost := p2ptest.NewHost(t, true)
	pd, err := NewDHT(peerHost, DHTOptions{Server: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pd.Close() })
	if err := d.Host().Connect(ctx, info(peerHost)); err != nil {
		t.Fatal(err)
	}
	for d.RoutingTable().Size() == 0 {
		if ctx.Err() != nil {
			t.Fatal("the peer never entered the routing table")
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.pass(ctx)
	for _, k := range keys {
		if p.LastProvided(k).IsZero() {
			t.Fatalf("key %s not announced once a peer was there", k)
		}
	}
	if found := FindProviders(ctx, pd, keys[7], 1); len(found) != 1 || found[0].ID != d.Host().ID() {
		t.Fatalf("the peer does not know the seed provides the key: found %v", found)
	}
}
