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
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/seedfleet/seedfleet/hack/benchutil"
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

func runBench() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		killChildren()
		os.Exit(1)
	}()
	defer killChildren()

	want := benchutil.Parts(*only)

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

// countLabel names a count: 10k, 1000, 200.
func countLabel(n int) string {
	if n >= 10000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// percentile is the nearest-rank pct-th percentile of xs (0 if empty).
func percentile(xs []float64, pct int) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[max(0, (len(s)*pct+99)/100-1)]
}

// die kills the child processes and exits (log.Fatal would skip deferred cleanup).
func die(format string, args ...any) {
	killChildren()
	log.Fatalf(format, args...)
}
