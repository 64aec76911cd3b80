package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/seedfleet/seedfleet/hack/benchutil"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/relay"
)

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
