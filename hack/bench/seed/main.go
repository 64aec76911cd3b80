// Command seed measures what a seed node spends on the devices and vaults it
// serves besides storing them: relaying (throughput through the circuit
// relay next to a direct connection over the same transport stack, in the
// same run), holding relay reservations (the seed's memory with 1,000 of
// them) and announcing hosted vaults in the DHT (time to provide 10,000
// keys, and the memory of the seed and of the DHT peers that store the
// records). Each figure is printed as "BENCH <name> <value> <unit>".
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
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

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

	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/discovery"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/node"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/relay"
)

var (
	role    = flag.String("role", "", "internal: relay-seed, sink, sender, devices, dht-seed or dht-peers")
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
	only       = flag.String("only", "", "comma-separated parts to run: relay,rsvp,dht (default all)")
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
	case "":
		runBench()
	default:
		log.Fatalf("unknown -role %q", *role)
	}
}

func bench(name string, value float64, unit string) {
	fmt.Printf("BENCH %s %s %s\n", name, strconv.FormatFloat(value, 'f', -1, 64), unit)
}

func round(v float64, digits int) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', digits, 64), 64)
	return f
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

func startProfile(name string) func() {
	if *profile == "" {
		return func() {}
	}
	f, err := os.Create(fmt.Sprintf("%s.%s.%d.pprof", *profile, name, os.Getpid()))
	if err != nil {
		log.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// ---- process accounting ----

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clockTicks = 100

// procCPU is the user+sys CPU seconds of a whole process (all threads); 0
// for pid 0.
func procCPU(pid int) float64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		log.Fatalf("cpu time of %d: %v", pid, err)
	}
	// The command name may hold spaces and parentheses: fields start after the last ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	utime, _ := strconv.ParseFloat(f[11], 64) // field 14
	stime, _ := strconv.ParseFloat(f[12], 64) // field 15
	return (utime + stime) / clockTicks
}

// selfCPU is this process's user+sys CPU seconds, at microsecond resolution.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		log.Fatal(err)
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// procStatus returns a "Vm..." field of /proc/<pid>/status in bytes (-1 if unavailable).
func procStatus(pid, field string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return -1
}

// machineCPU is the user+system CPU seconds of all CPUs since boot (/proc/stat).
func machineCPU() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle ...
	var busy float64
	for _, v := range f[1:4] {
		x, _ := strconv.ParseFloat(v, 64)
		busy += x
	}
	return busy / clockTicks
}

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
	s := procStat{RSS: procStatus("self", "VmRSS"), HWM: procStatus("self", "VmHWM"), CPU: selfCPU()}
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
	defer startProfile("relay-seed")()
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
	defer startProfile("sink")()
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
	defer startProfile("sender")()
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
		res.SeedIdle = procStatus(seed, "VmRSS")
	}
	machine, seedCPU, sinkCPU, cpu := machineCPU(), procCPU(seedPID), procCPU(sinkPID), selfCPU()
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
	res.SenderCPU, res.SeedCPU, res.SinkCPU = selfCPU()-cpu, procCPU(seedPID)-seedCPU, procCPU(sinkPID)-sinkCPU
	res.MachineCPU = machineCPU() - machine
	if seedPID != 0 {
		res.SeedPeak = procStatus(seed, "VmHWM")
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
	res := devicesResult{OK: int(ok.Load()), Failed: int(failed.Load()), Seconds: time.Since(start).Seconds(), HostsRSS: procStatus("self", "VmRSS")}
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
	defer startProfile("dht-seed")()
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
	defer startProfile("dht-peers")()
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

// label names a size as the BENCH names do: 1g, 256m, 8m.
func label(size int64) string {
	if size >= 1<<30 && size%(1<<30) == 0 {
		return fmt.Sprintf("%dg", size>>30)
	}
	return fmt.Sprintf("%dm", size>>20)
}

// countLabel names a count: 10k, 1000, 200.
func countLabel(n int) string {
	if n >= 10000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// settle flushes dirty pages and lets the machine calm down, so each
// measured run starts from the same state.
func settle() {
	syscall.Sync()
	time.Sleep(300 * time.Millisecond)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func runsLine(name string, xs []float64, unit string) {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 2, 64)
	}
	fmt.Printf("# %s runs: %s %s (median reported)\n", name, strings.Join(parts, " "), unit)
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
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
		runtime.GOMAXPROCS(0), runtime.NumCPU(), runtime.Version(), loadavg())
	fmt.Printf("# target: relay throughput next to direct throughput, same run (no numeric target given)\n")
	fmt.Printf("# target: memory of a seed holding 1,000 reservations and 10,000 hosted vaults' provider records (no numeric target given)\n")
	if want("relay") {
		benchRelay(size, runs, *diagBufArg)
	}
	if want("rsvp") {
		benchReservations(nRsvp, max(1, min(*clientsN, nRsvp)), runs, holdFor)
	}
	if want("dht") {
		benchDHT(nKeys, nPeers, runs)
	}
	fmt.Printf("# load average at the end: %s\n", loadavg())
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
	l := label(size)
	fmt.Printf("# relay: seed = relay.New (public, circuits 1 GiB / 10 min) on p2p.NewHost at 127.0.0.1; B (no listen address) reserves a slot and sinks; A (no listen address) sends %s over a stream opened with WithAllowLimitedConn to B's circuit address, %d-KiB writes; direct: the same to B listening on 127.0.0.1 (TCP+TLS+yamux both ways); new processes per transfer, relayed and direct runs interleaved\n",
		l, copyBuf>>10)
	var rel, dir, big []sendResult
	for range runs {
		settle()
		rel = append(rel, transfer(size, true, 0))
		settle()
		dir = append(dir, transfer(size, false, 0))
		if diagBuf > 0 {
			settle()
			big = append(big, transfer(size, true, diagBuf))
		}
	}
	speeds := func(rs []sendResult) []float64 {
		out := make([]float64, len(rs))
		for i, r := range rs {
			out[i] = mib(r.Bytes) / r.Seconds
		}
		return out
	}
	runsLine("relay_"+l, speeds(rel), "MiB/s")
	runsLine("direct_"+l, speeds(dir), "MiB/s")
	r, d := medianRun(rel), medianRun(dir)
	fmt.Printf("# relayed connection: %s; direct: %s\n", r.Remote, d.Remote)
	rMiBps, dMiBps := mib(r.Bytes)/r.Seconds, mib(d.Bytes)/d.Seconds
	bench("relay_"+l+"_mibps", round(rMiBps, 1), "MiB/s")
	bench("direct_"+l+"_mibps", round(dMiBps, 1), "MiB/s")
	bench("relay_"+l+"_ratio_vs_direct", round(rMiBps/dMiBps, 3), "ratio")
	bench("relay_"+l+"_cpu_seconds", round(r.SeedCPU+r.SenderCPU+r.SinkCPU, 2), "s")
	bench("relay_"+l+"_cpu_seconds_seed", round(r.SeedCPU, 2), "s")
	bench("relay_"+l+"_cpu_seconds_sender", round(r.SenderCPU, 2), "s")
	bench("relay_"+l+"_cpu_seconds_sink", round(r.SinkCPU, 2), "s")
	bench("direct_"+l+"_cpu_seconds", round(d.SenderCPU+d.SinkCPU, 2), "s")
	bench("direct_"+l+"_cpu_seconds_sender", round(d.SenderCPU, 2), "s")
	bench("direct_"+l+"_cpu_seconds_sink", round(d.SinkCPU, 2), "s")
	bench("relay_"+l+"_seed_rss_above_idle_mib", round(mib(r.SeedPeak-r.SeedIdle), 1), "MiB")
	if diagBuf > 0 {
		// relay.New cannot set go-libp2p's copy buffer (Resources.BufferSize,
		// default 2 KiB): the same relay with a larger one shows what it costs.
		b := medianRun(big)
		bl := fmt.Sprintf("relay_%s_buffer%dk", l, diagBuf>>10)
		runsLine(bl, speeds(big), "MiB/s")
		fmt.Printf("# diagnostic: go-libp2p's relay run directly (relayv2.New, same ACL and circuit limits) with Resources.BufferSize %d KiB (relay.New uses 64 KiB)\n", diagBuf>>10)
		bench(bl+"_mibps", round(mib(b.Bytes)/b.Seconds, 1), "MiB/s")
		bench(bl+"_ratio_vs_direct", round(mib(b.Bytes)/b.Seconds/dMiBps, 3), "ratio")
		bench(bl+"_cpu_seconds_seed", round(b.SeedCPU, 2), "s")
		bench(bl+"_cpu_seconds_sender", round(b.SenderCPU, 2), "s")
		bench(bl+"_cpu_seconds_sink", round(b.SinkCPU, 2), "s")
	}
	for _, x := range []struct {
		name string
		r    sendResult
		own  float64
	}{{"relay", r, r.SeedCPU + r.SenderCPU + r.SinkCPU}, {"direct", d, d.SenderCPU + d.SinkCPU}} {
		avail := x.r.Seconds * float64(runtime.NumCPU())
		if other := x.r.MachineCPU - x.own; avail >= 0.5 && other > 0.1*avail {
			fmt.Printf("# warning: other processes used %.2f of the %.2f CPU-seconds the machine had during the median %s run (load average %s): figures are noisy\n",
				other, avail, x.name, loadavg())
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
		settle()
		rs = append(rs, reservationsRun(n, clients, maxR, holdFor, i == runs-1))
	}
	nl := countLabel(n)
	per, secs := make([]float64, len(rs)), make([]float64, len(rs))
	for i, r := range rs {
		per[i], secs[i] = r.perReservationKiB(n), r.seconds
	}
	runsLine("seed_rss_per_reservation", per, "KiB")
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b rsvpRun) int { return cmp.Compare(a.perReservationKiB(n), b.perReservationKiB(n)) })
	r := sorted[len(sorted)/2]
	fmt.Printf("# seed (median run): idle VmRSS %.1f MiB, heap live %.1f MiB, %d goroutines; with %d reservations VmRSS %.1f MiB, heap live %.1f MiB, %d goroutines, %d connections; device processes %.1f MiB VmRSS in all (%.0f KiB per device host)\n",
		mib(r.idle.RSS), mib(r.idle.HeapLive), r.idle.Goroutines, n, mib(r.full.RSS), mib(r.full.HeapLive), r.full.Goroutines, r.full.Conns, mib(r.devRSS), float64(r.devRSS)/1024/float64(n))
	bench("seed_rss_idle_mib", round(mib(r.idle.RSS), 1), "MiB")
	bench("seed_rss_"+nl+"_reservations_mib", round(mib(r.full.RSS), 1), "MiB")
	bench("seed_rss_per_reservation_kib", round(r.perReservationKiB(n), 1), "KiB")
	bench("seed_heap_live_per_reservation_kib", round(float64(r.full.HeapLive-r.idle.HeapLive)/1024/float64(n), 1), "KiB")
	bench("seed_goroutines_per_reservation", round(float64(r.full.Goroutines-r.idle.Goroutines)/float64(n), 1), "goroutines")
	bench("seed_reservations_"+nl+"_ok", float64(r.full.Reservations), "reservations")
	bench("seed_reserve_"+nl+"_seconds", round(median(secs), 2), "s")
	if later := rs[len(rs)-1].later; later != nil {
		fmt.Printf("# %s after the last reservation the seed counts %d open reservations and %d connections (VmRSS %.1f MiB); the device hosts are all still up\n",
			holdFor, later.Reservations, later.Conns, mib(later.RSS))
		bench(fmt.Sprintf("seed_reservations_%s_after_%ds", nl, int(holdFor.Seconds())), float64(later.Reservations), "reservations")
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
		settle()
		rs = append(rs, provideRun(n, peers))
	}
	secs := make([]float64, len(rs))
	for i, r := range rs {
		secs[i] = r.pr.Seconds
	}
	nl := countLabel(n)
	runsLine("seed_provide_"+nl, secs, "s")
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
		mib(r.seedIdle.RSS), mib(r.seedIdle.HeapLive), r.seedIdle.Goroutines, n, mib(r.seedFull.RSS), mib(r.seedFull.HWM), mib(r.seedFull.HeapLive), r.seedFull.Goroutines)
	fmt.Printf("# dht peers (%d in one process): idle VmRSS %.1f MiB, heap live %.1f MiB; after VmRSS %.1f MiB, heap live %.1f MiB\n",
		peers, mib(r.peersIdle.RSS), mib(r.peersIdle.HeapLive), mib(r.peersFull.RSS), mib(r.peersFull.HeapLive))
	own := r.seedFull.CPU - r.seedIdle.CPU + r.peersFull.CPU - r.peersIdle.CPU
	if avail := pr.Seconds * float64(runtime.NumCPU()); avail >= 0.5 && r.machineCPU-own > 0.1*avail {
		fmt.Printf("# warning: other processes used %.2f of the %.2f CPU-seconds the machine had during the median provide run (load average %s): figures are noisy\n",
			r.machineCPU-own, avail, loadavg())
	}
	bench("seed_provide_"+nl+"_seconds", round(pr.Seconds, 2), "s")
	bench("seed_provide_"+nl+"_keys_per_second", round(float64(n)/pr.Seconds, 1), "keys/s")
	bench("seed_provide_"+nl+"_cpu_seconds", round(r.seedFull.CPU-r.seedIdle.CPU, 2), "s")
	bench("seed_rss_idle_dht_mib", round(mib(r.seedIdle.RSS), 1), "MiB")
	bench("seed_rss_"+nl+"_provider_records_mib", round(mib(r.seedFull.RSS-r.seedIdle.RSS), 1), "MiB")
	bench("seed_heap_live_"+nl+"_provider_records_mib", round(mib(r.seedFull.HeapLive-r.seedIdle.HeapLive), 1), "MiB")
	bench("dht_peers_rss_idle_mib", round(mib(r.peersIdle.RSS), 1), "MiB")
	bench("dht_peers_rss_"+nl+"_provider_records_mib", round(mib(r.peersFull.RSS-r.peersIdle.RSS), 1), "MiB")
	bench("dht_peer_rss_"+nl+"_provider_records_mib", round(mib(r.peersFull.RSS-r.peersIdle.RSS)/float64(peers), 2), "MiB")
	bench("seed_get_providers_"+nl+"_records_uncached_us", round(look.ColdMicro, 1), "us")
	bench("seed_get_providers_"+nl+"_records_cached_us", round(look.HotMicro, 1), "us")
	bench("dht_peer_get_providers_"+nl+"_records_uncached_us", round(cnt.ColdMicro, 1), "us")
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
	machine := machineCPU()
	seed.ask(fmt.Sprintf("PROVIDE %d", n), "PROVIDED", 31*time.Minute, &r.pr)
	r.machineCPU = machineCPU() - machine
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
