package main

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/hack/benchutil"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/discovery"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/node"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/relay"
	"github.com/seedfleet/seedfleet/seednode/rendezvous"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

var (
	allowArg   = flag.String("allow", "", "internal: the flood seed's allowed device key (did:key), which is also the legitimate device's agent")
	vaultArg   = flag.String("vault", "", "internal: the flood seed's hosted vault (namespace ID)")
	homeArg    = flag.String("home", "", "internal: the legitimate device's home directory")
	pauseArg   = flag.Duration("pause", 0, "internal: a fake peer's longest pause between two requests")
	floodN     = flag.Int("flood-peers", 0, "fake peers flooding the seed (default 2000, 40 with -smoke)")
	floodProcs = flag.Int("flood-procs", 4, "processes the fake peers are spread over")
	floodFor   = flag.Duration("flood-for", 0, "how long the flood lasts (default 20s, 2s with -smoke)")
	floodPause = flag.Duration("flood-pause", 50*time.Millisecond, "a fake peer's longest pause between two requests (uniformly random below it)")
	floodAfter = flag.Duration("flood-after", 0, "how long after the flood the seed's memory is read again (default 10s, 2s with -smoke)")

	streamsArg     = flag.Int("streams", 0, "internal: vault-sync streams each stream-flood host holds")
	reopenArg      = flag.Duration("reopen", 0, "internal: a stream-flood host resets and reopens its streams this often (0: it holds them)")
	streamFloodFor = flag.Duration("stream-flood-for", 0, "how long the device syncs during each flood of idle streams, and without one (default 20s, 3s with -smoke)")
)

// The refusals the seed documents: relay.ACL's reason for an unknown key,
// and the seed's rendezvous authorizer's for a key registering for an agent
// that is not its own.
const (
	floodRelayReason      = "relays only for devices of the agents it serves"
	floodRendezvousReason = "is not authorized for agent"
)

// floodSeedStat is what the flood seed reports on "STAT": its process
// figures and the counters of its services.
type floodSeedStat struct {
	procStat
	Peerstore               int                // peers the seed's peerstore remembers
	RendezvousRecords       float64            // records held (gauge)
	RendezvousAgents        float64            // agents with records held (gauge)
	RendezvousRegistrations float64            // records accepted
	RendezvousRefusals      map[string]float64 // requests refused, by reason code
	RelayResponses          map[string]float64 // reservation requests answered, by status
	RelayOpen               float64            // reservations opened − closed
	SyncSessions            map[string]float64 // vault sync sessions, by result
	StreamRefusals          map[string]float64 // vault-sync and blob streams refused, by reason
	UnknownStreams          float64            // streams unknown peers hold now (gauge)
	// The resource manager's transient scope (streams not yet past protocol
	// negotiation), sampled every 10 ms since the previous STAT: its
	// inbound stream limit, the most it held, and in how many samples it
	// was full (a new inbound stream from any peer is then reset).
	TransientLimit, TransientMax, TransientFull, TransientSamples int
}

// transientSampler samples the transient scope's inbound streams.
type transientSampler struct {
	mu                        sync.Mutex
	limit, max, full, samples int
}

func (t *transientSampler) run(rm network.ResourceManager) {
	for range time.Tick(10 * time.Millisecond) {
		_ = rm.ViewTransient(func(sc network.ResourceScope) error {
			n := sc.Stat().NumStreamsInbound
			t.mu.Lock()
			defer t.mu.Unlock()
			if l, ok := sc.(rcmgr.ResourceScopeLimiter); ok {
				t.limit = l.Limit().GetStreamLimit(network.DirInbound)
			}
			t.max, t.samples = max(t.max, n), t.samples+1
			if t.limit > 0 && n >= t.limit {
				t.full++
			}
			return nil
		})
	}
}

// take returns the figures since the previous take and starts again.
func (t *transientSampler) take(s *floodSeedStat) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s.TransientLimit, s.TransientMax, s.TransientFull, s.TransientSamples = t.limit, t.max, t.full, t.samples
	t.max, t.full, t.samples = 0, 0, 0
}

// runFloodSeed runs a seed built with node.New: relay in agents mode with
// -allow the only allowed key, DHT server, rendezvous on, -vault hosted,
// admin API off, listening on 127.0.0.1. It answers STAT.
func runFloodSeed() {
	defer benchutil.StartProfile(*profile, "flood-seed")()
	pub, err := identity.ParseDIDKey(*allowArg)
	if err != nil {
		log.Fatal(err)
	}
	ns, err := vault.ParseNamespaceID(*vaultArg)
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "seedfleet-bench-flood-seed-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	reg := prometheus.NewRegistry()
	n, err := node.New(node.Config{
		DataDir:      dir,
		Listen:       []string{"/ip4/127.0.0.1/tcp/0"},
		HostedVaults: []vault.NamespaceID{ns},
		Relay:        node.RelayConfig{Mode: config.RelayAgents, AllowedKeys: []ed25519.PublicKey{pub}, AdvertisePrivateAddrs: true},
		DHT:          node.DHTConfig{Mode: config.DHTServer},
		Registry:     reg,
		AdminListen:  "off",
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	var transient transientSampler
	go transient.run(n.Host().Network().ResourceManager())
	fmt.Printf("ADDR %s\n", n.Addrs()[0])
	commands(func(cmd string, _ []string) {
		switch cmd {
		case "STAT":
			s := floodSeedStat{procStat: selfStat()}
			transient.take(&s)
			s.Conns = len(n.Host().Network().Conns())
			s.Peerstore = len(n.Host().Peerstore().Peers())
			s.RendezvousRecords = metricsBy(reg, "seedfleet_rendezvous_records", "")[""]
			s.RendezvousAgents = metricsBy(reg, "seedfleet_rendezvous_agents", "")[""]
			s.RendezvousRegistrations = metricsBy(reg, "seedfleet_rendezvous_registrations_total", "")[""]
			s.RendezvousRefusals = metricsBy(reg, "seedfleet_rendezvous_refusals_total", "reason")
			s.RelayResponses = metricsBy(reg, "libp2p_relaysvc_reservation_request_response_status_total", "status")
			s.RelayOpen = counterValue(reg, "libp2p_relaysvc_reservations_total", map[string]string{"type": "opened"}) -
				counterValue(reg, "libp2p_relaysvc_reservations_total", map[string]string{"type": "closed"})
			s.SyncSessions = metricsBy(reg, "seedfleet_vault_sync_sessions_total", "result")
			s.StreamRefusals = metricsBy(reg, "seedfleet_stream_refusals_total", "reason")
			s.UnknownStreams = metricsBy(reg, "seedfleet_unknown_peer_streams", "")[""]
			reply("STAT", s)
		case "FREE":
			// What of the VmRSS is memory the Go runtime keeps but no
			// longer uses: return it to the OS, read VmRSS again.
			debug.FreeOSMemory()
			fmt.Printf("FREE %d\n", benchutil.ProcStatus("self", "VmRSS"))
		default:
			log.Fatalf("unknown command %q", cmd)
		}
	})
}

// floodReady is what a fake-peers process reports once its hosts are up.
type floodReady struct {
	Hosts   int
	NoRoute int // hosts whose DHT client did not add the seed to its routing table itself (it is put there by hand)
	Seconds float64
}

// floodResult counts a fake-peers process's requests during the flood.
type floodResult struct {
	Reserve, ReserveOK, ReserveRefused    int64 // refused: with the documented reason
	Register, RegisterOK, RegisterRefused int64
	DHT, DHTEmpty, DHTTimeout, DHTFound   int64          // empty: the lookup ended, before its timeout, with no provider
	DHTNoRoute                            int64          // lookups before which the seed was put back into the routing table (kad-dht drops a peer whose answer failed)
	Errors                                map[string]int // failures other than the documented refusals, by message (peer IDs elided)
	Seconds                               float64
	RSS                                   int64
	CPU                                   float64
}

// fakePeer is one fake device: its own key, a DHT client, and the agent it
// claims without being one of its devices.
type fakePeer struct {
	key    ed25519.PrivateKey
	h      host.Host
	d      *dht.IpfsDHT
	victim string
}

// runFloodPeers opens -n hosts (each its own key, no listen address, a DHT
// client bootstrapped to the seed), -par at a time, connects them to the
// seed and reports READY; on "GO <duration>" each host loops over a relay
// reservation, a rendezvous registration for an agent it does not belong
// to (every other host: the legitimate agent -allow; the others: an agent
// of a key it does not hold) and a DHT lookup of a random vault, pausing a
// random time below -pause between requests, and RESULT follows. It keeps
// its hosts until stdin closes.
func runFloodPeers() {
	seed, err := p2p.ParsePeerAddr(*seedArg)
	if err != nil {
		log.Fatal(err)
	}
	start := time.Now()
	fakes := make([]*fakePeer, *nArg)
	var next, noRoute atomic.Int64
	var wg sync.WaitGroup
	for range *parArg {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(fakes) {
					return
				}
				key, err := identity.Generate()
				if err != nil {
					log.Fatal(err)
				}
				h, err := p2p.NewHost(p2p.HostOptions{Key: key})
				if err != nil {
					log.Fatal(err)
				}
				f := &fakePeer{key: key, h: h, victim: *allowArg}
				if i%2 == 1 {
					other, err := identity.Generate()
					if err != nil {
						log.Fatal(err)
					}
					f.victim = identity.DIDKey(other.Public().(ed25519.PublicKey))
				}
				// Connect first: a DHT client dials its bootstrap peers at
				// once, past the -par at a time.
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				if err := h.Connect(ctx, seed); err != nil {
					log.Fatalf("fake peer %d: connect to the seed: %v", i, err)
				}
				if f.d, err = discovery.NewDHT(h, discovery.DHTOptions{BootstrapPeers: []peer.AddrInfo{seed}}); err != nil {
					log.Fatal(err)
				}
				// Identify, then kad-dht's lookup check (a FIND_NODE to the
				// seed), add the seed to the routing table; Bootstrap
				// retries a check that failed.
				for try := 0; try < 3 && f.d.RoutingTable().Size() == 0; try++ {
					if try > 0 {
						_ = f.d.Bootstrap(ctx)
					}
					wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
					<-waitRT(wctx, f.d)
					wcancel()
				}
				if f.d.RoutingTable().Size() == 0 {
					noRoute.Add(1)
					_, _ = f.d.RoutingTable().TryAddPeer(seed.ID, true, false)
				}
				cancel()
				fakes[i] = f
			}
		}()
	}
	wg.Wait()
	ready := floodReady{Hosts: len(fakes), NoRoute: int(noRoute.Load())}
	ready.Seconds = time.Since(start).Seconds()
	reply("READY", ready)
	commands(func(cmd string, args []string) {
		if cmd != "GO" || len(args) != 1 {
			log.Fatalf("unknown command %q %q", cmd, args)
		}
		d, err := time.ParseDuration(args[0])
		if err != nil {
			log.Fatal(err)
		}
		reply("RESULT", flood(fakes, seed, d, *pauseArg))
	})
}

// waitRT is closed once d's routing table holds a peer (or ctx ends).
func waitRT(ctx context.Context, d *dht.IpfsDHT) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for d.RoutingTable().Size() == 0 && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return done
}

// peerIDs matches the peer IDs in error messages, which differ per peer.
var peerIDs = regexp.MustCompile(`12D3KooW[1-9A-HJ-NP-Za-km-z]+`)

// flood runs every fake peer's loop for d and counts the outcomes.
func flood(fakes []*fakePeer, seed peer.AddrInfo, d, pause time.Duration) floodResult {
	var (
		c     [11]atomic.Int64 // the counters of floodResult, in order
		errMu sync.Mutex
		errs  = map[string]int{}
		wg    sync.WaitGroup
	)
	const (
		reserve = iota
		reserveOK
		reserveRefused
		register
		registerOK
		registerRefused
		lookup
		lookupEmpty
		lookupTimeout
		lookupFound
		lookupNoRoute
	)
	other := func(kind string, err error) {
		msg := kind + ": " + peerIDs.ReplaceAllString(err.Error(), "<peer>")
		errMu.Lock()
		defer errMu.Unlock()
		if _, ok := errs[msg]; ok || len(errs) < 20 {
			errs[msg]++
		} else {
			errs[kind+": (other messages)"]++
		}
	}
	cpu := benchutil.SelfCPU()
	start := time.Now()
	end := start.Add(d)
	for _, f := range fakes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for step := rand.IntN(3); time.Now().Before(end); step++ {
				switch step % 3 {
				case 0:
					c[reserve].Add(1)
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					_, err := relay.Reserve(ctx, f.h, seed)
					cancel()
					switch {
					case err == nil:
						c[reserveOK].Add(1)
					case strings.Contains(err.Error(), floodRelayReason):
						c[reserveRefused].Add(1)
					default:
						other("reserve", err)
					}
				case 1:
					c[register].Add(1)
					rec, err := rendezvous.NewRecord(f.victim, "phone", f.key, nil, time.Now())
					if err != nil {
						log.Fatal(err)
					}
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					err = rendezvous.Register(ctx, f.h, seed.ID, rec)
					cancel()
					var refused *rendezvous.RefusedError
					switch {
					case err == nil:
						c[registerOK].Add(1)
					case errors.As(err, &refused) && refused.Code == rendezvous.CodeUnauthorized && strings.Contains(refused.Reason, floodRendezvousReason):
						c[registerRefused].Add(1)
					default:
						other("register", err)
					}
				case 2:
					c[lookup].Add(1)
					if f.d.RoutingTable().Size() == 0 {
						// A flooder keeps asking: the seed goes back in.
						c[lookupNoRoute].Add(1)
						_, _ = f.d.RoutingTable().TryAddPeer(seed.ID, true, false)
					}
					var ns [32]byte
					for i := 0; i < len(ns); i += 8 {
						binary.LittleEndian.PutUint64(ns[i:], rand.Uint64())
					}
					ctx, cancel := context.WithTimeout(context.Background(), time.Second)
					found := discovery.FindProviders(ctx, f.d, discovery.VaultCID(ns), 1)
					timedOut := ctx.Err() != nil
					cancel()
					switch {
					case len(found) > 0:
						c[lookupFound].Add(1)
					case timedOut:
						c[lookupTimeout].Add(1)
					default:
						c[lookupEmpty].Add(1)
					}
				}
				if pause > 0 {
					time.Sleep(rand.N(pause))
				}
			}
		}()
	}
	wg.Wait()
	return floodResult{
		Reserve: c[reserve].Load(), ReserveOK: c[reserveOK].Load(), ReserveRefused: c[reserveRefused].Load(),
		Register: c[register].Load(), RegisterOK: c[registerOK].Load(), RegisterRefused: c[registerRefused].Load(),
		DHT: c[lookup].Load(), DHTEmpty: c[lookupEmpty].Load(), DHTTimeout: c[lookupTimeout].Load(),
		DHTFound: c[lookupFound].Load(), DHTNoRoute: c[lookupNoRoute].Load(),
		Errors: errs, Seconds: time.Since(start).Seconds(), RSS: benchutil.ProcStatus("self", "VmRSS"), CPU: benchutil.SelfCPU() - cpu,
	}
}

// benchFlood: a seed (node.New) with one legitimate device; the device's
// requests are timed for idleDur, then during a flood of n fake peers in
// procs processes lasting floodDur; the seed's memory before, during and
// afterDur after the flood.
func benchFlood(n, procs int, floodDur, idleDur, afterDur time.Duration) {
	fmt.Printf("# flood: seed = node.New (relay in agents mode with the device's key allowed, DHT server, rendezvous on, one hosted vault, admin API off) at 127.0.0.1; %d fake peers (own key each, a DHT client bootstrapped to the seed) in %d processes, each in a loop for %s: relay.Reserve (refused: unknown key), rendezvous.Register for an agent it does not belong to (half of them the legitimate device's agent; refused), DHT FindProviders of a random vault key (1 s timeout), a pause uniformly random below %s after each\n",
		n, procs, floodDur, *floodPause)
	fmt.Printf("# flood: the legitimate device (another process, one host, its key allowed and the vault's author) every 500 ms: writes a changed entry and syncs the vault with the seed, relay.Reserve, rendezvous.Register for its own agent (its did:key), a rendezvous lookup of its agent, a DHT lookup of its vault; %s before the flood (baseline), then during it\n",
		idleDur)
	benchutil.Settle()
	dir, err := os.MkdirTemp("", "seedfleet-bench-flood-")
	if err != nil {
		die("%v", err)
	}
	defer os.RemoveAll(dir)
	home, err := client.Open(dir)
	if err != nil {
		die("%v", err)
	}
	ns, err := home.CreateVault()
	if err != nil {
		die("%v", err)
	}
	did := identity.DIDKey(home.Key.Public().(ed25519.PublicKey))
	if err := home.Close(); err != nil {
		die("%v", err)
	}

	seed := spawn("flood-seed", "-allow", did, "-vault", ns.String())
	defer seed.stop()
	addr := seed.expect("ADDR", 30*time.Second)
	seedStat := func() floodSeedStat {
		var s floodSeedStat
		seed.ask("STAT", "STAT", time.Minute, &s)
		return s
	}
	dev := spawn("flood-device", "-seed", addr, "-home", dir, "-vault", ns.String())
	defer dev.stop()
	dev.expect("READY", time.Minute)
	var idle, during legitResult
	dev.ask(fmt.Sprintf("RUN idle %s", idleDur), "RESULT", idleDur+2*time.Minute, &idle)
	seedIdle := seedStat()

	var peers []*child
	defer func() {
		for _, p := range peers {
			p.stop()
		}
	}()
	for i := range procs {
		k := n/procs + btoi(i < n%procs)
		peers = append(peers, spawn("flood-peers", "-seed", addr, "-n", strconv.Itoa(k), "-par", "16",
			"-allow", did, "-pause", floodPause.String()))
	}
	var ready floodReady
	for _, p := range peers {
		var r floodReady
		if err := json.Unmarshal([]byte(p.expect("READY", 10*time.Minute)), &r); err != nil {
			die("flood-peers: %v", err)
		}
		ready.Hosts, ready.NoRoute, ready.Seconds = ready.Hosts+r.Hosts, ready.NoRoute+r.NoRoute, max(ready.Seconds, r.Seconds)
	}
	seedConnected := seedStat()
	fmt.Printf("# flood: while the fake peers connected, the seed's transient resource scope held up to %d of its %d inbound streams (full in %d of %d samples)\n",
		seedConnected.TransientMax, seedConnected.TransientLimit, seedConnected.TransientFull, seedConnected.TransientSamples)
	fmt.Printf("# flood: %d fake hosts up and connected in %.1fs (the seed put into %d DHT clients' routing tables by hand: kad-dht had not added it within 15 s, 2 Bootstraps included); the seed holds %d connections, VmRSS %.1f MiB, heap live %.1f MiB, %d goroutines\n",
		ready.Hosts, ready.Seconds, ready.NoRoute, seedConnected.Conns, benchutil.MiB(seedConnected.RSS), benchutil.MiB(seedConnected.HeapLive), seedConnected.Goroutines)

	seedPID := strconv.Itoa(seed.pid())
	machine, seedCPU := benchutil.MachineCPU(), benchutil.ProcCPU(seed.pid())
	var maxRSS atomic.Int64
	sampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			if v := benchutil.ProcStatus(seedPID, "VmRSS"); v > maxRSS.Load() {
				maxRSS.Store(v)
			}
			select {
			case <-sampling:
				return
			case <-t.C:
			}
		}
	}()
	start := time.Now()
	for _, p := range peers {
		p.send("GO " + floodDur.String())
	}
	dev.send(fmt.Sprintf("RUN flood %s", floodDur))
	fr := floodResult{Errors: map[string]int{}}
	var fakeCPU float64
	var fakeRSS int64
	for _, p := range peers {
		var r floodResult
		if err := json.Unmarshal([]byte(p.expect("RESULT", floodDur+5*time.Minute)), &r); err != nil {
			die("flood-peers: %v", err)
		}
		fr.Reserve, fr.ReserveOK, fr.ReserveRefused = fr.Reserve+r.Reserve, fr.ReserveOK+r.ReserveOK, fr.ReserveRefused+r.ReserveRefused
		fr.Register, fr.RegisterOK, fr.RegisterRefused = fr.Register+r.Register, fr.RegisterOK+r.RegisterOK, fr.RegisterRefused+r.RegisterRefused
		fr.DHT, fr.DHTEmpty, fr.DHTTimeout, fr.DHTFound, fr.DHTNoRoute = fr.DHT+r.DHT, fr.DHTEmpty+r.DHTEmpty, fr.DHTTimeout+r.DHTTimeout, fr.DHTFound+r.DHTFound, fr.DHTNoRoute+r.DHTNoRoute
		for msg, k := range r.Errors {
			fr.Errors[msg] += k
		}
		fr.Seconds = max(fr.Seconds, r.Seconds)
		fakeCPU, fakeRSS = fakeCPU+r.CPU, fakeRSS+r.RSS
	}
	if err := json.Unmarshal([]byte(dev.expect("RESULT", floodDur+2*time.Minute)), &during); err != nil {
		die("flood-device: %v", err)
	}
	wall := time.Since(start).Seconds()
	close(sampling)
	<-sampled
	seedCPU, machine = benchutil.ProcCPU(seed.pid())-seedCPU, benchutil.MachineCPU()-machine
	seedPeak := seedStat()

	for _, p := range peers {
		p.stop()
	}
	peers = nil
	time.Sleep(afterDur)
	seedAfter := seedStat()
	seed.send("FREE")
	freed, _ := strconv.ParseInt(seed.expect("FREE", time.Minute), 10, 64)

	fmt.Printf("# flood: %.1fs (the slowest fake-peers process, in-flight requests finished); %d requests from the fake peers (%.0f/s); CPU-seconds: seed %.1f, fake-peer processes %.1f, whole machine %.1f of %.1f available (%d CPUs)\n",
		fr.Seconds, fr.Reserve+fr.Register+fr.DHT, float64(fr.Reserve+fr.Register+fr.DHT)/fr.Seconds, seedCPU, fakeCPU, machine, wall*float64(runtime.NumCPU()), runtime.NumCPU())
	fmt.Printf("# flood: fake relay reservations %d: %d refused with the documented reason, %d granted, %d failed otherwise\n",
		fr.Reserve, fr.ReserveRefused, fr.ReserveOK, fr.Reserve-fr.ReserveRefused-fr.ReserveOK)
	fmt.Printf("# flood: fake rendezvous registrations %d: %d refused (unauthorized, with the documented reason), %d accepted, %d failed otherwise\n",
		fr.Register, fr.RegisterRefused, fr.RegisterOK, fr.Register-fr.RegisterRefused-fr.RegisterOK)
	fmt.Printf("# flood: fake DHT lookups %d: %d answered with no provider, %d timed out (1 s), %d found a provider; before %d of them the seed had to be put back into the client's routing table (kad-dht drops a peer whose answer failed)\n",
		fr.DHT, fr.DHTEmpty, fr.DHTTimeout, fr.DHTFound, fr.DHTNoRoute)
	for _, msg := range slices.Sorted(maps.Keys(fr.Errors)) {
		fmt.Printf("# flood: fake peers' other failures: %d × %s\n", fr.Errors[msg], msg)
	}
	fmt.Printf("# flood seed: rendezvous refusals by reason %v, records held %v of %v agents (accepted registrations %v); relay reservation answers by status %v, reservations open %v; vault sync sessions %v\n",
		seedPeak.RendezvousRefusals, seedPeak.RendezvousRecords, seedPeak.RendezvousAgents, seedPeak.RendezvousRegistrations,
		seedPeak.RelayResponses, seedPeak.RelayOpen, seedPeak.SyncSessions)
	fmt.Printf("# flood seed: during the flood its resource manager's transient scope (inbound streams before protocol negotiation ends, all peers together) held up to %d of its %d streams and was full in %d of %d samples taken every 10 ms: while full, every new inbound stream, the legitimate device's included, is reset\n",
		seedPeak.TransientMax, seedPeak.TransientLimit, seedPeak.TransientFull, seedPeak.TransientSamples)
	for _, x := range []struct {
		name string
		s    floodSeedStat
	}{{"idle (one device)", seedIdle}, {"fake peers connected", seedConnected}, {"end of the flood", seedPeak}, {fmt.Sprintf("%s after the fake peers left", afterDur), seedAfter}} {
		fmt.Printf("# flood seed, %s: VmRSS %.1f MiB (VmHWM %.1f), heap live %.1f MiB, %d goroutines, %d connections, %d peers in the peerstore\n",
			x.name, benchutil.MiB(x.s.RSS), benchutil.MiB(x.s.HWM), benchutil.MiB(x.s.HeapLive), x.s.Goroutines, x.s.Conns, x.s.Peerstore)
	}
	fmt.Printf("# flood seed, %s after the fake peers left, after debug.FreeOSMemory (what the Go runtime kept but did not use goes back to the OS): VmRSS %.1f MiB\n", afterDur, benchutil.MiB(freed))
	fmt.Printf("# flood: the fake-peer processes held %.1f MiB VmRSS in all at the end; the seed's largest VmRSS sampled every 200 ms during the flood: %.1f MiB\n",
		benchutil.MiB(fakeRSS), benchutil.MiB(maxRSS.Load()))
	for _, r := range []legitResult{idle, during} {
		fmt.Printf("# legitimate device, %s: %d rounds; sync %d/%d ok (p50 %.1f ms, p99 %.1f ms, max %.1f ms); relay.Reserve %d/%d (p50 %.1f ms); rendezvous.Register %d/%d (p50 %.1f ms); lookup of its agent returns only its record %d/%d (p50 %.1f ms); DHT lookup of its vault finds the seed %d/%d (p50 %.1f ms)\n",
			r.Label, r.Rounds, r.SyncOK, r.SyncTotal, percentile(r.SyncMillis, 50), percentile(r.SyncMillis, 99), percentile(r.SyncMillis, 100),
			r.ReserveOK, r.ReserveTotal, percentile(r.ReserveMillis, 50), r.RendezvousOK, r.RendezvousTotal, percentile(r.RegisterMillis, 50),
			r.LookupOK, r.LookupTotal, percentile(r.LookupMillis, 50), r.DHTOK, r.DHTTotal, percentile(r.DHTMillis, 50))
		for _, e := range r.Errors {
			fmt.Printf("# legitimate device, %s: %s\n", r.Label, e)
		}
	}
	if avail := wall * float64(runtime.NumCPU()); machine > 0.9*avail {
		fmt.Printf("# note: the machine's CPUs were %.0f%% busy during the flood (seed, fake peers and device share %d CPUs): the device's latencies include waiting for a CPU\n",
			100*machine/avail, runtime.NumCPU())
	}

	benchutil.Bench("seed_flood_rss_idle_mib", benchutil.Round(benchutil.MiB(seedIdle.RSS), 1), "MiB")
	benchutil.Bench("seed_flood_rss_connected_mib", benchutil.Round(benchutil.MiB(seedConnected.RSS), 1), "MiB")
	benchutil.Bench("seed_flood_rss_peak_mib", benchutil.Round(benchutil.MiB(seedPeak.HWM), 1), "MiB")
	benchutil.Bench("seed_flood_rss_after_mib", benchutil.Round(benchutil.MiB(seedAfter.RSS), 1), "MiB")
	benchutil.Bench("seed_flood_rss_after_free_os_memory_mib", benchutil.Round(benchutil.MiB(freed), 1), "MiB")
	benchutil.Bench("seed_flood_heap_live_after_mib", benchutil.Round(benchutil.MiB(seedAfter.HeapLive), 1), "MiB")
	benchutil.Bench("seed_flood_goroutines_idle", float64(seedIdle.Goroutines), "goroutines")
	benchutil.Bench("seed_flood_goroutines_after", float64(seedAfter.Goroutines), "goroutines")
	benchutil.Bench("seed_flood_cpu_seconds", benchutil.Round(seedCPU, 1), "s")
	benchutil.Bench("flood_peers", float64(ready.Hosts), "peers")
	benchutil.Bench("flood_attempts_total", float64(fr.Reserve+fr.Register+fr.DHT), "requests")
	benchutil.Bench("flood_attempts_reserve", float64(fr.Reserve), "requests")
	benchutil.Bench("flood_attempts_rendezvous", float64(fr.Register), "requests")
	benchutil.Bench("flood_attempts_dht", float64(fr.DHT), "requests")
	benchutil.Bench("flood_refusals_reserve", float64(fr.ReserveRefused), "requests")
	benchutil.Bench("flood_refusals_rendezvous", float64(fr.RegisterRefused), "requests")
	benchutil.Bench("flood_dht_empty_answers", float64(fr.DHTEmpty), "requests")
	benchutil.Bench("flood_granted_reserve", float64(fr.ReserveOK), "requests")
	benchutil.Bench("flood_granted_rendezvous", float64(fr.RegisterOK), "requests")
	benchutil.Bench("flood_dht_providers_found", float64(fr.DHTFound), "requests")
	benchutil.Bench("flood_other_failures", float64(fr.Reserve-fr.ReserveRefused-fr.ReserveOK+fr.Register-fr.RegisterRefused-fr.RegisterOK+fr.DHT-fr.DHTEmpty-fr.DHTFound), "requests")
	benchutil.Bench("legit_sync_ok", float64(during.SyncOK), "syncs")
	benchutil.Bench("legit_sync_total", float64(during.SyncTotal), "syncs")
	benchutil.Bench("legit_sync_p50_ms_idle", benchutil.Round(percentile(idle.SyncMillis, 50), 1), "ms")
	benchutil.Bench("legit_sync_p99_ms_idle", benchutil.Round(percentile(idle.SyncMillis, 99), 1), "ms")
	benchutil.Bench("legit_sync_p50_ms", benchutil.Round(percentile(during.SyncMillis, 50), 1), "ms")
	benchutil.Bench("legit_sync_p99_ms", benchutil.Round(percentile(during.SyncMillis, 99), 1), "ms")
	benchutil.Bench("legit_reserve_ok", float64(during.ReserveOK), "reservations")
	benchutil.Bench("legit_reserve_total", float64(during.ReserveTotal), "reservations")
	benchutil.Bench("legit_rendezvous_ok", float64(during.RendezvousOK), "registrations")
	benchutil.Bench("legit_rendezvous_total", float64(during.RendezvousTotal), "registrations")
	benchutil.Bench("legit_rendezvous_lookup_ok", float64(during.LookupOK), "lookups")
	benchutil.Bench("legit_rendezvous_lookup_total", float64(during.LookupTotal), "lookups")
	benchutil.Bench("legit_dht_ok", float64(during.DHTOK), "lookups")
	benchutil.Bench("legit_dht_total", float64(during.DHTTotal), "lookups")
	benchutil.Bench("seed_flood_rendezvous_records_after", seedAfter.RendezvousRecords, "records")
	benchutil.Bench("seed_flood_transient_streams_max", float64(seedPeak.TransientMax), "streams")
	benchutil.Bench("seed_flood_transient_streams_limit", float64(seedPeak.TransientLimit), "streams")
	benchutil.Bench("seed_flood_transient_full_pct", benchutil.Round(100*float64(seedPeak.TransientFull)/float64(max(1, seedPeak.TransientSamples)), 1), "%")

	benchStreamFloods(addr, dev, seedStat)
}
