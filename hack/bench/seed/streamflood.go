package main

import (
	"context"
	"fmt"
	"log"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/hack/benchutil"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

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
