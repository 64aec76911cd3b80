// Command fleet measures how a public fleet places and moves vaults. Each
// figure is printed as "BENCH <name> <value> <unit>" next to its baseline:
// for placement, the ideal even share.
//
// Part "sim" computes placement at internet scale with no processes: a
// million agents' vaults over a hundred pods with R replicas, the load of
// the fullest pod over the mean, and how many replicas move when one pod
// joins, over the ideal R/(N+1) share.
//
// Part "admit" runs three seed processes on loopback as one open fleet and
// admits agents through them, next to plain round trips to the same
// service.
//
// Part "scale" scales a 3-pod fleet of seed processes to 4 and counts the
// vaults that move and the time until they all sit on their new pods.
//
// Part "flood" floods one pod of an Open fleet with requests from fresh
// keys: the seed's RSS, the agents admitted next to what the limits allow,
// and whether an invited agent got in meanwhile.
package main

import (
	"encoding/binary"
	"flag"
	"log"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/seedfleet/seedfleet/hack/benchutil"
	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

var (
	smoke    = flag.Bool("smoke", false, "tiny sizes: checks the driver works (CI)")
	only     = flag.String("only", "", "comma-separated parts to run: sim, admit, scale, flood, replication, crosspod, idle, syncs, live (default all)")
	admits   = flag.Int("admits", 100_000, "admit: agents admitted")
	scaled   = flag.Int("scaled", 4_000, "scale: vaults held while the fleet scales 3→4")
	floodFor = flag.Duration("flood", 30*time.Second, "flood: how long fresh keys flood one pod")
	agents   = flag.Int("agents", 1_000_000, "sim: vaults placed (one per agent)")
	pods     = flag.Int("pods", 100, "sim: pods in the fleet before one joins")
	replicas = flag.Int("replicas", 3, "sim: replicas per vault")
	profile  = flag.String("cpuprofile", "", "write a CPU profile of this driver (the simulated devices) to PREFIX.driver.PID.pprof")
)

func main() {
	log.SetFlags(0)
	flag.Parse()
	if *smoke {
		*agents, *pods, *admits, *scaled, *floodFor = 20_000, 10, 300, 200, 2*time.Second
	}
	log.Printf("load average %s", benchutil.Loadavg())
	defer removeBin()
	defer benchutil.StartProfile(*profile, "driver")()
	if runs("sim") {
		simulate(*agents, *pods, *replicas)
	}
	if runs("admit") {
		admitBench(*admits)
	}
	if runs("scale") {
		scaleBench(*scaled)
	}
	if runs("flood") {
		floodBench(*floodFor)
	}
	replicationParts()
	runSeedParts() // idle, syncs, live (seedparts.go)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func runs(part string) bool { return benchutil.Parts(*only)(part) }

// simulate places n vaults over pods and pods+1 pods and prints the load
// spread and the moved share.
func simulate(n, pods, r int) {
	start := time.Now()
	workers := runtime.GOMAXPROCS(0)
	loads := make([][]int, workers) // replicas per pod, per worker
	moved := make([]int, workers)   // replicas that change pods on +1
	var wg sync.WaitGroup
	for w := range workers {
		loads[w] = make([]int, pods)
		wg.Go(func() {
			for i := w; i < n; i += workers {
				v := vaultID(i)
				top := fleet.Top(v, pods, r)
				for _, o := range top {
					loads[w][o]++
				}
				// A joining pod takes a replica exactly when it outranks the
				// vault's R-th pod: one score more, not a new ranking. It has
				// the highest ordinal, so it loses a tie.
				if fleet.Score(v, pods) > fleet.Score(v, top[len(top)-1]) {
					moved[w]++
				}
			}
		})
	}
	wg.Wait()
	load := make([]int, pods)
	total := 0
	for w := range workers {
		for o, c := range loads[w] {
			load[o] += c
			total += c
		}
	}
	mean := float64(total) / float64(pods)
	maxLoad := slices.Max(load)
	movedAll := 0
	for _, m := range moved {
		movedAll += m
	}
	ideal := float64(n*r) / float64(pods+1)
	log.Printf("sim: %d vaults × %d replicas over %d pods: mean %.0f, max %d; %d replicas move when pod %d joins (ideal %.0f); %s",
		n, r, pods, mean, maxLoad, movedAll, pods, ideal, time.Since(start).Round(time.Millisecond))
	benchutil.Bench("fleet_sim_load_max_over_mean", round3(float64(maxLoad)/mean), "ratio")
	benchutil.Bench("fleet_sim_moved_ratio", round3(float64(movedAll)/ideal), "ratio")
	benchutil.Bench("fleet_sim_seconds", round3(time.Since(start).Seconds()), "s")
}

// vaultID is a namespace ID's text form for vault i: random-looking and
// reproducible, as real namespace IDs (public keys) are.
func vaultID(i int) string {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(i))
	rng := rand.NewChaCha8(seed)
	var ns vault.NamespaceID
	_, _ = rng.Read(ns[:])
	return ns.String()
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }
