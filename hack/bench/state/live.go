//go:build cgo

package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/seedfleet/seedfleet/hack/benchutil"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/state"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

const liveDoc = "board"

// liveRun records when each device committed each of its changes and,
// on every other device, when the change merged: a device's change n sets
// seq.d<i> to n (and appends an event), and a device's changes merge in
// order, so seeing seq.d<i> = n means every change of d<i> up to n merged.
type liveRun struct {
	mu   sync.Mutex
	sent [][]time.Time // sent[i][n-1]: when device i called Change for its change n
	seen [][]int       // seen[j][i]: the last change of device i merged on device j
	lat  []float64     // ms, one per (change, receiving device)
	at   []time.Time   // when each sample's change was made
}

func seqKey(i int) string { return fmt.Sprintf("d%d", i) }

// mark records that device i starts its next change and returns its number.
func (r *liveRun) mark(i int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent[i] = append(r.sent[i], time.Now())
	return len(r.sent[i])
}

// merged records, on device j, every change that merged since the last call.
func (r *liveRun) merged(j int, d *state.Document) {
	now := time.Now()
	var seq map[string]int
	if err := d.Get(state.Path{"seq"}, &seq); err != nil {
		log.Fatalf("device %d: read seq: %v", j, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.sent {
		n := seq[seqKey(i)]
		if i == j || n <= r.seen[j][i] {
			continue
		}
		for _, t := range r.sent[i][r.seen[j][i]:n] {
			r.lat = append(r.lat, float64(now.Sub(t).Microseconds())/1000)
			r.at = append(r.at, t)
		}
		r.seen[j][i] = n
	}
}

// converged reports whether every device merged every other's changes.
func (r *liveRun) converged() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for j := range r.seen {
		for i := range r.sent {
			if i != j && r.seen[j][i] != len(r.sent[i]) {
				return false
			}
		}
	}
	return true
}

func benchLive(root string) {
	n := *devices
	fmt.Printf("# live: %d devices, %.0f changes/s each, %s, one document, all live through one seed\n", n, *rate, *duration)
	a := newAgent(filepath.Join(root, "live"), n)
	defer a.close()
	seed := startSeed(filepath.Join(root, "live-seed"), a.ns)
	defer seed.stop()
	first, err := state.Open(a.homes[0], a.ns, liveDoc)
	if err != nil {
		log.Fatal(err)
	}
	// The shared structure is made once, before the devices edit it.
	if err := first.Change(func(tx *state.Tx) error {
		return tx.Set(nil, map[string]any{"events": []any{}, "seq": map[string]any{}})
	}); err != nil {
		log.Fatal(err)
	}
	a.syncAll(seed.addr)
	r := &liveRun{sent: make([][]time.Time, n), seen: make([][]int, n)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	docs, sessions := startLive(ctx, a, seed.addr, r)
	defer benchutil.StartProfile(*profile, "devices-live")()

	seedCPU, devCPU, start := seed.cpu(), benchutil.SelfCPU(), time.Now()
	fsyncs := probeFsync(ctx, root, start.Add(*duration))
	var wg sync.WaitGroup
	for i, d := range docs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			write(i, d, r, start.Add(*duration))
			if err := d.Flush(); err != nil {
				log.Fatalf("device %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	seedCPU, devCPU = seed.cpu()-seedCPU, benchutil.SelfCPU()-devCPU
	drain := time.Now()
	for !r.converged() && time.Since(drain) < time.Minute {
		select {
		case err := <-sessions:
			log.Fatalf("a live session ended: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	reportLive(r, docs, elapsed, seedCPU, devCPU)
	// Baseline: a change passes three stores (the writer's, the seed's,
	// the receiver's), each syncing its write to disk.
	fs := <-fsyncs
	slices.Sort(fs)
	benchutil.Bench("state_live_baseline_fsync_p50_ms", benchutil.Round(fs[len(fs)/2], 2), "ms")
	benchutil.Bench("state_live_baseline_fsync_p99_ms", benchutil.Round(fs[len(fs)*99/100], 2), "ms")
}

// probeFsync writes 4 KiB and syncs it to disk in dir every 50 ms until
// the deadline, and then sends the time each sync took (ms): what the
// disk gave the stores meanwhile.
func probeFsync(ctx context.Context, dir string, until time.Time) chan []float64 {
	out := make(chan []float64, 1)
	f, err := os.CreateTemp(dir, "fsync-probe-")
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		defer os.Remove(f.Name())
		defer f.Close()
		var ms []float64
		buf := make([]byte, 4096)
		for time.Now().Before(until) && ctx.Err() == nil {
			if _, err := f.Write(buf); err != nil {
				log.Fatal(err)
			}
			t := time.Now()
			if err := f.Sync(); err != nil {
				log.Fatal(err)
			}
			ms = append(ms, float64(time.Since(t).Microseconds())/1000)
			time.Sleep(50 * time.Millisecond)
		}
		out <- ms
	}()
	return out
}

// startLive opens the document on every device, starts its live session
// with the seed and its watcher, and returns once every session is live.
// Sessions that end early are reported on the returned channel.
func startLive(ctx context.Context, a *agent, seed string, r *liveRun) ([]*state.Document, chan error) {
	sessions := make(chan error, len(a.homes))
	live := make(chan struct{}, len(a.homes))
	var docs []*state.Document
	for j, h := range a.homes {
		d, err := state.Open(h, a.ns, liveDoc)
		if err != nil {
			log.Fatal(err)
		}
		d.SnapshotEvery = *snapEvery
		docs = append(docs, d)
		r.seen[j] = make([]int, len(a.homes))
		var once sync.Once
		opts := client.SyncOptions{Live: true, Progress: func(p vault.Progress) {
			if p.Phase == "live" {
				once.Do(func() { live <- struct{}{} })
			}
		}}
		go func() {
			_, err := h.Sync(ctx, a.ns, seed, opts)
			if ctx.Err() == nil {
				sessions <- fmt.Errorf("device %d: %w", j, errors.Join(err, errors.New("ended")))
			}
		}()
		go func() {
			if err := d.Watch(ctx, func() { r.merged(j, d) }); err != nil {
				log.Fatalf("device %d: watch: %v", j, err)
			}
		}()
	}
	for range a.homes {
		select {
		case <-live:
		case err := <-sessions:
			log.Fatal(err)
		case <-time.After(time.Minute):
			log.Fatal("the live sessions did not start within a minute")
		}
	}
	return docs, sessions
}

// write makes device i's changes at the rate until the deadline, starting
// at a random phase so devices do not write in step.
func write(i int, d *state.Document, r *liveRun, until time.Time) {
	every := time.Duration(float64(time.Second) / *rate)
	time.Sleep(time.Duration(rand.Int64N(int64(every))))
	tick := time.NewTicker(every)
	defer tick.Stop()
	for time.Now().Before(until) {
		seq := r.mark(i)
		if err := d.Change(func(tx *state.Tx) error {
			if err := tx.Append(state.Path{"events"}, map[string]any{"d": i, "n": seq}); err != nil {
				return err
			}
			return tx.Set(state.Path{"seq", seqKey(i)}, seq)
		}); err != nil {
			log.Fatalf("device %d: change %d: %v", i, seq, err)
		}
		<-tick.C
	}
}

func reportLive(r *liveRun, docs []*state.Document, elapsed, seedCPU, devCPU float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	total, want := 0, 0
	for i := range r.sent {
		total += len(r.sent[i])
		want += len(r.sent[i]) * (len(r.sent) - 1)
	}
	problems, first := 0, ""
	for _, d := range docs {
		ps := d.Problems()
		problems += len(ps)
		if len(ps) > 0 && first == "" {
			first = ps[0].Error()
		}
	}
	if first != "" {
		fmt.Printf("# live: the first entry skipped: %s\n", first)
	}
	fmt.Printf("# live: %d changes in %.1f s (%.1f/s), %d of %d (change, device) pairs merged, %d entries skipped\n",
		total, elapsed, float64(total)/elapsed, len(r.lat), want, problems)
	if len(r.lat) == 0 {
		log.Fatal("live: no change merged anywhere")
	}
	if *verbose {
		r.perSecond()
	}
	slices.Sort(r.lat)
	fmt.Println("# target: state_live_p99_ms <= 100")
	benchutil.Bench("state_live_p50_ms", r.lat[len(r.lat)/2], "ms")
	benchutil.Bench("state_live_p99_ms", r.lat[len(r.lat)*99/100], "ms")
	benchutil.Bench("state_live_max_ms", r.lat[len(r.lat)-1], "ms")
	benchutil.Bench("state_live_samples", float64(len(r.lat)), "samples")
	benchutil.Bench("state_live_missing_samples", float64(want-len(r.lat)), "samples")
	benchutil.Bench("state_live_changes_per_second", benchutil.Round(float64(total)/elapsed, 1), "changes/s")
	benchutil.Bench("state_live_seed_cpu_seconds", benchutil.Round(seedCPU, 2), "s")
	benchutil.Bench("state_live_devices_cpu_seconds", benchutil.Round(devCPU, 2), "s")
}

// perSecond prints, on stderr, each second's sample count, p50 and p99 by
// the second the change was made in.
func (r *liveRun) perSecond() {
	start := slices.MinFunc(r.at, time.Time.Compare)
	var secs [][]float64
	for k, t := range r.at {
		s := int(t.Sub(start) / time.Second)
		for len(secs) <= s {
			secs = append(secs, nil)
		}
		secs[s] = append(secs[s], r.lat[k])
	}
	for s, lat := range secs {
		if len(lat) == 0 {
			continue
		}
		slices.Sort(lat)
		progress("live second %d: %d samples, p50 %.1f ms, p99 %.1f ms, max %.1f ms", s, len(lat), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
	}
}
