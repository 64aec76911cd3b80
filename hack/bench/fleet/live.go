package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/hack/benchutil"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// liveBench measures live sessions at one seed: n devices each hold a live
// session (a connection of its own), hot of them on one shared vault and
// the others on vaults of their own. The seed's RSS with them, over its RSS
// before they connected (same vaults hosted), is the memory per session.
// A writer, live on the shared vault too, writes probes entries one after
// another; the time from its write to each hot device storing the entry
// gives the propagation percentiles, with all n devices live and, the
// baseline, with only the hot devices live (measured first).
func liveBench(n, hot, probes int) {
	dir, err := os.MkdirTemp("", "bench-fleet-live-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin, err := seedfleetBin()
	if err != nil {
		log.Fatal(err)
	}
	hotKey, hotNS := newVaultKey()
	devs := make([]*device, n)
	vaults := []vault.NamespaceID{hotNS}
	for i := range devs {
		if i < hot {
			devs[i] = newDevice(hotKey)
			continue
		}
		k, ns := newVaultKey()
		devs[i] = newDevice(k)
		vaults = append(vaults, ns)
	}
	writer := newDevice(hotKey)
	file := filepath.Join(dir, "live.vaults")
	if err := writeVaultsFile(file, vaults); err != nil {
		log.Fatal(err)
	}
	// As an operator serving thousands of devices would: inbound
	// connections above the default, and libp2p memory to match (go-libp2p
	// accounts 256 KiB per stream, its initial receive window, and admits
	// a device it does not know yet only while its memory is under 40%
	// used: the autoscaled limit on this machine refused the ~4,665th).
	seed, err := startSeed(dir, bin, "live", file, seedOpts{extra: fmt.Sprintf("resources: {maxConnsInbound: %d, maxMemoryMiB: %d}\n", 2*n+1024, max(4096, n))})
	if err != nil {
		os.RemoveAll(dir)
		log.Fatal(err)
	}
	defer seed.stop()
	// die stops the seed and removes dir first: log.Fatal skips deferred calls.
	die := func(err error) {
		seed.stop()
		os.RemoveAll(dir)
		removeBin()
		log.Fatal(err)
	}
	waitQuiet(seed, time.Minute)
	base := seed.settledRSS(3 * time.Second)

	// The hot devices each keep their replica in a store of their own (an
	// entry is stored once per device, as on real devices); the others
	// share one (their vaults are distinct).
	openStore := func(name string) *vault.Store {
		st, err := vault.Open(filepath.Join(dir, name), vault.StoreOptions{NoSync: true, CacheSize: 1 << 20})
		if err != nil {
			die(err)
		}
		return st
	}
	common := openStore("devices")
	stores := []*vault.Store{common}
	defer func() {
		for _, st := range stores {
			st.Close()
		}
	}()
	arrived := make([][]time.Time, 2*probes+1) // [probe][hot device]
	for p := range arrived {
		arrived[p] = make([]time.Time, hot)
	}
	var arrMu sync.Mutex
	storedHook := func(dev int) vault.Option {
		return vault.WithStoredHook(func(_ peer.ID, _ vault.NamespaceID, items []vault.Item) {
			now := time.Now()
			arrMu.Lock()
			defer arrMu.Unlock()
			for _, it := range items {
				if len(it.Content) < 8 || it.Entry.Author != writer.author {
					continue
				}
				if p := binary.BigEndian.Uint64(it.Content); p < uint64(len(arrived)) && arrived[p][dev].IsZero() {
					arrived[p][dev] = now
				}
			}
		})
	}

	ctx, cancel := context.WithCancel(context.Background())
	var sessions sync.WaitGroup
	var hosts []host.Host
	var hostsMu sync.Mutex
	defer func() {
		cancel()
		sessions.Wait()
		for _, h := range hosts {
			h.Close()
		}
	}()
	var failed atomic.Int64
	var firstErr atomic.Value
	// goLive starts d's live session and returns once it is live.
	goLive := func(d *device, st *vault.Store, opts ...vault.Option) error {
		h, svc, err := d.online(st, seed.info, opts...)
		if err != nil {
			return err
		}
		hostsMu.Lock()
		hosts = append(hosts, h)
		hostsMu.Unlock()
		live := make(chan struct{})
		var once sync.Once
		done := make(chan error, 1)
		sessions.Add(1)
		go func() {
			defer sessions.Done()
			defer svc.Close()
			wentLive := false
			_, err := svc.Sync(ctx, seed.info.ID, d.ns, vault.SyncOptions{Live: true, Progress: func(p vault.Progress) {
				if p.Phase == "live" {
					wentLive = true
					once.Do(func() { close(live) })
				}
			}})
			if err != nil && ctx.Err() == nil && wentLive {
				if failed.Add(1) == 1 {
					firstErr.Store(err)
				}
			}
			done <- err
		}()
		select {
		case <-live:
			return nil
		case err := <-done:
			return fmt.Errorf("live session ended before it went live: %w", err)
		}
	}

	var retries atomic.Int64
	// connect makes devices [from, to) live, 32 at a time.
	connect := func(from, to int) {
		start := time.Now()
		next := atomic.Int64{}
		next.Store(int64(from))
		var wg sync.WaitGroup
		var setupErr atomic.Value
		for range 32 {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= to || setupErr.Load() != nil {
						return
					}
					st, opts := common, []vault.Option(nil)
					if i < hot {
						hostsMu.Lock()
						st = openStore(fmt.Sprintf("hot%d", i))
						stores = append(stores, st)
						hostsMu.Unlock()
						opts = append(opts, storedHook(i))
					}
					// A device whose dial fails (a loaded machine: a
					// handshake past its timeout) tries again, as devices do.
					var err error
					for try := 0; try < 3; try++ {
						if err = goLive(devs[i], st, opts...); err == nil {
							break
						}
						retries.Add(1)
					}
					if err != nil {
						setupErr.Store(fmt.Errorf("device %d: %w", i, err))
					}
				}
			})
		}
		wg.Wait()
		if err, _ := setupErr.Load().(error); err != nil {
			die(err)
		}
		log.Printf("live: devices %d to %d live in %s (%d dials retried so far)", from, to-1, time.Since(start).Round(time.Millisecond), retries.Load())
	}
	wst := openStore("writer")
	stores = append(stores, wst)
	// probe writes count entries at the writer, one after another, and
	// returns the delays until each reached every hot device.
	probe := func(first, count int) []float64 {
		var lat []float64
		for p := first; p < first+count; p++ {
			t0 := time.Now()
			if err := writer.write(wst, 1); err != nil { // its value starts with p
				die(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				arrMu.Lock()
				missing := slices.IndexFunc(arrived[p], func(t time.Time) bool { return t.IsZero() })
				arrMu.Unlock()
				if missing < 0 {
					break
				}
				if time.Now().After(deadline) {
					die(errors.New("live: a probe entry did not reach every hot device within 10 s"))
				}
				time.Sleep(time.Millisecond)
			}
			for _, t := range arrived[p] {
				lat = append(lat, float64(t.Sub(t0).Microseconds())/1000)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if f := failed.Load(); f > 0 {
			die(fmt.Errorf("live: %d sessions ended while they should have stayed live; first: %v", f, firstErr.Load()))
		}
		return lat
	}

	// Baseline: the hot devices and the writer alone on the seed.
	connect(0, hot)
	if err := goLive(writer, wst); err != nil {
		die(fmt.Errorf("writer: %w", err))
	}
	baseLat := probe(1, probes)
	connect(hot, n)
	waitQuiet(seed, time.Minute)
	rss := seed.settledRSS(5 * time.Second)
	if *liveProfile != "" {
		for _, name := range []string{"heap", "goroutine", "metrics"} {
			if err := seed.saveProfile(name, *liveProfile+"."+name); err != nil {
				die(err)
			}
		}
	}
	if f := failed.Load(); f > 0 {
		die(fmt.Errorf("live: %d sessions ended while they should have stayed live; first: %v", f, firstErr.Load()))
	}
	lat := probe(probes+1, probes)
	perKiB := float64(rss-base) / float64(n) / 1024
	// The floor: what the sessions hold once the garbage of their
	// handshakes is collected (two forced collections: the second shrinks
	// the stacks the first found mostly unused). An idle seed left to the
	// runtime's periodic collection settled higher, near the first figure
	// (71.2 KiB against 63.3 here, measured once with a two-minute wait).
	for range 2 {
		if err := seed.saveProfile("heap?gc=1", filepath.Join(dir, "gc.heap")); err != nil {
			die(err)
		}
	}
	gcRSS := seed.settledRSS(5 * time.Second)
	gcKiB := float64(gcRSS-base) / float64(n) / 1024
	log.Printf("live: seed RSS %.1f MiB with %d live sessions (+1 writer), %.1f MiB before; %d probes to %d devices: p50 %.1f ms, p99 %.1f ms (with only them live: p50 %.1f ms, p99 %.1f ms)",
		benchutil.MiB(rss), n, benchutil.MiB(base), probes, hot, percentile(lat, 50), percentile(lat, 99), percentile(baseLat, 50), percentile(baseLat, 99))
	benchutil.Bench("fleet_live_sessions_rss_per_session_kib", benchutil.Round(perKiB, 1), "KiB")
	benchutil.Bench("fleet_live_sessions_rss_per_session_after_gc_kib", benchutil.Round(gcKiB, 1), "KiB")
	benchutil.Bench("fleet_live_seed_rss_mib", benchutil.Round(benchutil.MiB(rss), 1), "MiB")
	benchutil.Bench("fleet_live_baseline_rss_mib", benchutil.Round(benchutil.MiB(base), 1), "MiB")
	benchutil.Bench("fleet_live_p50_ms", benchutil.Round(percentile(lat, 50), 1), "ms")
	benchutil.Bench("fleet_live_p99_ms", benchutil.Round(percentile(lat, 99), 1), "ms")
	benchutil.Bench("fleet_live_hot_only_p50_ms", benchutil.Round(percentile(baseLat, 50), 1), "ms")
	benchutil.Bench("fleet_live_hot_only_p99_ms", benchutil.Round(percentile(baseLat, 99), 1), "ms")
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
