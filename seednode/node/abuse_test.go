package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/internal/admission"
	"github.com/seedfleet/seedfleet/seednode/blobs"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/discovery"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/relay"
	"github.com/seedfleet/seedfleet/seednode/rendezvous"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// Documented refusal reasons (relay.ACL.AllowReserve, agentAuthorizer).
const (
	relayRefusalReason      = "this seed relays only for devices of the agents it serves"
	rendezvousRefusalReason = "is not authorized for agent"
)

// floodPeer is a fake device: its own key, a DHT client bootstrapped to the
// seed, and an agent DID it claims without being authorized for it.
type floodPeer struct {
	key    ed25519.PrivateKey
	host   host.Host
	dht    *dht.IpfsDHT
	victim string // agent DID it registers for
}

// floodCounts are the fake peers' attempts and outcomes, by kind.
type floodCounts struct {
	reserve, register, lookup          atomic.Int64 // attempts
	reserveOK, registerOK, lookupFound atomic.Int64 // must stay 0
	reserveRefused, registerRefused    atomic.Int64 // refused with the documented reason

	mu    sync.Mutex
	other []string // errors that are not the documented refusal
}

func (c *floodCounts) unexpected(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.other) < 20 {
		c.other = append(c.other, fmt.Sprintf(format, args...))
	}
}

func randomCID() cid.Cid {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	sum := sha256.Sum256(b[:])
	m, _ := mh.Encode(sum[:], mh.SHA2_256)
	return cid.NewCidV1(cid.Raw, m)
}

// waitRoutingTable waits until identify has put the seed into d's routing
// table (a lookup before that asks nobody).
func waitRoutingTable(ctx context.Context, t testing.TB, d *dht.IpfsDHT) {
	t.Helper()
	for d.RoutingTable().Size() == 0 {
		if ctx.Err() != nil {
			t.Fatal("a DHT client never added the seed to its routing table")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFloodOfRefusedRequestsLeavesTheDeviceServed: 100 fake peers flood a
// seed for ~3 s with relay reservations (refused: unknown keys), rendezvous
// registrations for agents they do not belong to (refused: unauthorized,
// half of them for the legitimate device's own agent) and DHT lookups of
// random keys, while the legitimate device (an allowed key, author of the
// hosted vault) keeps syncing, reserving and registering. Every legitimate
// request succeeds, every fake one is refused with its documented reason,
// the seed holds only the legitimate rendezvous record, and once the fake
// peers are gone the goroutine count returns near where it was (within 50:
// a leak of one goroutine per fake peer fails) and the seed holds only the
// device's connection.
func TestFloodOfRefusedRequestsLeavesTheDeviceServed(t *testing.T) {
	if testing.Short() {
		t.Skip("100 fake peers flood a seed for 3 s")
	}
	const (
		fakePeers = 100
		floodFor  = 3 * time.Second
	)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	home, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { home.Close() })
	ns, err := home.CreateVault()
	if err != nil {
		t.Fatal(err)
	}
	devPub := home.Key.Public().(ed25519.PublicKey)
	agent := identity.DIDKey(devPub)
	n := startNode(t, Config{HostedVaults: []vault.NamespaceID{ns},
		Relay: RelayConfig{Mode: config.RelayAgents, AllowedKeys: []ed25519.PublicKey{devPub}, AdvertisePrivateAddrs: true}})
	seed := peer.AddrInfo{ID: n.Host().ID(), Addrs: n.Host().Addrs()}
	for n.Ready() != nil { // the DHT reports bootstrapped from a goroutine
		if ctx.Err() != nil {
			t.Fatalf("seed never ready: %v", n.Ready())
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The legitimate device: one host for sync, relay, rendezvous and DHT.
	dev, err := p2p.NewHost(p2p.HostOptions{Key: home.Key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	devSync, err := vault.NewService(dev, home.Store, vault.WithPolicy(vault.NewHostedSet(ns)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { devSync.Close() })
	devDHT, err := discovery.NewDHT(dev, discovery.DHTOptions{BootstrapPeers: []peer.AddrInfo{seed}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { devDHT.Close() })
	if err := dev.Connect(ctx, seed); err != nil {
		t.Fatal(err)
	}
	waitRoutingTable(ctx, t, devDHT)
	circuit, err := relay.CircuitAddr(seed)
	if err != nil {
		t.Fatal(err)
	}
	round := 0
	// legit does one round of what a device does, each step under its own
	// 10 s deadline; it returns the first failure.
	legit := func() error {
		round++
		key := []byte(fmt.Sprintf("notes/%d", round))
		if _, err := home.Put(ns, key, []byte(fmt.Sprintf("change %d", round))); err != nil {
			return fmt.Errorf("put: %w", err)
		}
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := devSync.Sync(sctx, seed.ID, ns, vault.SyncOptions{})
		scancel()
		if err != nil {
			return fmt.Errorf("sync %d: %w", round, err)
		}
		if st.ItemsSent != 1 || st.PeerRefused != 0 {
			return fmt.Errorf("sync %d: sent %d items (want 1), the seed refused %d (%s)", round, st.ItemsSent, st.PeerRefused, st.PeerRefusal)
		}
		if items, err := n.Store().Get(ns, key); err != nil || len(items) != 1 {
			return fmt.Errorf("sync %d: the seed holds %d entries for %s (%v)", round, len(items), key, err)
		}
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = relay.Reserve(rctx, dev, seed)
		rcancel()
		if err != nil {
			return fmt.Errorf("reserve %d: %w", round, err)
		}
		rec, err := rendezvous.NewRecord(agent, "laptop", home.Key, []ma.Multiaddr{circuit}, time.Now())
		if err != nil {
			return err
		}
		gctx, gcancel := context.WithTimeout(ctx, 10*time.Second)
		err = rendezvous.Register(gctx, dev, seed.ID, rec)
		gcancel()
		if err != nil {
			return fmt.Errorf("register %d: %w", round, err)
		}
		fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
		found := discovery.FindProviders(fctx, devDHT, discovery.VaultCID(ns), 1)
		fcancel()
		if len(found) != 1 || found[0].ID != seed.ID {
			return fmt.Errorf("DHT lookup %d of the hosted vault: found %v, want the seed", round, found)
		}
		return nil
	}
	// A first round before the flood: the baseline includes a device's
	// connection, sessions and reservation.
	if err := legit(); err != nil {
		t.Fatalf("before the flood: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	baseline := runtime.NumGoroutine()

	peers := make([]*floodPeer, fakePeers)
	var setup sync.WaitGroup
	setupErr := make(chan error, fakePeers)
	// Connections are made 16 at a time: go-libp2p holds a connection in
	// its transient resource scope until the security handshake ends, and
	// the seed keeps that scope's default of about 80 inbound connections
	// (what this test is about is the requests on established ones).
	connecting := make(chan struct{}, 16)
	for i := range peers {
		setup.Add(1)
		go func() {
			defer setup.Done()
			key, err := identity.Generate()
			if err != nil {
				setupErr <- err
				return
			}
			h, err := p2p.NewHost(p2p.HostOptions{Key: key})
			if err != nil {
				setupErr <- err
				return
			}
			p := &floodPeer{key: key, host: h, victim: agent}
			peers[i] = p
			if i%2 == 1 { // the other half claims an agent of its own making
				other, err := identity.Generate()
				if err != nil {
					setupErr <- err
					return
				}
				p.victim = identity.DIDKey(other.Public().(ed25519.PublicKey))
			}
			connecting <- struct{}{}
			err = h.Connect(ctx, seed)
			<-connecting
			if err != nil {
				setupErr <- fmt.Errorf("fake peer %d: connect: %w", i, err)
				return
			}
			// After the connection: a DHT client dials its bootstrap
			// peers at once, past the 16 at a time.
			if p.dht, err = discovery.NewDHT(h, discovery.DHTOptions{BootstrapPeers: []peer.AddrInfo{seed}}); err != nil {
				setupErr <- err
			}
		}()
	}
	setup.Wait()
	closePeers := func() {
		for _, p := range peers {
			if p == nil {
				continue
			}
			if p.dht != nil {
				p.dht.Close()
			}
			p.host.Close()
		}
	}
	defer closePeers()
	select {
	case err := <-setupErr:
		t.Fatal(err)
	default:
	}
	for _, p := range peers {
		waitRoutingTable(ctx, t, p.dht)
	}

	var c floodCounts
	stop := time.Now().Add(floodFor)
	var flood sync.WaitGroup
	for i, p := range peers {
		flood.Add(1)
		go func() {
			defer flood.Done()
			for step := i; time.Now().Before(stop); step++ {
				switch step % 3 {
				case 0:
					c.reserve.Add(1)
					rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
					_, err := relay.Reserve(rctx, p.host, seed)
					rcancel()
					switch {
					case err == nil:
						c.reserveOK.Add(1)
					case strings.Contains(err.Error(), relayRefusalReason):
						c.reserveRefused.Add(1)
					default:
						c.unexpected("reserve: %v", err)
					}
				case 1:
					c.register.Add(1)
					rec, err := rendezvous.NewRecord(p.victim, "phone", p.key, nil, time.Now())
					if err != nil {
						c.unexpected("record: %v", err)
						continue
					}
					gctx, gcancel := context.WithTimeout(ctx, 10*time.Second)
					err = rendezvous.Register(gctx, p.host, seed.ID, rec)
					gcancel()
					var refused *rendezvous.RefusedError
					switch {
					case err == nil:
						c.registerOK.Add(1)
					case errors.As(err, &refused) && refused.Code == rendezvous.CodeUnauthorized &&
						strings.Contains(refused.Reason, rendezvousRefusalReason):
						c.registerRefused.Add(1)
					default:
						c.unexpected("register: %v", err)
					}
				case 2:
					c.lookup.Add(1)
					if p.dht.RoutingTable().Size() == 0 {
						// kad-dht drops a peer whose answer failed; a
						// flooder keeps asking it.
						_, _ = p.dht.RoutingTable().TryAddPeer(seed.ID, true, false)
					}
					fctx, fcancel := context.WithTimeout(ctx, time.Second)
					found := discovery.FindProviders(fctx, p.dht, randomCID(), 1)
					fcancel()
					c.lookupFound.Add(int64(len(found)))
				}
				time.Sleep(time.Duration(step%7) * time.Millisecond)
			}
		}()
	}

	// The legitimate device keeps going for as long as the flood lasts
	// (and at least three rounds).
	var legitRounds, legitFailed int
	var legitErrs []string
	for legitRounds < 3 || time.Now().Before(stop) {
		legitRounds++
		if err := legit(); err != nil {
			legitFailed++
			if len(legitErrs) < 5 {
				legitErrs = append(legitErrs, err.Error())
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	flood.Wait()
	t.Logf("flood: %d reservations (%d refused as documented), %d registrations (%d refused as documented), %d DHT lookups; legitimate device: %d of %d rounds ok",
		c.reserve.Load(), c.reserveRefused.Load(), c.register.Load(), c.registerRefused.Load(), c.lookup.Load(), legitRounds-legitFailed, legitRounds)

	if legitFailed > 0 {
		t.Errorf("legitimate device: %d of %d rounds (sync, reservation, registration, DHT lookup) failed during the flood: %q",
			legitFailed, legitRounds, legitErrs)
	}
	if c.reserve.Load() < fakePeers || c.register.Load() < fakePeers || c.lookup.Load() < fakePeers {
		t.Errorf("the flood was too thin to mean anything: %d reservations, %d registrations, %d lookups",
			c.reserve.Load(), c.register.Load(), c.lookup.Load())
	}
	if ok := c.reserveOK.Load(); ok > 0 {
		t.Errorf("%d fake peers got a relay reservation", ok)
	}
	if ok := c.registerOK.Load(); ok > 0 {
		t.Errorf("%d rendezvous registrations of fake peers were accepted", ok)
	}
	if f := c.lookupFound.Load(); f > 0 {
		t.Errorf("DHT lookups of random keys found %d providers", f)
	}
	if len(c.other) > 0 {
		t.Errorf("fake peers' requests failed otherwise than with the documented refusal (%d reservations and %d registrations of %d and %d not refused as documented); first errors:\n%s",
			c.reserve.Load()-c.reserveOK.Load()-c.reserveRefused.Load(), c.register.Load()-c.registerOK.Load()-c.registerRefused.Load(),
			c.reserve.Load(), c.register.Load(), strings.Join(c.other, "\n"))
	}
	// The seed remembers why it refused each fake peer (what AskWhy reads).
	for _, p := range peers[:5] {
		if why := n.acl.Reason(p.host.ID()); !strings.Contains(why, relayRefusalReason) {
			t.Errorf("the relay's recorded reason for fake peer %s: %q", p.host.ID(), why)
		}
	}

	// Only the legitimate record is held, and a lookup returns only it.
	if st := n.rendezvous.Stats(); st.Agents != 1 || st.Records != 1 {
		t.Errorf("rendezvous holds %d records of %d agents, want only the legitimate device's", st.Records, st.Agents)
	}
	lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
	recs, err := rendezvous.Lookup(lctx, dev, seed.ID, agent)
	lcancel()
	if err != nil || len(recs) != 1 || !recs[0].Device.Equal(devPub) || recs[0].Context != "laptop" {
		t.Errorf("lookup of the legitimate agent: %+v %v", recs, err)
	}
	// The agents the other half claimed have nothing either (asked by a
	// host holding the fake peer's key: lookups are answered to an agent's
	// own devices only).
	for _, p := range []*floodPeer{peers[1], peers[3]} {
		lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
		recs, err := rendezvous.Lookup(lctx, p.host, seed.ID, identity.DIDKey(p.key.Public().(ed25519.PublicKey)))
		lcancel()
		if err != nil || len(recs) != 0 {
			t.Errorf("lookup of fake peer %s's own agent: %+v %v", p.host.ID(), recs, err)
		}
	}
	if err := n.Ready(); err != nil {
		t.Errorf("seed not ready after the flood: %v", err)
	}

	// The fake peers leave; what the seed kept for them must go too.
	closePeers()
	start := time.Now()
	for {
		g, conns := runtime.NumGoroutine(), len(n.Host().Network().Conns())
		if g < baseline+50 && conns <= 1 {
			t.Logf("goroutines: %d before the flood, %d %s after the fake peers left", baseline, g, time.Since(start).Round(time.Millisecond))
			break
		}
		if time.Since(start) > 10*time.Second {
			buf := make([]byte, 4<<20)
			t.Fatalf("10 s after the fake peers left: %d goroutines (%d before the flood, want fewer than %d) and %d connections on the seed (want at most the device's 1); stacks:\n%s",
				g, baseline, baseline+50, conns, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// streamFlood is a set of fake peers, each holding open streams of one
// protocol on the seed with one byte written and nothing more (a hello
// never finished, a blob request never sent).
type streamFlood struct {
	t     testing.TB
	seed  peer.AddrInfo
	proto protocol.ID
	hosts []host.Host

	mu      sync.Mutex
	streams [][]network.Stream // per host
	opened  atomic.Int64       // streams the seed let the fake peers open and write to
	failed  atomic.Int64       // streams refused, reset or not opened
}

// newStreamFlood connects peers fake peers to seed (16 at a time).
func newStreamFlood(ctx context.Context, t testing.TB, seed peer.AddrInfo, proto protocol.ID, peers int) *streamFlood {
	t.Helper()
	f := &streamFlood{t: t, seed: seed, proto: proto, streams: make([][]network.Stream, peers)}
	for range peers {
		// No resource manager of its own: an attacker's streams are
		// bounded by what the seed allows, not by its own limits.
		key, err := identity.Generate()
		if err != nil {
			t.Fatal(err)
		}
		h, err := p2p.NewHost(p2p.HostOptions{Key: key, ResourceManager: &network.NullResourceManager{}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		f.hosts = append(f.hosts, h)
	}
	var wg sync.WaitGroup
	errs := make(chan error, peers)
	connecting := make(chan struct{}, 16)
	for _, h := range f.hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			connecting <- struct{}{}
			defer func() { <-connecting }()
			if err := h.Connect(ctx, seed); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("a fake peer could not connect: %v", err)
	default:
	}
	return f
}

// open makes every fake peer hold perPeer streams (replacing what it held):
// each stream is negotiated and carries one byte.
func (f *streamFlood) open(ctx context.Context, perPeer int) {
	var wg sync.WaitGroup
	for i, h := range f.hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.mu.Lock()
			old := f.streams[i]
			f.streams[i] = nil
			f.mu.Unlock()
			for _, s := range old {
				s.Reset()
			}
			var held []network.Stream
			for range perPeer {
				s, err := h.NewStream(ctx, f.seed.ID, f.proto)
				if err == nil {
					_, err = s.Write([]byte{1})
				}
				if err != nil {
					f.failed.Add(1)
					if s != nil {
						s.Reset()
					}
					continue
				}
				f.opened.Add(1)
				held = append(held, s)
			}
			f.mu.Lock()
			f.streams[i] = held
			f.mu.Unlock()
		}()
	}
	wg.Wait()
}

// live counts the held streams the seed has not ended: a read that times
// out (after a second, all streams at once, so that resets on their way
// arrive) means the stream is still open.
func (f *streamFlood) live() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(time.Second)
	for _, ss := range f.streams {
		for _, s := range ss {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = s.SetReadDeadline(deadline)
				var b [1]byte
				_, err := s.Read(b[:])
				var ne interface{ Timeout() bool }
				if errors.As(err, &ne) && ne.Timeout() {
					n.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	return int(n.Load())
}

func (f *streamFlood) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ss := range f.streams {
		for _, s := range ss {
			s.Reset()
		}
	}
	f.streams = make([][]network.Stream, len(f.hosts))
}

// floodDevice is a legitimate device of a hosted vault: its own host
// connected to the seed, a vault-sync service and a blob service.
type floodDevice struct {
	home  *client.Home
	ns    vault.NamespaceID
	host  host.Host
	sync  *vault.Service
	blobs *blobs.Service
	round int
}

func newFloodDevice(ctx context.Context, t testing.TB) *floodDevice {
	t.Helper()
	home, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { home.Close() })
	ns, err := home.CreateVault()
	if err != nil {
		t.Fatal(err)
	}
	h, err := p2p.NewHost(p2p.HostOptions{Key: home.Key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	d := &floodDevice{home: home, ns: ns, host: h}
	if d.sync, err = vault.NewService(h, home.Store, vault.WithPolicy(vault.NewHostedSet(ns))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.sync.Close() })
	if d.blobs, err = blobs.NewService(h, home.Blobs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.blobs.Close() })
	return d
}

// syncOnce writes a changed entry and syncs it to the seed (10 s at most).
func (d *floodDevice) syncOnce(ctx context.Context, seed peer.ID) error {
	d.round++
	key := []byte(fmt.Sprintf("notes/%d", d.round))
	if _, err := d.home.Put(d.ns, key, []byte(fmt.Sprintf("change %d", d.round))); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := d.sync.Sync(sctx, seed, d.ns, vault.SyncOptions{})
	if err == nil && (st.ItemsSent != 1 || st.PeerRefused != 0) {
		err = fmt.Errorf("sent %d items (want 1), the seed refused %d (%s)", st.ItemsSent, st.PeerRefused, st.PeerRefusal)
	}
	return err
}

// TestStreamFloodsLeaveKnownDevicesServed plays the two floods of idle
// streams that locked devices out: 40 peers holding 30 one-byte streams
// each (1,200 streams, each once reserving a session's memory), and 20
// peers holding 250 each, all reopened between the device's requests; on
// the vault-sync protocol (the device syncs) and on the blob protocol (the
// device fetches a blob). A device that has synced with the seed before is
// served every time; the fake peers (all on 127.0.0.1) hold no more
// streams on the seed than one address range may, and only a hello's or a
// request's memory for each (before the fix each held a session's 384 KiB
// or a transfer's 512 KiB); the seed counts its refusals.
func TestStreamFloodsLeaveKnownDevicesServed(t *testing.T) {
	if testing.Short() {
		t.Skip("up to 5,000 flood streams")
	}
	for _, tc := range []struct {
		name           string
		proto          protocol.ID
		service        string // the label of seedfleet_stream_refusals_total
		rcmgrService   string // the resource-manager service
		preMemory      int64  // what a stream holds before its hello or request
		peers, perPeer int
		reopen         bool
	}{
		{"sync, hold 40x30", vault.ProtocolID, "vault-sync", vault.ServiceName, 4 << 10, 40, 30, false},
		{"sync, churn 20x250", vault.ProtocolID, "vault-sync", vault.ServiceName, 4 << 10, 20, 250, true},
		{"blobs, hold 40x30", blobs.ProtocolID, "blobs", blobs.ServiceName, 68 << 10, 40, 30, false},
		{"blobs, churn 20x250", blobs.ProtocolID, "blobs", blobs.ServiceName, 68 << 10, 20, 250, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			dev := newFloodDevice(ctx, t)
			n := startNode(t, Config{HostedVaults: []vault.NamespaceID{dev.ns}})
			seed := peer.AddrInfo{ID: n.Host().ID(), Addrs: n.Host().Addrs()}
			if err := dev.host.Connect(ctx, seed); err != nil {
				t.Fatal(err)
			}
			const rounds = 5
			var hashes [][32]byte
			for i := range rounds {
				h, err := n.Blobs().AddBytes([]byte(fmt.Sprintf("blob %d of the seed, %s", i, strings.Repeat("x", 64<<10))))
				if err != nil {
					t.Fatal(err)
				}
				hashes = append(hashes, h)
			}
			request := func(r int) error {
				if tc.proto == vault.ProtocolID {
					return dev.syncOnce(ctx, seed.ID)
				}
				fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
				defer fcancel()
				st, err := dev.blobs.Fetch(fctx, seed.ID, hashes[r], blobs.FetchOptions{})
				if err == nil && !st.Complete {
					err = fmt.Errorf("blob %d: fetch incomplete: %+v", r, st)
				}
				return err
			}
			// The device is known once it has synced a hosted vault: the
			// seed marks it so when its side of the session finishes, a
			// moment after the device's Sync may return.
			if err := dev.syncOnce(ctx, seed.ID); err != nil {
				t.Fatalf("before the flood: %v", err)
			}
			eventually(t, "the seed knows the device", func() error {
				if known := gaugeValue(t, n.reg, "seedfleet_known_peers", nil); known < 1 {
					return fmt.Errorf("%v known peers", known)
				}
				return nil
			})

			f := newStreamFlood(ctx, t, seed, tc.proto, tc.peers)
			defer f.close()
			f.open(ctx, tc.perPeer)
			var failed []string
			for r := range rounds {
				if tc.reopen && r > 0 {
					f.open(ctx, tc.perPeer)
				}
				if err := request(r); err != nil {
					failed = append(failed, err.Error())
				}
			}
			// What the seed holds for the fake peers, by its own account: a
			// place among unknown peers' streams and a hello's (or a blob
			// request's) memory each, never a session's or a transfer's.
			held := gaugeValue(t, n.reg, "seedfleet_unknown_peer_streams", map[string]string{"service": tc.service})
			// The service's memory includes the device's own session until
			// the seed's end of it has finished (a moment after the device's
			// Sync returns): wait for that, never for the fakes, which hold
			// their streams until the test ends.
			memLimit := int64(admission.DefaultLimits.PerRange) * tc.preMemory
			var mem int64
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				_ = n.Host().Network().ResourceManager().ViewService(tc.rcmgrService, func(s network.ServiceScope) error {
					mem = s.Stat().Memory
					return nil
				})
				if mem <= memLimit || time.Now().After(deadline) {
					break
				}
			}
			// The seed refuses the streams past the caps as it gets to
			// them (under load, some after the device's last request).
			refused := counterValue(t, n.reg, "seedfleet_stream_refusals_total", map[string]string{"service": tc.service})
			for refused == 0 && ctx.Err() == nil {
				time.Sleep(50 * time.Millisecond)
				refused = counterValue(t, n.reg, "seedfleet_stream_refusals_total", map[string]string{"service": tc.service})
			}
			t.Logf("%d fake peers: %d streams opened and written to, %d not; %d still open as they see it; the seed holds %v of theirs and %d bytes of %s memory, and counted %v refusals; device: %d of %d requests ok",
				tc.peers, f.opened.Load(), f.failed.Load(), f.live(), held, mem, tc.rcmgrService, refused, rounds-len(failed), rounds)
			if len(failed) > 0 {
				t.Errorf("the known device's requests failed during the flood (%d of %d): %q", len(failed), rounds, failed)
			}
			if limit := admission.DefaultLimits.PerRange; held > float64(limit) {
				t.Errorf("the fake peers hold %v streams on the seed, more than the %d one address range may hold", held, limit)
			}
			if mem > memLimit {
				t.Errorf("the seed reserved %d bytes for the fake peers' idle streams, more than %d (%d streams before a hello or request)", mem, memLimit, admission.DefaultLimits.PerRange)
			}
			if refused == 0 {
				t.Error("the seed counted no refusals in seedfleet_stream_refusals_total")
			}
		})
	}
}

// gaugeValue sums the gauge name's series on reg whose labels include
// labels.
func gaugeValue(t testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := 0
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v == lp.GetValue() {
					match++
				}
			}
			if match == len(labels) {
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// counterValue sums the counter name's series on reg whose labels include
// labels.
func counterValue(t testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}
