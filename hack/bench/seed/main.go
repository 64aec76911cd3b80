// Command seed measures what a seed node spends on the devices and vaults it
// serves besides storing them: relaying (throughput through the circuit
// relay next to a direct connection over the same transport stack, in the
// same run), holding relay reservations (the seed's memory with 1,000 of
// them) and announcing hosted vaults in the DHT (time to provide 10,000
// keys, and the memory of the seed and of the DHT peers that store the
// records), and withstanding abuse (a flood of refused relay reservations,
// refused rendezvous registrations and DHT lookups from thousands of fake
// peers: the seed's memory, and a legitimate device's syncs, reservations
// and registrations during it; then floods of idle vault-sync streams, held
// or reopened, and the device's sync success rate during each next to its
// rate without a flood). Each figure is printed as
// "BENCH <name> <value> <unit>".
//
// Seeds, devices and DHT peers run as separate processes (this binary
// re-executed with -role), so CPU time and RSS are each process's own. Child
// processes read commands on stdin and exit when it closes; the parent kills
// the ones it started if it fails.
package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/seedfleet/seedfleet/hack/benchutil"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

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
	role    = flag.String("role", "", "internal: relay-seed, sink, sender, devices, dht-seed, dht-peers, flood-seed, flood-peers, flood-device or stream-flood")
	peerArg = flag.String("peer", "", "internal: multiaddr to connect to (sink or DHT seed)")
	seedArg = flag.String("seed", "", "internal: the relay seed's multiaddr")
	listen  = flag.Bool("listen", false, "internal: the sink listens on loopback (direct baseline)")
	relayed = flag.Bool("relayed", false, "internal: the sender expects a relayed (limited) connection")
	sizeArg = flag.Int64("size", 0, "internal: bytes to send")
	pidsArg = flag.String("pids", "", "internal: seed,sink process IDs (0: none), for their CPU time")
	nArg    = flag.Int("n", 0, "internal: hosts (devices, dht-peers)")
	parArg  = flag.Int("par", 8, "internal: reservations in flight per devices process")
	maxRsvp = flag.Int("max-reservations", 0, "internal: the relay seed's MaxReservations and MaxReservationsPerIP (0: relay defaults)")
	bufArg  = flag.Int("relay-buffer", 0, "internal: run go-libp2p's relay directly with this copy buffer size (0: relay.New, whose buffer is go-libp2p's default 2 KiB)")

	smoke      = flag.Bool("smoke", false, "tiny sizes: checks the driver works (CI)")
	only       = flag.String("only", "", "comma-separated parts to run: relay,rsvp,dht,flood (default all)")
	runsArg    = flag.Int("runs", 0, "runs of each relay/direct transfer, the median reported (default 3, 1 with -smoke)")
	profile    = flag.String("cpuprofile", "", "write CPU profiles of the child processes to this prefix")
	rsvpN      = flag.Int("reservations", 0, "reservations on the seed (default 1000, 20 with -smoke)")
	clientsN   = flag.Int("clients", 4, "device processes the reservations are spread over")
	keysN      = flag.Int("keys", 0, "hosted vaults the DHT seed provides (default 10000, 200 with -smoke)")
	dhtPeersN  = flag.Int("dht-peers", 0, "DHT server peers besides the seed (default 10, 3 with -smoke)")
	hold       = flag.Duration("hold", -1, "after the reservations, wait this long and count them again: go-libp2p's connection manager trims connections older than its 1 min grace period (default 75s, 0 with -smoke)")
	diagBufArg = flag.Int("diag-relay-buffer", 0, "also relay through go-libp2p's relay run directly with this copy buffer size, as a diagnostic (0: skip)")
	seedRcmgr  = flag.String("seed-rcmgr", "raised", "the reservation seed's resource manager: raised (system connection limits above the reservations), config (node.FromConfig with resources.maxConnsInbound raised, as an operator would), default (go-libp2p's autoscaled limits)")
)

const (
	protoSink = "/seedfleet/bench-sink/1.0.0"
	// copyBuf is the write and read size of the transfers.
	copyBuf = 256 << 10
)

func main() {
	log.SetFlags(0)
	flag.Parse()
	if *role != "" {
		log.SetPrefix(*role + ": ")
	}
	switch *role {
	case "relay-seed":
		runRelaySeed()
	case "sink":
		runSink()
	case "sender":
		runSender()
	case "devices":
		runDevices()
	case "dht-seed":
		runDHTSeed()
	case "dht-peers":
		runDHTPeers()
	case "flood-seed":
		runFloodSeed()
	case "flood-peers":
		runFloodPeers()
	case "flood-device":
		runFloodDevice()
	case "stream-flood":
		runStreamFlood()
	case "":
		runBench()
	default:
		log.Fatalf("unknown -role %q", *role)
	}
}

func newHost(listen bool, rm network.ResourceManager) host.Host {
	key, err := identity.Generate()
	if err != nil {
		log.Fatal(err)
	}
	o := p2p.HostOptions{Key: key, ResourceManager: rm}
	if rm != nil && *maxRsvp > 0 {
		// A seed's watermarks, as node.New sets them: closing a connection
		// would end its reservation.
		o.ConnHigh = max(4096, 2**maxRsvp)
		o.ConnLow = o.ConnHigh * 3 / 4
	}
	if listen {
		o.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	h, err := p2p.NewHost(o)
	if err != nil {
		log.Fatal(err)
	}
	return h
}

// ---- process accounting ----

// procStat is what a child reports on "STAT": its memory as the kernel sees
// it (VmRSS as-is, then the Go heap still live after a forced GC) and the
// figures of its part.
type procStat struct {
	RSS        int64 // VmRSS, read before the GC below
	HWM        int64 // VmHWM
	HeapLive   int64 // bytes of Go heap in use after runtime.GC()
	Goroutines int
	Conns      int
	// relay seed: reservations open (opened − closed, from the relay's metrics)
	Reservations int `json:",omitempty"`
	// DHT: routing table size (seed), smallest of the peers' (dht-peers)
	RoutingTable int `json:",omitempty"`
	// DHT seed: failed announcements (the provider's error counter)
	ProvideErrors float64 `json:",omitempty"`
	CPU           float64
}

func selfStat() procStat {
	s := procStat{RSS: benchutil.ProcStatus("self", "VmRSS"), HWM: benchutil.ProcStatus("self", "VmHWM"), CPU: benchutil.SelfCPU()}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.HeapLive = int64(ms.HeapAlloc)
	s.Goroutines = runtime.NumGoroutine()
	return s
}

// reply prints one protocol line: "<tag> <json>".
func reply(tag string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s %s\n", tag, b)
}

// commands runs handle for each line on stdin until it closes (the parent
// is done, or gone).
func commands(handle func(cmd string, args []string)) {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 {
			handle(f[0], f[1:])
		}
	}
}

// exitWithParent ends this process when stdin closes (for roles that do
// not read commands).
func exitWithParent() {
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
}

func counterValue(reg *prometheus.Registry, name string, labels map[string]string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// ---- relay seed ----

// seedResourceManager is the reservation seed's resource manager (see -seed-rcmgr).
func seedResourceManager() network.ResourceManager {
	if *maxRsvp == 0 {
		return nil
	}
	conns := 2 * *maxRsvp
	switch *seedRcmgr {
	case "default":
		return nil
	case "config":
		c := config.Default()
		c.Resources.MaxConnsInbound = conns
		nc, err := node.FromConfig(c)
		if err != nil {
			log.Fatal(err)
		}
		return nc.ResourceManager
	case "raised":
		// What node.New gives a seed: go-libp2p's autoscaled limits with
		// its service limits, connections raised above the reservations.
		mgr, err := node.SeedResourceManager(config.Resources{MaxConnsInbound: conns})
		if err != nil {
			log.Fatal(err)
		}
		return mgr
	}
	log.Fatalf("unknown -seed-rcmgr %q", *seedRcmgr)
	return nil
}

// runRelaySeed runs relay.New in public mode with circuits of ≥ 1 GiB and
// 10 min, prints its address and answers STAT.
func runRelaySeed() {
	defer benchutil.StartProfile(*profile, "relay-seed")()
	h := newHost(true, seedResourceManager())
	defer h.Close()
	reg := prometheus.NewRegistry()
	limits := relay.Limits{
		MaxReservations:      *maxRsvp,
		MaxReservationsPerIP: *maxRsvp,
		CircuitBytes:         1 << 30,
		CircuitDuration:      10 * time.Minute,
	}
	if *bufArg > 0 {
		// Diagnostic: what relay.New would do with a larger copy buffer.
		rc := relayv2.DefaultResources()
		rc.Limit = &relayv2.RelayLimit{Duration: limits.CircuitDuration, Data: limits.CircuitBytes}
		rc.BufferSize = *bufArg
		r, err := relayv2.New(h, relayv2.WithResources(rc), relayv2.WithACL(relay.NewACL(relay.ModePublic)),
			relayv2.WithReservationAddressFilter(func(ma.Multiaddr) bool { return true }))
		if err != nil {
			log.Fatal(err)
		}
		defer r.Close()
	} else {
		svc, err := relay.New(h, relay.ModePublic, relay.NewACL(relay.ModePublic), limits, reg)
		if err != nil {
			log.Fatal(err)
		}
		defer svc.Close()
	}
	fmt.Printf("ADDR %s\n", p2p.FullAddrs(h)[0])
	commands(func(cmd string, _ []string) {
		switch cmd {
		case "STAT":
			s := selfStat()
			s.Conns = len(h.Network().Conns())
			s.Reservations = int(counterValue(reg, "libp2p_relaysvc_reservations_total", map[string]string{"type": "opened"}) -
				counterValue(reg, "libp2p_relaysvc_reservations_total", map[string]string{"type": "closed"}))
			reply("STAT", s)
		default:
			log.Fatalf("unknown command %q", cmd)
		}
	})
}

// ---- sink (device B) and sender (device A) ----

// runSink serves protoSink: it reads a stream to its end, discards the
// bytes and answers with their count. With -seed it reserves a slot on the
// seed's relay and prints its circuit address; with -listen its own.
func runSink() {
	defer benchutil.StartProfile(*profile, "sink")()
	h := newHost(*listen, nil)
	defer h.Close()
	h.SetStreamHandler(protoSink, func(s network.Stream) {
		n, err := drain(s)
		if err != nil {
			log.Printf("sink: read after %d bytes: %v", n, err)
			s.Reset()
			return
		}
		if err := binary.Write(s, binary.BigEndian, n); err != nil {
			log.Printf("sink: answer: %v", err)
		}
		s.Close()
	})
	if *seedArg != "" {
		seed, err := p2p.ParsePeerAddr(*seedArg)
		if err != nil {
			log.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if _, err := relay.Reserve(ctx, h, seed); err != nil {
			log.Fatal(err)
		}
		cancel()
		circuit, err := relay.CircuitAddr(seed)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("ADDR %s/p2p/%s\n", circuit, h.ID())
	} else {
		fmt.Printf("ADDR %s\n", p2p.FullAddrs(h)[0])
	}
	commands(func(string, []string) {})
}

// drain reads r to its end in copyBuf reads and discards the bytes.
func drain(r io.Reader) (int64, error) {
	buf := make([]byte, copyBuf)
	var n int64
	for {
		m, err := r.Read(buf)
		n += int64(m)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

type sendResult struct {
	Seconds    float64
	Bytes      int64
	Limited    bool    // the stream's connection is relayed (limited)
	Remote     string  // its remote multiaddr
	SenderCPU  float64 // CPU seconds of each process during the transfer
	SeedCPU    float64
	SinkCPU    float64
	MachineCPU float64 // user+system CPU seconds of the whole machine
	SeedIdle   int64   // the seed's VmRSS before the transfer, VmHWM after
	SeedPeak   int64
}

// runSender connects to the sink (through the relay or directly), opens a
// stream that may use a limited connection and sends -size bytes; the time
// runs from the first byte written to the sink's answer that it read them all.
func runSender() {
	exitWithParent()
	defer benchutil.StartProfile(*profile, "sender")()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	info, err := p2p.ParsePeerAddr(*peerArg)
	if err != nil {
		log.Fatal(err)
	}
	var seedPID, sinkPID int
	if _, err := fmt.Sscanf(*pidsArg, "%d,%d", &seedPID, &sinkPID); err != nil {
		log.Fatalf("-pids %q: %v", *pidsArg, err)
	}
	h := newHost(false, nil)
	defer h.Close()
	if err := h.Connect(ctx, info); err != nil {
		log.Fatalf("connect to the sink at %s: %v", *peerArg, err)
	}
	s, err := h.NewStream(network.WithAllowLimitedConn(ctx, "bench"), info.ID, protoSink)
	if err != nil {
		log.Fatalf("open a stream to the sink: %v", err)
	}
	res := sendResult{Limited: s.Conn().Stat().Limited, Remote: s.Conn().RemoteMultiaddr().String()}
	if res.Limited != *relayed {
		log.Fatalf("the stream's connection is limited=%v (%s), want limited=%v", res.Limited, res.Remote, *relayed)
	}
	buf := make([]byte, copyBuf)
	r := rand.NewChaCha8([32]byte{7})
	_, _ = r.Read(buf)
	seed := strconv.Itoa(seedPID)
	if seedPID != 0 {
		res.SeedIdle = benchutil.ProcStatus(seed, "VmRSS")
	}
	machine, seedCPU, sinkCPU, cpu := benchutil.MachineCPU(), benchutil.ProcCPU(seedPID), benchutil.ProcCPU(sinkPID), benchutil.SelfCPU()
	start := time.Now()
	for left := *sizeArg; left > 0; {
		n := min(left, int64(len(buf)))
		if _, err := s.Write(buf[:n]); err != nil {
			log.Fatalf("write after %d bytes: %v", *sizeArg-left, err)
		}
		left -= n
	}
	if err := s.CloseWrite(); err != nil {
		log.Fatal(err)
	}
	if err := binary.Read(s, binary.BigEndian, &res.Bytes); err != nil {
		log.Fatalf("the sink's answer: %v", err)
	}
	res.Seconds = time.Since(start).Seconds()
	res.SenderCPU, res.SeedCPU, res.SinkCPU = benchutil.SelfCPU()-cpu, benchutil.ProcCPU(seedPID)-seedCPU, benchutil.ProcCPU(sinkPID)-sinkCPU
	res.MachineCPU = benchutil.MachineCPU() - machine
	if seedPID != 0 {
		res.SeedPeak = benchutil.ProcStatus(seed, "VmHWM")
	}
	s.Close()
	if res.Bytes != *sizeArg {
		log.Fatalf("the sink read %d bytes, want %d", res.Bytes, *sizeArg)
	}
	reply("RESULT", res)
}

// ---- devices: many hosts reserving a slot each ----

type devicesResult struct {
	OK, Failed int
	FirstErr   string
	Seconds    float64 // from the first reservation to the last
	HostsRSS   int64   // this process's VmRSS with its hosts open and reserved
}

// runDevices opens -n hosts (each its own key, no listen address) and has
// each reserve a slot on the seed's relay, -par at a time; it keeps them
// until stdin closes.
func runDevices() {
	seed, err := p2p.ParsePeerAddr(*seedArg)
	if err != nil {
		log.Fatal(err)
	}
	hosts := make([]host.Host, *nArg)
	for i := range hosts {
		hosts[i] = newHost(false, nil)
	}
	var (
		next, ok, failed atomic.Int64
		firstErr         atomic.Value
		wg               sync.WaitGroup
	)
	start := time.Now()
	for range *parArg {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(hosts) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				_, err := relay.Reserve(ctx, hosts[i], seed)
				cancel()
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	res := devicesResult{OK: int(ok.Load()), Failed: int(failed.Load()), Seconds: time.Since(start).Seconds(), HostsRSS: benchutil.ProcStatus("self", "VmRSS")}
	if e, _ := firstErr.Load().(string); e != "" {
		res.FirstErr = e
	}
	reply("RESULT", res)
	commands(func(string, []string) {})
	// Exit without closing every host: the seed sees the connections drop either way.
}

// ---- DHT ----

// vaultKeys are n VaultCIDs of made-up namespace IDs; the DHT peers derive
// the same ones to count the records they hold.
func vaultKeys(n int) []cid.Cid {
	keys := make([]cid.Cid, n)
	for i := range keys {
		keys[i] = discovery.VaultCID(sha256.Sum256(binary.BigEndian.AppendUint64([]byte("seedfleet-bench-vault"), uint64(i))))
	}
	return keys
}

type provideResult struct {
	Keys     int
	Seconds  float64 // from Set to the last key's announcement (LastProvided)
	Errors   float64 // announcements that failed and were retried
	Provided int
}

// runDHTSeed runs a DHT server with the provider loop (the seed's default
// re-provide interval) and answers RT, STAT and PROVIDE <n>.
func runDHTSeed() {
	defer benchutil.StartProfile(*profile, "dht-seed")()
	h := newHost(true, nil)
	defer h.Close()
	// The seed's provider records in Pebble, as node.New keeps them.
	dsDir, err := os.MkdirTemp("", "seedfleet-bench-dht-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dsDir)
	store, err := discovery.OpenDatastore(dsDir)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	d, err := discovery.NewDHT(h, discovery.DHTOptions{Server: true, Datastore: store})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	reg := prometheus.NewRegistry()
	prov := discovery.NewProvider(d, config.Default().DHT.ReprovideInterval.Duration, reg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go prov.Run(ctx)
	fmt.Printf("ADDR %s\n", p2p.FullAddrs(h)[0])
	errorsTotal := func() float64 { return counterValue(reg, "seedfleet_dht_provide_errors_total", nil) }
	commands(func(cmd string, args []string) {
		switch cmd {
		case "RT":
			fmt.Printf("RT %d\n", d.RoutingTable().Size())
		case "STAT":
			s := selfStat()
			s.Conns = len(h.Network().Conns())
			s.RoutingTable = d.RoutingTable().Size()
			s.ProvideErrors = errorsTotal()
			reply("STAT", s)
		case "PROVIDE":
			n, _ := strconv.Atoi(args[0])
			keys := vaultKeys(n)
			errs0 := errorsTotal()
			start := time.Now()
			prov.Set(keys)
			deadline := start.Add(30 * time.Minute)
			for {
				var last time.Time
				done := 0
				for _, k := range keys {
					if t := prov.LastProvided(k); !t.IsZero() {
						done++
						if t.After(last) {
							last = t
						}
					}
				}
				if done == n || time.Now().After(deadline) {
					reply("PROVIDED", provideResult{Keys: n, Provided: done, Seconds: last.Sub(start).Seconds(), Errors: errorsTotal() - errs0})
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		case "LOOKUP":
			n, _ := strconv.Atoi(args[0])
			reply("LOOKUP", timeLookups(d, sample(vaultKeys(n), lookupSample), h.ID()))
		default:
			log.Fatalf("unknown command %q", cmd)
		}
	})
}

// lookupSample is how many keys the lookup timings and record counts
// check: below kad-dht's provider LRU cache (256 keys), so the second
// pass of timeLookups hits the cache.
const lookupSample = 200

// sample returns up to k keys spread evenly over keys.
func sample(keys []cid.Cid, k int) []cid.Cid {
	stride := max(1, len(keys)/k)
	var out []cid.Cid
	for i := 0; i < len(keys) && len(out) < k; i += stride {
		out = append(out, keys[i])
	}
	return out
}

type lookupResult struct {
	Keys      int
	Found     int     // keys whose providers include the seed
	ColdMicro float64 // µs per ProviderStore().GetProviders, first lookup of each key
	HotMicro  float64 // µs per lookup of the same keys again (kad-dht's LRU cache)
}

// timeLookups times local provider-store lookups (what a DHT server does
// for every GET_PROVIDERS it answers), each key twice.
func timeLookups(d *dht.IpfsDHT, keys []cid.Cid, seedID peer.ID) lookupResult {
	res := lookupResult{Keys: len(keys)}
	ctx := context.Background()
	for pass := range 2 {
		start := time.Now()
		for _, k := range keys {
			provs, err := d.ProviderStore().GetProviders(ctx, k.Hash())
			if err != nil {
				log.Fatal(err)
			}
			if pass == 0 && slices.ContainsFunc(provs, func(ai peer.AddrInfo) bool { return ai.ID == seedID }) {
				res.Found++
			}
		}
		us := float64(time.Since(start).Microseconds()) / float64(max(1, len(keys)))
		if pass == 0 {
			res.ColdMicro = us
		} else {
			res.HotMicro = us
		}
	}
	return res
}

type countResult struct {
	Keys      int // keys checked (a sample of lookupSample)
	Records   int // (peer, key) pairs where the peer holds the seed's record
	KeysOnAll int // keys every peer holds
	MinPerKey int
	ColdMicro float64 // µs per lookup, averaged over the peers (see lookupResult)
	HotMicro  float64
}

// runDHTPeers runs -n DHT servers bootstrapped to the seed at -peer and
// answers STAT and COUNT <n> <seed ID>.
func runDHTPeers() {
	defer benchutil.StartProfile(*profile, "dht-peers")()
	seed, err := p2p.ParsePeerAddr(*peerArg)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	var hosts []host.Host
	var dhts []*dht.IpfsDHT
	for range *nArg {
		h := newHost(true, nil)
		d, err := discovery.NewDHT(h, discovery.DHTOptions{Server: true, BootstrapPeers: []peer.AddrInfo{seed}})
		if err != nil {
			log.Fatal(err)
		}
		if err := h.Connect(ctx, seed); err != nil {
			log.Fatalf("connect to the seed: %v", err)
		}
		hosts, dhts = append(hosts, h), append(dhts, d)
	}
	for _, d := range dhts {
		if err := d.Bootstrap(ctx); err != nil {
			log.Fatal(err)
		}
	}
	// Let the peers find each other through the seed.
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if minRT(dhts) >= *nArg {
			break
		}
	}
	cancel()
	fmt.Println("READY")
	commands(func(cmd string, args []string) {
		switch cmd {
		case "STAT":
			s := selfStat()
			for _, h := range hosts {
				s.Conns += len(h.Network().Conns())
			}
			s.RoutingTable = minRT(dhts)
			reply("STAT", s)
		case "COUNT":
			n, _ := strconv.Atoi(args[0])
			seedID, err := peer.Decode(args[1])
			if err != nil {
				log.Fatal(err)
			}
			keys := sample(vaultKeys(n), lookupSample)
			res := countResult{Keys: len(keys), MinPerKey: len(dhts)}
			perKey := make([]int, len(keys))
			for _, d := range dhts {
				l := timeLookups(d, keys, seedID)
				res.ColdMicro += l.ColdMicro / float64(len(dhts))
				res.HotMicro += l.HotMicro / float64(len(dhts))
				res.Records += l.Found
				// which keys: count again from the (now cached) store
				for i, k := range keys {
					provs, _ := d.ProviderStore().GetProviders(context.Background(), k.Hash())
					if slices.ContainsFunc(provs, func(ai peer.AddrInfo) bool { return ai.ID == seedID }) {
						perKey[i]++
					}
				}
			}
			for _, have := range perKey {
				res.MinPerKey = min(res.MinPerKey, have)
				if have == len(dhts) {
					res.KeysOnAll++
				}
			}
			reply("COUNT", res)
		default:
			log.Fatalf("unknown command %q", cmd)
		}
	})
}

func minRT(dhts []*dht.IpfsDHT) int {
	m := -1
	for _, d := range dhts {
		if s := d.RoutingTable().Size(); m < 0 || s < m {
			m = s
		}
	}
	return m
}

// ---- parent: child processes ----

type child struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	exited chan struct{}
}

var (
	childrenMu sync.Mutex
	children   = map[int]*child{}
)

// spawn starts this binary with -role and args; its stdout lines arrive on
// c.lines, its stderr is ours.
func spawn(name string, args ...string) *child {
	args = append([]string{"-role", name, "-cpuprofile", *profile}, args...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		die("%v", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		die("%v", err)
	}
	if err := cmd.Start(); err != nil {
		die("start %s: %v", name, err)
	}
	c := &child{name: name, cmd: cmd, stdin: stdin, lines: make(chan string, 1024), exited: make(chan struct{})}
	childrenMu.Lock()
	children[cmd.Process.Pid] = c
	childrenMu.Unlock()
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			default: // nobody reads: drop
			}
		}
		close(c.lines)
		_ = cmd.Wait()
		close(c.exited)
	}()
	return c
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// expect returns the rest of the next line that starts with tag.
func (c *child) expect(tag string, within time.Duration) string {
	t := time.NewTimer(within)
	defer t.Stop()
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				die("%s (pid %d) exited while we waited for %s", c.name, c.pid(), tag)
			}
			if line == tag {
				return ""
			}
			if rest, ok := strings.CutPrefix(line, tag+" "); ok {
				return rest
			}
			fmt.Printf("# %s: %s\n", c.name, line)
		case <-t.C:
			die("%s (pid %d): no %s within %s", c.name, c.pid(), tag, within)
		}
	}
}

func (c *child) send(line string) {
	if _, err := fmt.Fprintln(c.stdin, line); err != nil {
		die("%s: %v", c.name, err)
	}
}

// ask sends a command and decodes the JSON answer tagged tag.
func (c *child) ask(cmd, tag string, within time.Duration, v any) {
	c.send(cmd)
	if err := json.Unmarshal([]byte(c.expect(tag, within)), v); err != nil {
		die("%s: %s: %v", c.name, tag, err)
	}
}

func (c *child) stat() procStat {
	var s procStat
	c.ask("STAT", "STAT", 30*time.Second, &s)
	return s
}

// stop closes the child's stdin and waits for it to exit (killing it after 15 s).
func (c *child) stop() {
	c.stdin.Close()
	select {
	case <-c.exited:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
	childrenMu.Lock()
	delete(children, c.pid())
	childrenMu.Unlock()
}

// killChildren kills every child process still running, by the PID we
// started it with, and reaps them (for up to 5 s).
func killChildren() {
	childrenMu.Lock()
	defer childrenMu.Unlock()
	for _, c := range children {
		_ = c.cmd.Process.Kill()
	}
	deadline := time.After(5 * time.Second)
	for pid, c := range children {
		select {
		case <-c.exited:
		case <-deadline:
		}
		delete(children, pid)
	}
}

// die kills the child processes and exits (log.Fatal would skip deferred cleanup).
func die(format string, args ...any) {
	killChildren()
	log.Fatalf(format, args...)
}

// ---- parent: helpers ----

// countLabel names a count: 10k, 1000, 200.
func countLabel(n int) string {
	if n >= 10000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

// ---- parent: the benchmark ----

func runBench() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		killChildren()
		os.Exit(1)
	}()
	defer killChildren()

	parts := map[string]bool{}
	for _, p := range strings.Split(*only, ",") {
		if p != "" {
			parts[p] = true
		}
	}
	want := func(p string) bool { return len(parts) == 0 || parts[p] }

	size, nRsvp, nKeys, nPeers, runs, holdFor := int64(256<<20), 1000, 10000, 10, 3, 75*time.Second
	if *smoke {
		size, nRsvp, nKeys, nPeers, runs, holdFor = 8<<20, 20, 200, 3, 1, 0
	}
	if *rsvpN > 0 {
		nRsvp = *rsvpN
	}
	if *keysN > 0 {
		nKeys = *keysN
	}
	if *dhtPeersN > 0 {
		nPeers = *dhtPeersN
	}
	if *runsArg > 0 {
		runs = *runsArg
	}
	if *hold >= 0 {
		holdFor = *hold
	}
	fmt.Printf("# seed benchmark: GOMAXPROCS=%d, %d CPUs, %s, load average %s; seeds, devices and DHT peers are separate processes on loopback\n",
		runtime.GOMAXPROCS(0), runtime.NumCPU(), runtime.Version(), benchutil.Loadavg())
	fmt.Printf("# target: relay throughput next to direct throughput, same run (no numeric target given)\n")
	fmt.Printf("# target: memory of a seed holding 1,000 reservations and 10,000 hosted vaults' provider records (no numeric target given)\n")
	fmt.Printf("# target: a flood of refused requests from many fake peers keeps the seed's RSS bounded and a legitimate device served (no numeric target given)\n")
	if want("relay") {
		benchRelay(size, runs, *diagBufArg)
	}
	if want("rsvp") {
		benchReservations(nRsvp, max(1, min(*clientsN, nRsvp)), runs, holdFor)
	}
	if want("dht") {
		benchDHT(nKeys, nPeers, runs)
	}
	if want("flood") {
		nFlood, floodDur, idleDur, afterDur := 2000, 20*time.Second, 10*time.Second, 10*time.Second
		if *smoke {
			nFlood, floodDur, idleDur, afterDur = 40, 2*time.Second, 2*time.Second, 2*time.Second
		}
		if *floodN > 0 {
			nFlood = *floodN
		}
		if *floodFor > 0 {
			floodDur = *floodFor
		}
		if *floodAfter > 0 {
			afterDur = *floodAfter
		}
		benchFlood(nFlood, max(1, min(*floodProcs, nFlood)), floodDur, idleDur, afterDur)
	}
	fmt.Printf("# load average at the end: %s\n", benchutil.Loadavg())
}

// transfer runs one sender against a fresh sink (and, relayed, a fresh seed).
func transfer(size int64, relayed bool, relayBuf int) sendResult {
	var seed *child
	sinkArgs := []string{"-listen"}
	if relayed {
		seed = spawn("relay-seed", "-relay-buffer", strconv.Itoa(relayBuf))
		defer seed.stop()
		sinkArgs = []string{"-seed", seed.expect("ADDR", 30*time.Second)}
	}
	sink := spawn("sink", sinkArgs...)
	defer sink.stop()
	addr := sink.expect("ADDR", time.Minute)
	seedPID := 0
	if seed != nil {
		seedPID = seed.pid()
	}
	sender := spawn("sender", "-peer", addr, "-size", strconv.FormatInt(size, 10),
		"-pids", fmt.Sprintf("%d,%d", seedPID, sink.pid()), fmt.Sprintf("-relayed=%v", relayed))
	defer sender.stop()
	var r sendResult
	if err := json.Unmarshal([]byte(sender.expect("RESULT", 10*time.Minute)), &r); err != nil {
		die("sender: %v", err)
	}
	return r
}

func medianRun(rs []sendResult) sendResult {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b sendResult) int { return cmp.Compare(a.Seconds, b.Seconds) })
	return s[len(s)/2]
}

// benchRelay: device A sends size bytes to device B through the seed's
// relay, then directly (B listening on loopback), runs times, interleaved.
func benchRelay(size int64, runs, diagBuf int) {
	l := benchutil.Label(size)
	fmt.Printf("# relay: seed = relay.New (public, circuits 1 GiB / 10 min) on p2p.NewHost at 127.0.0.1; B (no listen address) reserves a slot and sinks; A (no listen address) sends %s over a stream opened with WithAllowLimitedConn to B's circuit address, %d-KiB writes; direct: the same to B listening on 127.0.0.1 (TCP+TLS+yamux both ways); new processes per transfer, relayed and direct runs interleaved\n",
		l, copyBuf>>10)
	var rel, dir, big []sendResult
	for range runs {
		benchutil.Settle()
		rel = append(rel, transfer(size, true, 0))
		benchutil.Settle()
		dir = append(dir, transfer(size, false, 0))
		if diagBuf > 0 {
			benchutil.Settle()
			big = append(big, transfer(size, true, diagBuf))
		}
	}
	speeds := func(rs []sendResult) []float64 {
		out := make([]float64, len(rs))
		for i, r := range rs {
			out[i] = benchutil.MiB(r.Bytes) / r.Seconds
		}
		return out
	}
	benchutil.RunsLine("relay_"+l, speeds(rel), "MiB/s", 2)
	benchutil.RunsLine("direct_"+l, speeds(dir), "MiB/s", 2)
	r, d := medianRun(rel), medianRun(dir)
	fmt.Printf("# relayed connection: %s; direct: %s\n", r.Remote, d.Remote)
	rMiBps, dMiBps := benchutil.MiB(r.Bytes)/r.Seconds, benchutil.MiB(d.Bytes)/d.Seconds
	benchutil.Bench("relay_"+l+"_mibps", benchutil.Round(rMiBps, 1), "MiB/s")
	benchutil.Bench("direct_"+l+"_mibps", benchutil.Round(dMiBps, 1), "MiB/s")
	benchutil.Bench("relay_"+l+"_ratio_vs_direct", benchutil.Round(rMiBps/dMiBps, 3), "ratio")
	benchutil.Bench("relay_"+l+"_cpu_seconds", benchutil.Round(r.SeedCPU+r.SenderCPU+r.SinkCPU, 2), "s")
	benchutil.Bench("relay_"+l+"_cpu_seconds_seed", benchutil.Round(r.SeedCPU, 2), "s")
	benchutil.Bench("relay_"+l+"_cpu_seconds_sender", benchutil.Round(r.SenderCPU, 2), "s")
	benchutil.Bench("relay_"+l+"_cpu_seconds_sink", benchutil.Round(r.SinkCPU, 2), "s")
	benchutil.Bench("direct_"+l+"_cpu_seconds", benchutil.Round(d.SenderCPU+d.SinkCPU, 2), "s")
	benchutil.Bench("direct_"+l+"_cpu_seconds_sender", benchutil.Round(d.SenderCPU, 2), "s")
	benchutil.Bench("direct_"+l+"_cpu_seconds_sink", benchutil.Round(d.SinkCPU, 2), "s")
	benchutil.Bench("relay_"+l+"_seed_rss_above_idle_mib", benchutil.Round(benchutil.MiB(r.SeedPeak-r.SeedIdle), 1), "MiB")
	if diagBuf > 0 {
		// relay.New cannot set go-libp2p's copy buffer (Resources.BufferSize,
		// default 2 KiB): the same relay with a larger one shows what it costs.
		b := medianRun(big)
		bl := fmt.Sprintf("relay_%s_buffer%dk", l, diagBuf>>10)
		benchutil.RunsLine(bl, speeds(big), "MiB/s", 2)
		fmt.Printf("# diagnostic: go-libp2p's relay run directly (relayv2.New, same ACL and circuit limits) with Resources.BufferSize %d KiB (relay.New uses 64 KiB)\n", diagBuf>>10)
		benchutil.Bench(bl+"_mibps", benchutil.Round(benchutil.MiB(b.Bytes)/b.Seconds, 1), "MiB/s")
		benchutil.Bench(bl+"_ratio_vs_direct", benchutil.Round(benchutil.MiB(b.Bytes)/b.Seconds/dMiBps, 3), "ratio")
		benchutil.Bench(bl+"_cpu_seconds_seed", benchutil.Round(b.SeedCPU, 2), "s")
		benchutil.Bench(bl+"_cpu_seconds_sender", benchutil.Round(b.SenderCPU, 2), "s")
		benchutil.Bench(bl+"_cpu_seconds_sink", benchutil.Round(b.SinkCPU, 2), "s")
	}
	for _, x := range []struct {
		name string
		r    sendResult
		own  float64
	}{{"relay", r, r.SeedCPU + r.SenderCPU + r.SinkCPU}, {"direct", d, d.SenderCPU + d.SinkCPU}} {
		avail := x.r.Seconds * float64(runtime.NumCPU())
		if other := x.r.MachineCPU - x.own; avail >= 0.5 && other > 0.1*avail {
			fmt.Printf("# warning: other processes used %.2f of the %.2f CPU-seconds the machine had during the median %s run (load average %s): figures are noisy\n",
				other, avail, x.name, benchutil.Loadavg())
		}
	}
}

type rsvpRun struct {
	idle, full procStat
	later      *procStat // after holdFor, if held
	seconds    float64
	devRSS     int64
}

func (r rsvpRun) perReservationKiB(n int) float64 {
	return float64(r.full.RSS-r.idle.RSS) / 1024 / float64(n)
}

// benchReservations: n device hosts spread over clients processes each
// reserve a slot on one seed; the seed's memory before and after. The last
// run also checks, holdFor later, that the seed still holds them.
func benchReservations(n, clients, runs int, holdFor time.Duration) {
	maxR := max(2000, 2*n)
	fmt.Printf("# reservations: seed = relay.New (public, MaxReservations and MaxReservationsPerIP %d) on p2p.NewHost at 127.0.0.1 with resource manager %q; %d device hosts (own key each, no listen address) in %d processes call relay.Reserve, %d at a time per process; a new seed per run\n",
		maxR, *seedRcmgr, n, clients, *parArg)
	if *seedRcmgr == "raised" {
		fmt.Printf("# reservations: go-libp2p's autoscaled resource manager admits %d inbound connections on this machine (System.ConnsInbound; resources.maxConnsInbound raises it, but System.Conns stays at %d): the seed gets system connection limits of %d\n",
			defaultLimits().System.ConnsInbound, defaultLimits().System.Conns, 2*maxR)
	}
	var rs []rsvpRun
	for i := range runs {
		benchutil.Settle()
		rs = append(rs, reservationsRun(n, clients, maxR, holdFor, i == runs-1))
	}
	nl := countLabel(n)
	per, secs := make([]float64, len(rs)), make([]float64, len(rs))
	for i, r := range rs {
		per[i], secs[i] = r.perReservationKiB(n), r.seconds
	}
	benchutil.RunsLine("seed_rss_per_reservation", per, "KiB", 2)
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b rsvpRun) int { return cmp.Compare(a.perReservationKiB(n), b.perReservationKiB(n)) })
	r := sorted[len(sorted)/2]
	fmt.Printf("# seed (median run): idle VmRSS %.1f MiB, heap live %.1f MiB, %d goroutines; with %d reservations VmRSS %.1f MiB, heap live %.1f MiB, %d goroutines, %d connections; device processes %.1f MiB VmRSS in all (%.0f KiB per device host)\n",
		benchutil.MiB(r.idle.RSS), benchutil.MiB(r.idle.HeapLive), r.idle.Goroutines, n, benchutil.MiB(r.full.RSS), benchutil.MiB(r.full.HeapLive), r.full.Goroutines, r.full.Conns, benchutil.MiB(r.devRSS), float64(r.devRSS)/1024/float64(n))
	benchutil.Bench("seed_rss_idle_mib", benchutil.Round(benchutil.MiB(r.idle.RSS), 1), "MiB")
	benchutil.Bench("seed_rss_"+nl+"_reservations_mib", benchutil.Round(benchutil.MiB(r.full.RSS), 1), "MiB")
	benchutil.Bench("seed_rss_per_reservation_kib", benchutil.Round(r.perReservationKiB(n), 1), "KiB")
	benchutil.Bench("seed_heap_live_per_reservation_kib", benchutil.Round(float64(r.full.HeapLive-r.idle.HeapLive)/1024/float64(n), 1), "KiB")
	benchutil.Bench("seed_goroutines_per_reservation", benchutil.Round(float64(r.full.Goroutines-r.idle.Goroutines)/float64(n), 1), "goroutines")
	benchutil.Bench("seed_reservations_"+nl+"_ok", float64(r.full.Reservations), "reservations")
	benchutil.Bench("seed_reserve_"+nl+"_seconds", benchutil.Round(benchutil.Median(secs), 2), "s")
	if later := rs[len(rs)-1].later; later != nil {
		fmt.Printf("# %s after the last reservation the seed counts %d open reservations and %d connections (VmRSS %.1f MiB); the device hosts are all still up\n",
			holdFor, later.Reservations, later.Conns, benchutil.MiB(later.RSS))
		benchutil.Bench(fmt.Sprintf("seed_reservations_%s_after_%ds", nl, int(holdFor.Seconds())), float64(later.Reservations), "reservations")
		if later.Reservations < n {
			fmt.Printf("# warning: the seed dropped %d of %d reservations while the devices stayed up (a closed connection ends its reservation: check the connection manager's watermarks)\n",
				n-later.Reservations, n)
		}
	}
}

// defaultLimits are go-libp2p's default resource limits on this machine.
func defaultLimits() rcmgr.PartialLimitConfig {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	return limits.AutoScale().ToPartialLimitConfig()
}

func reservationsRun(n, clients, maxR int, holdFor time.Duration, last bool) rsvpRun {
	seed := spawn("relay-seed", "-max-reservations", strconv.Itoa(maxR), "-seed-rcmgr", *seedRcmgr)
	defer seed.stop()
	addr := seed.expect("ADDR", 30*time.Second)
	time.Sleep(time.Second)
	var r rsvpRun
	r.idle = seed.stat()

	start := time.Now()
	var devs []*child
	for i := range clients {
		k := n/clients + btoi(i < n%clients)
		devs = append(devs, spawn("devices", "-seed", addr, "-n", strconv.Itoa(k), "-par", strconv.Itoa(*parArg)))
	}
	defer func() {
		for _, d := range devs {
			d.stop()
		}
	}()
	var ok, failed int
	var firstErr string
	for _, d := range devs {
		var dr devicesResult
		if err := json.Unmarshal([]byte(d.expect("RESULT", 10*time.Minute)), &dr); err != nil {
			die("devices: %v", err)
		}
		ok, failed, r.devRSS = ok+dr.OK, failed+dr.Failed, r.devRSS+dr.HostsRSS
		if firstErr == "" {
			firstErr = dr.FirstErr
		}
	}
	r.seconds = time.Since(start).Seconds()
	reservedAt := time.Now()
	time.Sleep(time.Second) // let identify and the reservation streams finish
	r.full = seed.stat()
	fmt.Printf("# reservations: %d of %d succeeded in %.1fs (device processes started and hosts created included); the seed counts %d open reservations and %d connections\n",
		ok, n, r.seconds, r.full.Reservations, r.full.Conns)
	if failed > 0 || ok != n || r.full.Reservations != n {
		die("reservations: %d of %d succeeded, %d failed (first error: %s); the seed counts %d open reservations",
			ok, n, failed, firstErr, r.full.Reservations)
	}
	if last && holdFor > 0 {
		time.Sleep(time.Until(reservedAt.Add(holdFor)))
		later := seed.stat()
		r.later = &later
	}
	return r
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

type dhtRun struct {
	pr                   provideResult
	cnt                  countResult
	look                 lookupResult
	seedIdle, seedFull   procStat
	peersIdle, peersFull procStat
	machineCPU           float64 // CPU seconds of the whole machine during PROVIDE
}

// benchDHT: a seed providing n VaultCIDs with discovery.Provider to peers
// DHT servers in another process.
func benchDHT(n, peers, runs int) {
	fmt.Printf("# dht: seed = discovery.NewDHT (server, records in discovery.OpenDatastore) + discovery.NewProvider (re-provide interval %s) on p2p.NewHost at 127.0.0.1; %d DHT servers in one other process bootstrapped to it; PROVIDE sets %d VaultCIDs and waits until LastProvided is set for every one; new processes per run\n",
		config.Default().DHT.ReprovideInterval.Duration, peers, n)
	var rs []dhtRun
	for range runs {
		benchutil.Settle()
		rs = append(rs, provideRun(n, peers))
	}
	secs := make([]float64, len(rs))
	for i, r := range rs {
		secs[i] = r.pr.Seconds
	}
	nl := countLabel(n)
	benchutil.RunsLine("seed_provide_"+nl, secs, "s", 2)
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b dhtRun) int { return cmp.Compare(a.pr.Seconds, b.pr.Seconds) })
	r := sorted[len(sorted)/2]
	pr, cnt, look := r.pr, r.cnt, r.look
	fmt.Printf("# dht (median run): %d keys announced in %.1fs (%.0f keys/s, %.0f failed announcements retried); routing tables: seed %d, smallest peer %d\n",
		n, pr.Seconds, float64(n)/pr.Seconds, pr.Errors, r.seedFull.RoutingTable, r.peersFull.RoutingTable)
	fmt.Printf("# dht: of %d sampled keys the peers hold %d of %d records (%d keys on every peer, at least %d peers per key); the seed's own store answers for %d of them\n",
		cnt.Keys, cnt.Records, cnt.Keys*peers, cnt.KeysOnAll, cnt.MinPerKey, look.Found)
	fmt.Printf("# dht: a local provider lookup (ProviderStore().GetProviders, what answering GET_PROVIDERS costs) takes %.0f µs on the seed and %.0f µs on a peer for a key outside kad-dht's 256-key LRU cache, %.1f / %.1f µs inside it\n",
		look.ColdMicro, cnt.ColdMicro, look.HotMicro, cnt.HotMicro)
	fmt.Printf("# dht seed: idle VmRSS %.1f MiB, heap live %.1f MiB, %d goroutines; after %d keys VmRSS %.1f MiB (peak %.1f), heap live %.1f MiB, %d goroutines\n",
		benchutil.MiB(r.seedIdle.RSS), benchutil.MiB(r.seedIdle.HeapLive), r.seedIdle.Goroutines, n, benchutil.MiB(r.seedFull.RSS), benchutil.MiB(r.seedFull.HWM), benchutil.MiB(r.seedFull.HeapLive), r.seedFull.Goroutines)
	fmt.Printf("# dht peers (%d in one process): idle VmRSS %.1f MiB, heap live %.1f MiB; after VmRSS %.1f MiB, heap live %.1f MiB\n",
		peers, benchutil.MiB(r.peersIdle.RSS), benchutil.MiB(r.peersIdle.HeapLive), benchutil.MiB(r.peersFull.RSS), benchutil.MiB(r.peersFull.HeapLive))
	own := r.seedFull.CPU - r.seedIdle.CPU + r.peersFull.CPU - r.peersIdle.CPU
	if avail := pr.Seconds * float64(runtime.NumCPU()); avail >= 0.5 && r.machineCPU-own > 0.1*avail {
		fmt.Printf("# warning: other processes used %.2f of the %.2f CPU-seconds the machine had during the median provide run (load average %s): figures are noisy\n",
			r.machineCPU-own, avail, benchutil.Loadavg())
	}
	benchutil.Bench("seed_provide_"+nl+"_seconds", benchutil.Round(pr.Seconds, 2), "s")
	benchutil.Bench("seed_provide_"+nl+"_keys_per_second", benchutil.Round(float64(n)/pr.Seconds, 1), "keys/s")
	benchutil.Bench("seed_provide_"+nl+"_cpu_seconds", benchutil.Round(r.seedFull.CPU-r.seedIdle.CPU, 2), "s")
	benchutil.Bench("seed_rss_idle_dht_mib", benchutil.Round(benchutil.MiB(r.seedIdle.RSS), 1), "MiB")
	benchutil.Bench("seed_rss_"+nl+"_provider_records_mib", benchutil.Round(benchutil.MiB(r.seedFull.RSS-r.seedIdle.RSS), 1), "MiB")
	benchutil.Bench("seed_heap_live_"+nl+"_provider_records_mib", benchutil.Round(benchutil.MiB(r.seedFull.HeapLive-r.seedIdle.HeapLive), 1), "MiB")
	benchutil.Bench("dht_peers_rss_idle_mib", benchutil.Round(benchutil.MiB(r.peersIdle.RSS), 1), "MiB")
	benchutil.Bench("dht_peers_rss_"+nl+"_provider_records_mib", benchutil.Round(benchutil.MiB(r.peersFull.RSS-r.peersIdle.RSS), 1), "MiB")
	benchutil.Bench("dht_peer_rss_"+nl+"_provider_records_mib", benchutil.Round(benchutil.MiB(r.peersFull.RSS-r.peersIdle.RSS)/float64(peers), 2), "MiB")
	benchutil.Bench("seed_get_providers_"+nl+"_records_uncached_us", benchutil.Round(look.ColdMicro, 1), "us")
	benchutil.Bench("seed_get_providers_"+nl+"_records_cached_us", benchutil.Round(look.HotMicro, 1), "us")
	benchutil.Bench("dht_peer_get_providers_"+nl+"_records_uncached_us", benchutil.Round(cnt.ColdMicro, 1), "us")
}

func provideRun(n, peers int) dhtRun {
	seed := spawn("dht-seed")
	defer seed.stop()
	addr := seed.expect("ADDR", 30*time.Second)
	ps := spawn("dht-peers", "-peer", addr, "-n", strconv.Itoa(peers))
	defer ps.stop()
	ps.expect("READY", 2*time.Minute)
	deadline := time.Now().Add(30 * time.Second)
	for {
		seed.send("RT")
		rt, _ := strconv.Atoi(seed.expect("RT", 10*time.Second))
		if rt >= peers {
			break
		}
		if time.Now().After(deadline) {
			die("the DHT seed's routing table holds %d of %d peers after 30s", rt, peers)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	var r dhtRun
	r.seedIdle, r.peersIdle = seed.stat(), ps.stat()
	machine := benchutil.MachineCPU()
	seed.ask(fmt.Sprintf("PROVIDE %d", n), "PROVIDED", 31*time.Minute, &r.pr)
	r.machineCPU = benchutil.MachineCPU() - machine
	if r.pr.Provided != n {
		die("the seed announced %d of %d keys within 30 min (%.0f failed announcements)", r.pr.Provided, n, r.pr.Errors)
	}
	r.seedFull, r.peersFull = seed.stat(), ps.stat()
	seedID := addr[strings.LastIndex(addr, "/")+1:]
	ps.ask(fmt.Sprintf("COUNT %d %s", n, seedID), "COUNT", 10*time.Minute, &r.cnt)
	seed.ask(fmt.Sprintf("LOOKUP %d", n), "LOOKUP", 10*time.Minute, &r.look)
	if r.cnt.Records != r.cnt.Keys*peers || r.look.Found != r.look.Keys {
		die("dht: of %d sampled keys the peers hold %d of %d records and the seed %d", r.cnt.Keys, r.cnt.Records, r.cnt.Keys*peers, r.look.Found)
	}
	return r
}

// ---- flood: a seed under a flood of refused requests ----

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

// metricsBy sums the counters and gauges called name on reg, by the value of
// label ("" without it); zero values are left out.
func metricsBy(reg *prometheus.Registry, name, label string) map[string]float64 {
	mfs, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			key := ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label {
					key = lp.GetValue()
				}
			}
			if v := m.GetCounter().GetValue() + m.GetGauge().GetValue(); v != 0 {
				out[key] += v
			}
		}
	}
	return out
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
		Relay:        node.RelayConfig{Mode: relay.ModeAgents, AllowedKeys: []ed25519.PublicKey{pub}},
		DHT:          node.DHTConfig{Mode: "server"},
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

// legitResult is what the legitimate device did in one RUN.
type legitResult struct {
	Label                         string
	Rounds                        int
	SyncOK, SyncTotal             int
	SyncMillis                    []float64 // every sync, failed ones included (the time the device waited)
	ReserveOK, ReserveTotal       int
	RendezvousOK, RendezvousTotal int
	LookupOK, LookupTotal         int // rendezvous lookups of its agent that return exactly its own record
	DHTOK, DHTTotal               int // DHT lookups of its vault that find the seed
	Errors                        []string
	ReserveMillis, RegisterMillis []float64
	DHTMillis, LookupMillis       []float64
}

// runFloodDevice is the legitimate device: the home -home (its key is the
// seed's allowed key and the author of the hosted vault -vault), one host
// without a listen address, a vault-sync service and a DHT client. On "RUN
// <label> <duration>" it does, every 500 ms: write a changed entry and sync
// the vault with the seed, reserve a relay slot, register its rendezvous
// record for its own agent, look its agent up, and look its vault up in the
// DHT; RESULT follows.
func runFloodDevice() {
	seed, err := p2p.ParsePeerAddr(*seedArg)
	if err != nil {
		log.Fatal(err)
	}
	ns, err := vault.ParseNamespaceID(*vaultArg)
	if err != nil {
		log.Fatal(err)
	}
	home, err := client.Open(*homeArg)
	if err != nil {
		log.Fatal(err)
	}
	defer home.Close()
	h, err := p2p.NewHost(p2p.HostOptions{Key: home.Key})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	svc := vault.NewService(h, home.Store, vault.WithPolicy(vault.NewHostedSet(ns)))
	defer svc.Close()
	d, err := discovery.NewDHT(h, discovery.DHTOptions{BootstrapPeers: []peer.AddrInfo{seed}})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	if err := h.Connect(ctx, seed); err != nil {
		log.Fatalf("connect to the seed: %v", err)
	}
	for d.RoutingTable().Size() == 0 {
		if ctx.Err() != nil {
			log.Fatal("the DHT client never added the seed to its routing table")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	pub := home.Key.Public().(ed25519.PublicKey)
	agent := identity.DIDKey(pub)
	circuit, err := relay.CircuitAddr(seed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("READY")
	round := 0
	commands(func(cmd string, args []string) {
		if cmd != "RUN" || len(args) != 2 {
			log.Fatalf("unknown command %q %q", cmd, args)
		}
		dur, err := time.ParseDuration(args[1])
		if err != nil {
			log.Fatal(err)
		}
		res := legitResult{Label: args[0]}
		fail := func(what string, err error) {
			if len(res.Errors) < 10 {
				res.Errors = append(res.Errors, fmt.Sprintf("round %d: %s: %v", round, what, err))
			}
		}
		timed := func(ms *[]float64, f func(context.Context) error) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			t0 := time.Now()
			err := f(ctx)
			*ms = append(*ms, float64(time.Since(t0).Microseconds())/1000)
			return err
		}
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for end := time.Now().Add(dur); ; {
			round++
			res.Rounds++
			key := []byte(fmt.Sprintf("notes/%d", round%16))
			if _, err := home.Put(ns, key, []byte(fmt.Sprintf("change %d at %s", round, time.Now().Format(time.RFC3339Nano)))); err != nil {
				log.Fatal(err)
			}
			res.SyncTotal++
			err := timed(&res.SyncMillis, func(ctx context.Context) error {
				st, err := svc.Sync(ctx, seed.ID, ns, vault.SyncOptions{})
				if err == nil && (st.ItemsSent == 0 || st.PeerRefused != 0) {
					err = fmt.Errorf("sent %d entries (want the changed ones), the seed refused %d (%s)", st.ItemsSent, st.PeerRefused, st.PeerRefusal)
				}
				return err
			})
			if err == nil {
				res.SyncOK++
			} else {
				fail("sync", err)
			}
			res.ReserveTotal++
			if err := timed(&res.ReserveMillis, func(ctx context.Context) error { _, err := relay.Reserve(ctx, h, seed); return err }); err == nil {
				res.ReserveOK++
			} else {
				fail("reserve", err)
			}
			res.RendezvousTotal++
			if err := timed(&res.RegisterMillis, func(ctx context.Context) error {
				rec, err := rendezvous.NewRecord(agent, "laptop", home.Key, []ma.Multiaddr{circuit}, time.Now())
				if err != nil {
					return err
				}
				return rendezvous.Register(ctx, h, seed.ID, rec)
			}); err == nil {
				res.RendezvousOK++
			} else {
				fail("rendezvous register", err)
			}
			res.LookupTotal++
			if err := timed(&res.LookupMillis, func(ctx context.Context) error {
				recs, err := rendezvous.Lookup(ctx, h, seed.ID, agent)
				if err == nil && (len(recs) != 1 || !recs[0].Device.Equal(pub)) {
					err = fmt.Errorf("%d records, want only this device's", len(recs))
				}
				return err
			}); err == nil {
				res.LookupOK++
			} else {
				fail("rendezvous lookup", err)
			}
			res.DHTTotal++
			if err := timed(&res.DHTMillis, func(ctx context.Context) error {
				rt := d.RoutingTable().Size()
				found := discovery.FindProvidersVia(ctx, d, []peer.AddrInfo{seed}, discovery.VaultCID(ns), 1)
				if len(found) != 1 || found[0].ID != seed.ID {
					return fmt.Errorf("found %v, want the seed (routing table: %d peers before the lookup; kad-dht drops a peer whose answer failed)", found, rt)
				}
				return nil
			}); err == nil {
				res.DHTOK++
			} else {
				fail("DHT lookup", err)
			}
			if time.Now().After(end) {
				break
			}
			<-tick.C
		}
		reply("RESULT", res)
	})
}

// ---- parent: the flood ----

// percentile is the nearest-rank pct-th percentile of xs (0 if empty).
func percentile(xs []float64, pct int) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[max(0, (len(s)*pct+99)/100-1)]
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

// ---- flood of idle streams ----

// streamFloodStat is what a stream-flood process reports on "STAT".
type streamFloodStat struct {
	Hosts       int
	Opened      int64 // streams opened and written to
	Failed      int64 // streams that could not be opened or written to
	EndedBySeed int64 // streams the seed reset or closed while they were held
	Held        int64 // streams held now, not ended by the seed
}

// streamCounters are a stream-flood process's counters.
type streamCounters struct{ opened, failed, ended, held atomic.Int64 }

// runStreamFlood connects -n hosts to the seed -seed, -par at a time; each
// holds -streams vault-sync streams with one byte written (a hello never
// finished). With -reopen 0 a host holds its streams, and opens a stream
// the seed ended again after a second; with -reopen D it resets all its
// streams and opens them again every D (staggered across hosts), and one
// the seed ended waits for the next round. READY once every stream was
// tried once; STAT answers the counts; stdin closing ends it.
func runStreamFlood() {
	seed, err := p2p.ParsePeerAddr(*seedArg)
	if err != nil {
		log.Fatal(err)
	}
	hosts := make([]host.Host, *nArg)
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, *parArg))
	for i := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			key, err := identity.Generate()
			if err != nil {
				log.Fatal(err)
			}
			// No resource manager of its own: an attacker's streams are
			// bounded by what the seed allows, not by its own limits.
			h, err := p2p.NewHost(p2p.HostOptions{Key: key, ResourceManager: &network.NullResourceManager{}})
			if err != nil {
				log.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := h.Connect(ctx, seed); err != nil {
				log.Fatalf("stream-flood host %d: connect to the seed: %v", i, err)
			}
			hosts[i] = h
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var c streamCounters
	var tried sync.WaitGroup
	for _, h := range hosts {
		// Hosts start their rounds at staggered times, as independent
		// attackers would.
		next := time.Now()
		if *reopenArg > 0 {
			next = next.Add(rand.N(*reopenArg))
		}
		for range *streamsArg {
			tried.Add(1)
			go holdStream(ctx, h, seed.ID, next, *reopenArg, &c, tried.Done)
		}
	}
	tried.Wait()
	fmt.Println("READY")
	commands(func(cmd string, _ []string) {
		if cmd != "STAT" {
			log.Fatalf("unknown command %q", cmd)
		}
		reply("STAT", streamFloodStat{Hosts: len(hosts), Opened: c.opened.Load(), Failed: c.failed.Load(),
			EndedBySeed: c.ended.Load(), Held: c.held.Load()})
	})
}

// holdStream keeps one stream from h to the seed open, as runStreamFlood
// describes; firstTry is called after the first attempt.
func holdStream(ctx context.Context, h host.Host, seed peer.ID, next time.Time, reopen time.Duration, c *streamCounters, firstTry func()) {
	defer func() {
		if firstTry != nil {
			firstTry()
		}
	}()
	wait := func(d time.Duration) {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
	for ctx.Err() == nil {
		if reopen > 0 {
			for !next.After(time.Now()) {
				next = next.Add(reopen)
			}
		}
		s, err := h.NewStream(ctx, seed, vault.ProtocolID)
		if err == nil {
			if _, err = s.Write([]byte{1}); err != nil {
				s.Reset()
			}
		}
		if firstTry != nil {
			firstTry()
			firstTry = nil
		}
		if err != nil {
			c.failed.Add(1)
			if reopen > 0 {
				wait(time.Until(next))
			} else {
				wait(time.Second)
			}
			continue
		}
		c.opened.Add(1)
		c.held.Add(1)
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			var b [64]byte
			for {
				if _, err := s.Read(b[:]); err != nil {
					return
				}
			}
		}()
		var round <-chan time.Time
		if reopen > 0 {
			round = time.After(time.Until(next))
		}
		select {
		case <-ended:
			s.Reset()
			c.held.Add(-1)
			c.ended.Add(1)
			if reopen > 0 {
				wait(time.Until(next))
			} else {
				wait(time.Second)
			}
		case <-round:
			s.Reset()
			<-ended
			c.held.Add(-1)
		case <-ctx.Done():
			s.Reset()
			<-ended
			c.held.Add(-1)
		}
	}
}

// benchStreamFloods: the legitimate device (known to the seed: it has
// synced before) syncs every 500 ms for a while without a flood (the
// baseline), then during each flood of idle vault-sync streams: 40 peers
// holding 30 each, and 20 peers holding 250 each, all reset and reopened
// every 8 s. The figure is the device's sync success rate during each,
// next to the baseline.
func benchStreamFloods(addr string, dev *child, seedStat func() floodSeedStat) {
	dur := 20 * time.Second
	patterns := []struct {
		name           string
		peers, streams int
		reopen         time.Duration
	}{{"hold", 40, 30, 0}, {"churn", 20, 250, 8 * time.Second}}
	if *smoke {
		dur = 3 * time.Second
		patterns[0].peers, patterns[1].peers, patterns[1].reopen = 10, 5, time.Second
	}
	if *streamFloodFor > 0 {
		dur = *streamFloodFor
	}
	fmt.Printf("# stream floods: fake peers (own key each, one process) each hold idle vault-sync streams on the seed, one byte written on each (a hello never finished); hold: %d peers x %d streams, a stream the seed ends opened again after 1 s; churn: %d peers x %d streams, all reset and opened again every %s (staggered); the legitimate device (known to the seed: it synced before) does its round every 500 ms for %s without a flood (baseline), then during each\n",
		patterns[0].peers, patterns[0].streams, patterns[1].peers, patterns[1].streams, patterns[1].reopen, dur)
	var quiet legitResult
	dev.ask(fmt.Sprintf("RUN quiet %s", dur), "RESULT", dur+2*time.Minute, &quiet)
	pct := func(r legitResult) float64 { return 100 * float64(r.SyncOK) / float64(max(1, r.SyncTotal)) }
	fmt.Printf("# stream floods, no flood: device sync %d/%d ok (p50 %.1f ms, p99 %.1f ms)\n",
		quiet.SyncOK, quiet.SyncTotal, percentile(quiet.SyncMillis, 50), percentile(quiet.SyncMillis, 99))
	for _, e := range quiet.Errors {
		fmt.Printf("# stream floods, no flood: %s\n", e)
	}
	type outcome struct {
		name string
		res  legitResult
	}
	var outs []outcome
	for _, p := range patterns {
		before := seedStat()
		f := spawn("stream-flood", "-seed", addr, "-n", strconv.Itoa(p.peers), "-par", "16",
			"-streams", strconv.Itoa(p.streams), "-reopen", p.reopen.String())
		f.expect("READY", 5*time.Minute)
		var res legitResult
		dev.ask(fmt.Sprintf("RUN %s %s", p.name, dur), "RESULT", dur+2*time.Minute, &res)
		var fs streamFloodStat
		f.ask("STAT", "STAT", time.Minute, &fs)
		after := seedStat()
		f.stop()
		refused := map[string]float64{}
		for k, v := range after.StreamRefusals {
			if d := v - before.StreamRefusals[k]; d > 0 {
				refused[k] = d
			}
		}
		fmt.Printf("# stream flood %s: %d fake peers opened %d streams (%d could not be opened), saw the seed end %d of them and %d not yet at the end (resets on their way count as open); the seed refused %v by reason and held %v streams of unknown peers at the end (seedfleet_unknown_peer_streams); VmRSS %.1f MiB, %d goroutines\n",
			p.name, fs.Hosts, fs.Opened, fs.Failed, fs.EndedBySeed, fs.Held, refused, after.UnknownStreams, benchutil.MiB(after.RSS), after.Goroutines)
		fmt.Printf("# stream flood %s: device sync %d/%d ok (p50 %.1f ms, p99 %.1f ms, max %.1f ms); relay.Reserve %d/%d; rendezvous.Register %d/%d; DHT lookup %d/%d\n",
			p.name, res.SyncOK, res.SyncTotal, percentile(res.SyncMillis, 50), percentile(res.SyncMillis, 99), percentile(res.SyncMillis, 100),
			res.ReserveOK, res.ReserveTotal, res.RendezvousOK, res.RendezvousTotal, res.DHTOK, res.DHTTotal)
		for _, e := range res.Errors {
			fmt.Printf("# stream flood %s: %s\n", p.name, e)
		}
		outs = append(outs, outcome{p.name, res})
	}
	benchutil.Bench("flood_streams_device_success_baseline_pct", benchutil.Round(pct(quiet), 1), "%")
	for _, o := range outs {
		benchutil.Bench("flood_"+o.name+"_device_success_pct", benchutil.Round(pct(o.res), 1), "%")
		benchutil.Bench("flood_"+o.name+"_device_success_ratio_vs_baseline", benchutil.Round(pct(o.res)/max(pct(quiet), 1e-9), 3), "x")
		benchutil.Bench("flood_"+o.name+"_device_syncs", float64(o.res.SyncTotal), "syncs")
	}
}
