package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/hack/benchutil"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/discovery"
	"github.com/seedfleet/seedfleet/seednode/p2p"
)

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
	prov, err := discovery.NewProvider(d, discovery.WithReprovideInterval(config.Default().DHT.ReprovideInterval.Duration),
		discovery.WithRegisterer(reg))
	if err != nil {
		log.Fatal(err)
	}
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
