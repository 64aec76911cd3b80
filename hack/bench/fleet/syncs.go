package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/seedfleet/seedfleet/hack/benchutil"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// syncsBench measures incremental syncs of many devices coming online at
// one seed: n devices, each writing `entries` new entries into its own vault
// and syncing it over a connection of its own (dialed for the sync, closed
// after it), par at once; the baseline, in the same run, is the same syncs
// all into one vault that every device writes. Each kind runs once to warm
// up (the vaults then hold entries: the timed syncs are incremental), then
// runs times, alternating; the median is reported. A third kind, the
// stack's ceiling, has the same devices only connect (dial, handshake,
// identify) and close, with no sync.
func syncsBench(n, entries, par, runs int) {
	dir, err := os.MkdirTemp("", "bench-fleet-syncs-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin, err := seedfleetBin()
	if err != nil {
		log.Fatal(err)
	}
	own := make([]*device, n)
	shared := make([]*device, n)
	sharedKey, sharedNS := newVaultKey()
	vaults := []vault.NamespaceID{sharedNS}
	for i := range own {
		k, ns := newVaultKey()
		own[i] = newDevice(k)
		shared[i] = newDevice(sharedKey)
		vaults = append(vaults, ns)
	}
	file := filepath.Join(dir, "syncs.vaults")
	if err := writeVaultsFile(file, vaults); err != nil {
		log.Fatal(err)
	}
	seed, err := startSeed(dir, bin, "syncs", file, seedOpts{})
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
	// All simulated devices keep their replicas in one store (a device
	// holds only its own vaults' entries either way; the devices of the
	// shared vault hold what any of them wrote, so a sync only uploads).
	// Its block cache holds the whole store, as a real device's holds its
	// own few vaults: with the default one, answering the seed's ranges
	// read blocks back from files, over half the devices' CPU, a cost of
	// this simulation (a thousand devices' vaults in one store), not of a
	// device.
	st, err := vault.Open(filepath.Join(dir, "devices"), vault.StoreOptions{NoSync: true, CacheSize: 256 << 20})
	if err != nil {
		die(err)
	}
	defer st.Close()
	fatal := func(err error) {
		st.Close()
		die(err)
	}

	round := func(kind string, devs []*device) (rate, cpuMs, devMs float64) {
		hosts := make([]host.Host, len(devs))
		svcs := make([]*vault.Service, len(devs))
		for i, d := range devs {
			if hosts[i], svcs[i], err = d.online(st, seed.info); err != nil {
				fatal(err)
			}
		}
		var next, sent atomic.Int64
		var mu sync.Mutex
		var first error
		fail := func(err error) {
			mu.Lock()
			if first == nil {
				first = err
			}
			mu.Unlock()
		}
		benchutil.Settle()
		cpu0, dev0 := seed.cpu(), benchutil.SelfCPU()
		start := time.Now()
		var wg sync.WaitGroup
		for range par {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= len(devs) {
						return
					}
					d := devs[i]
					if kind == "connect" {
						ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
						err := hosts[i].Connect(ctx, seed.info)
						cancel()
						svcs[i].Close()
						hosts[i].Close()
						if err != nil {
							fail(fmt.Errorf("connect: device %d: %w", i, err))
						}
						continue
					}
					if err := d.write(st, entries); err != nil {
						fail(err)
						return
					}
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					stats, err := svcs[i].Sync(ctx, seed.info.ID, d.ns, vault.SyncOptions{})
					cancel()
					svcs[i].Close()
					hosts[i].Close() // the next sync dials afresh
					switch {
					case err != nil:
						fail(fmt.Errorf("%s: device %d: %w", kind, i, err))
					case stats.PeerRefused > 0:
						fail(fmt.Errorf("%s: device %d: the seed refused %d entries: %s", kind, i, stats.PeerRefused, stats.PeerRefusal))
					case kind == "own" && stats.ItemsSent != entries:
						fail(fmt.Errorf("own: device %d sent %d entries, want its %d new ones", i, stats.ItemsSent, entries))
					}
					sent.Add(int64(stats.ItemsSent))
				}
			})
		}
		wg.Wait()
		took := time.Since(start)
		cpu, dev := seed.cpu()-cpu0, benchutil.SelfCPU()-dev0
		if first != nil {
			fatal(first)
		}
		if got, want := sent.Load(), int64(len(devs)*entries); kind != "connect" && got < want {
			fatal(fmt.Errorf("%s: %d entries sent in all, want %d", kind, got, want))
		}
		rate = float64(len(devs)) / took.Seconds()
		cpuMs, devMs = cpu*1000/float64(len(devs)), dev*1000/float64(len(devs))
		what := fmt.Sprintf("%d devices × %d entries, %d at once: %.0f syncs/s, CPU per sync", len(devs), entries, par, rate)
		if kind == "connect" {
			what = fmt.Sprintf("%d devices, %d at once: %.0f connections/s, CPU per connection", len(devs), par, rate)
		}
		log.Printf("syncs: %s: %s: seed %.2f ms, devices %.2f ms", kind, what, cpuMs, devMs)
		return rate, cpuMs, devMs
	}
	round("own", own) // warm-up: every vault gets its first entries
	round("one", shared)
	var ownRates, oneRates, connRates, ownCPU, oneCPU, devCPU, connCPU, connDevCPU []float64
	for range runs {
		r, c, d := round("own", own)
		ownRates, ownCPU, devCPU = append(ownRates, r), append(ownCPU, c), append(devCPU, d)
		r, c, _ = round("one", shared)
		oneRates, oneCPU = append(oneRates, r), append(oneCPU, c)
		r, c, d = round("connect", own)
		connRates, connCPU, connDevCPU = append(connRates, r), append(connCPU, c), append(connDevCPU, d)
	}
	benchutil.RunsLine("fleet_incr_syncs_per_second", ownRates, "1/s", 0)
	benchutil.RunsLine("fleet_incr_syncs_one_vault_per_second", oneRates, "1/s", 0)
	ownRate, oneRate := benchutil.Median(ownRates), benchutil.Median(oneRates)
	benchutil.Bench("fleet_incr_syncs_per_second", benchutil.Round(ownRate, 0), "1/s")
	benchutil.Bench("fleet_incr_syncs_one_vault_per_second", benchutil.Round(oneRate, 0), "1/s")
	benchutil.Bench("fleet_incr_syncs_ratio_vs_one_vault", benchutil.Round(ownRate/oneRate, 3), "ratio")
	benchutil.Bench("fleet_incr_sync_seed_cpu_ms", benchutil.Round(benchutil.Median(ownCPU), 3), "ms")
	// The devices' side, all in this process (dial, handshake, sync, and
	// the simulated devices' shared store): with the seed's, what a sync
	// costs this machine in all.
	benchutil.Bench("fleet_incr_sync_device_cpu_ms", benchutil.Round(benchutil.Median(devCPU), 3), "ms")
	benchutil.Bench("fleet_incr_sync_one_vault_seed_cpu_ms", benchutil.Round(benchutil.Median(oneCPU), 3), "ms")
	// The ceiling the stack sets: the same devices only coming online (dial,
	// TLS, yamux, identify; then close), no sync. What a sync adds to a
	// device's connection is the difference.
	benchutil.RunsLine("fleet_incr_connects_per_second", connRates, "1/s", 0)
	connRate := benchutil.Median(connRates)
	benchutil.Bench("fleet_incr_connects_per_second", benchutil.Round(connRate, 0), "1/s")
	benchutil.Bench("fleet_incr_syncs_ratio_vs_connects", benchutil.Round(ownRate/connRate, 3), "ratio")
	benchutil.Bench("fleet_incr_connect_seed_cpu_ms", benchutil.Round(benchutil.Median(connCPU), 3), "ms")
	benchutil.Bench("fleet_incr_connect_device_cpu_ms", benchutil.Round(benchutil.Median(connDevCPU), 3), "ms")
}
