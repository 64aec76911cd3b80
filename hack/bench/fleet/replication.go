package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/seedfleet/seedfleet/hack/benchutil"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

var (
	sharedVaults = flag.Int("shared-vaults", 100_000, "replication: idle vaults the three pods share")
	baseVaults   = flag.Int("base-vaults", 1_000, "replication: idle vaults of the baseline fleet")
	idleWindow   = flag.Duration("idle-window", time.Minute, "replication: how long idle CPU is measured")
	replInterval = flag.Duration("replicate-interval", 10*time.Second, "replication: the pods' replicateInterval")
	liveSamples  = flag.Int("live-samples", 200, "crosspod: writes timed")
)

// replicationParts runs parts "replication" and "crosspod" (on the
// replication part's baseline fleet), scaled down by -smoke.
func replicationParts() {
	if !runs("replication") && !runs("crosspod") {
		return
	}
	if *smoke {
		*sharedVaults, *baseVaults, *idleWindow, *replInterval, *liveSamples = 2_000, 200, 2*time.Second, time.Second, 20
	}
	replicationBench(*sharedVaults, *baseVaults, *replInterval, *idleWindow, *liveSamples, runs("crosspod"))
}

// Part "replication": three seed processes on loopback hold the same idle
// vaults (R = 3, every vault placed on all three, each naming the other two
// as its replica peers) and the CPU they spend per minute once the initial
// fill is done is read from /proc; the baseline is the same fleet with
// 1,000 vaults, so the figure shows whether cost grows with idle vaults.
// On the smaller fleet, part "crosspod" then has a device write, through a
// live session with pod 0, while one device is live on pod 1 and another on
// pod 0 (the baseline): the time from the write to each reader.

// replicaProcs runs three seeds hosting vaults, each naming the other two
// as the vaults' replica peers, replicating every interval.
func replicaProcs(dir, bin string, vaults []vault.NamespaceID, interval time.Duration) ([]*pod, error) {
	const n = 3
	pods := make([]*pod, n)
	ports := make([]int, n)
	addrs := make([]string, n)
	for i := range pods {
		_, key, _ := ed25519.GenerateKey(nil)
		if err := identity.Save(filepath.Join(dir, fmt.Sprintf("rpod%d.key", i)), key); err != nil {
			return nil, err
		}
		id, err := identity.PeerID(key.Public().(ed25519.PublicKey))
		if err != nil {
			return nil, err
		}
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
		addrs[i] = fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", ports[i], id)
		info, err := p2p.ParsePeerAddr(addrs[i])
		if err != nil {
			return nil, err
		}
		pods[i] = &pod{info: info}
	}
	for i, p := range pods {
		list := filepath.Join(dir, fmt.Sprintf("rpod%d.vaults", i))
		if err := writeVaultList(list, vaults, addrs[(i+1)%n], addrs[(i+2)%n]); err != nil {
			return pods, err
		}
		cfg := fmt.Sprintf(`dataDir: %s
identityFile: %s
listen: {tcp: [/ip4/127.0.0.1/tcp/%d], quic: [], webSocket: []}
hostedVaultsFile: %s
replicateInterval: %s
admin: {listen: ""}
dht: {mode: Off}
relay: {mode: Off}
logLevel: Warn
`, filepath.Join(dir, fmt.Sprintf("rpod%d", i)), filepath.Join(dir, fmt.Sprintf("rpod%d.key", i)), ports[i], list, interval)
		cfgFile := filepath.Join(dir, fmt.Sprintf("rpod%d.yaml", i))
		if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
			return pods, err
		}
		p.cmd = exec.Command(bin, "seednode", "--config", cfgFile)
		p.cmd.Stderr = os.Stderr
		if err := p.cmd.Start(); err != nil {
			return pods, err
		}
	}
	return pods, nil
}

func writeVaultList(path string, vaults []vault.NamespaceID, peers ...string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for _, ns := range vaults {
		fmt.Fprint(w, ns.String())
		for _, p := range peers {
			fmt.Fprint(w, " ", p)
		}
		fmt.Fprintln(w)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// settle waits until the pods' CPU stays under a tenth of a core for two
// seconds in a row (the vaults file read, every vault placed, the first
// exchanges done), for at least minWait and at most two minutes.
func settle(pods []*pod, minWait time.Duration) time.Duration {
	start := time.Now()
	time.Sleep(minWait)
	quiet := 0
	for quiet < 2 && time.Since(start) < 2*time.Minute {
		c0 := podsCPU(pods)
		time.Sleep(time.Second)
		if podsCPU(pods)-c0 < 0.1 {
			quiet++
		} else {
			quiet = 0
		}
	}
	return time.Since(start)
}

// idleCPU starts three pods holding n vaults plus extra, lets them settle
// and returns their CPU seconds per minute over window, with the pods
// (still running: the caller stops them).
func idleCPU(dir, bin string, n int, extra []vault.NamespaceID, interval, window time.Duration) (float64, []*pod, error) {
	vaults := append(randomVaults(n), extra...)
	pods, err := replicaProcs(dir, bin, vaults, interval)
	if err != nil {
		return 0, pods, err
	}
	took := settle(pods, interval)
	c0 := podsCPU(pods)
	time.Sleep(window)
	perMin := (podsCPU(pods) - c0) * float64(time.Minute) / float64(window)
	rss := int64(0)
	for _, p := range pods {
		rss += benchutil.ProcStatus(fmt.Sprint(p.cmd.Process.Pid), "VmRSS")
	}
	log.Printf("replication: 3 pods × %d idle vaults (R=3, interval %s): settled after %s; %.3f CPU-s per minute over %s; RSS %.0f MiB in all",
		len(vaults), interval, took.Round(time.Second), perMin, window, benchutil.MiB(rss))
	return perMin, pods, nil
}

// replicationBench runs part "replication" and, on the baseline fleet,
// part "crosspod".
func replicationBench(n, base int, interval, window time.Duration, samples int, live bool) {
	dir, err := os.MkdirTemp("", "bench-replication-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin, err := benchutil.BuildSeedfleet(dir)
	if err != nil {
		log.Fatal(err)
	}
	big := -1.0
	if runs("replication") {
		var pods []*pod
		big, pods, err = idleCPU(mkdir(dir, "big"), bin, n, nil, interval, window)
		stopFleetProcs(pods)
		if err != nil {
			log.Fatal(err)
		}
	}

	writer, err := client.Open(mkdir(dir, "writer"))
	if err != nil {
		log.Fatal(err)
	}
	defer writer.Close()
	ns, err := writer.CreateVault()
	if err != nil {
		log.Fatal(err)
	}
	small, pods, err := idleCPU(mkdir(dir, "small"), bin, base, []vault.NamespaceID{ns}, interval, window)
	defer stopFleetProcs(pods)
	if err != nil {
		stopFleetProcs(pods)
		log.Fatal(err)
	}
	if big >= 0 {
		benchutil.Bench("fleet_idle_replication_cpu_seconds_per_minute", benchutil.Round(big, 3), "s")
		benchutil.Bench(fmt.Sprintf("fleet_idle_replication_cpu_seconds_per_minute_%d_vaults", base), benchutil.Round(small, 3), "s")
	}
	if !live {
		return
	}
	cross, same, err := crossPod(writer, ns, pods, samples)
	if err != nil {
		stopFleetProcs(pods)
		log.Fatal(err)
	}
	p99 := func(xs []float64) float64 {
		slices.Sort(xs)
		return xs[min(len(xs)-1, len(xs)*99/100)]
	}
	log.Printf("crosspod: %d writes through pod 0: to a device live on pod 1 median %.1f ms, p99 %.1f ms; on pod 0 median %.1f ms, p99 %.1f ms",
		samples, benchutil.Median(cross), p99(cross), benchutil.Median(same), p99(same))
	benchutil.Bench("fleet_cross_pod_live_p99_ms", benchutil.Round(p99(cross), 1), "ms")
	benchutil.Bench("fleet_same_pod_live_p99_ms", benchutil.Round(p99(same), 1), "ms")
}

func mkdir(parent, name string) string {
	d := filepath.Join(parent, name)
	if err := os.MkdirAll(d, 0o700); err != nil {
		log.Fatal(err)
	}
	return d
}

// liveDevice is a device holding a live session on one pod.
type liveDevice struct {
	host  host.Host
	store *vault.Store
	svc   *vault.Service
	done  chan error
}

// goLive opens a live session on p for ns from a device with its own host
// and store (st, or a new one in dir), and waits until it is live.
func goLive(ctx context.Context, dir string, st *vault.Store, ns vault.NamespaceID, p *pod) (*liveDevice, error) {
	_, key, _ := ed25519.GenerateKey(nil)
	h, err := p2p.NewHost(p2p.HostOptions{Key: key})
	if err != nil {
		return nil, err
	}
	d := &liveDevice{host: h, store: st, done: make(chan error, 1)}
	if d.store == nil {
		if d.store, err = vault.Open(dir, vault.StoreOptions{NoSync: true}); err != nil {
			h.Close()
			return nil, err
		}
	}
	if d.svc, err = vault.NewService(h, d.store, vault.WithPolicy(vault.NewHostedSet(ns))); err != nil {
		d.close(st == nil)
		return nil, err
	}
	h.Peerstore().AddAddrs(p.info.ID, p.info.Addrs, peerstore.PermanentAddrTTL)
	isLive := make(chan struct{})
	go func() {
		_, err := d.svc.Sync(ctx, p.info.ID, ns, vault.SyncOptions{Live: true, Progress: func(pr vault.Progress) {
			if pr.Phase == "live" {
				select {
				case <-isLive:
				default:
					close(isLive)
				}
			}
		}})
		d.done <- err
	}()
	select {
	case <-isLive:
		return d, nil
	case err := <-d.done:
		return nil, fmt.Errorf("live session with %s: %w", p.info.ID, err)
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("live session with %s: not live after 30 s", p.info.ID)
	}
}

func (d *liveDevice) close(ownStore bool) {
	if d.svc != nil {
		d.svc.Close()
	}
	d.host.Close()
	if ownStore {
		d.store.Close()
	}
}

// crossPod writes samples entries through a live session with pod 0 and
// returns, in ms, how long each took to reach a device live on pod 1 and
// one live on pod 0.
func crossPod(writer *client.Home, ns vault.NamespaceID, pods []*pod, samples int) (cross, same []float64, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := goLive(ctx, "", writer.Store, ns, pods[0])
	if err != nil {
		return nil, nil, err
	}
	defer w.close(false)
	dir, err := os.MkdirTemp("", "bench-crosspod-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	readers := make([]*liveDevice, 2)
	for i, p := range []*pod{pods[1], pods[0]} {
		if readers[i], err = goLive(ctx, mkdir(dir, fmt.Sprint(i)), nil, ns, p); err != nil {
			return nil, nil, err
		}
		defer readers[i].close(true)
	}
	subs := make([]*vault.Subscription, 2)
	for i, r := range readers {
		subs[i] = r.store.Subscribe(ns, vault.NewOrigin())
		defer subs[i].Close()
	}
	for i := range samples {
		key := fmt.Appendf(nil, "sample/%d", i)
		start := time.Now()
		if _, err := writer.Put(ns, key, []byte("fresh")); err != nil {
			return nil, nil, err
		}
		var took [2]float64
		var errs [2]error
		var wg sync.WaitGroup
		for j, sub := range subs {
			wg.Go(func() { took[j], errs[j] = arrival(sub, key, start) })
		}
		wg.Wait()
		for j, err := range errs {
			if err != nil {
				return nil, nil, fmt.Errorf("sample %d to reader %d: %w", i, j, err)
			}
		}
		cross, same = append(cross, took[0]), append(same, took[1])
		time.Sleep(20 * time.Millisecond)
	}
	return cross, same, nil
}

// arrival waits for key on sub and returns the ms since start.
func arrival(sub *vault.Subscription, key []byte, start time.Time) (float64, error) {
	deadline := time.After(30 * time.Second)
	for {
		select {
		case <-sub.Ready():
		case <-deadline:
			return 0, fmt.Errorf("entry %s not there after 30 s", key)
		}
		items, overflow, closed := sub.Next()
		if closed || overflow {
			return 0, fmt.Errorf("subscription closed or overflowed")
		}
		for _, it := range items {
			if string(it.Entry.Key) == string(key) {
				return float64(time.Since(start).Microseconds()) / 1000, nil
			}
		}
	}
}

// stopFleetProcs kills the pods that run (the replication parts need no
// clean shutdown: their data directories go with the run).
func stopFleetProcs(pods []*pod) {
	for _, p := range pods {
		if p != nil && p.cmd != nil && p.cmd.Process != nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	}
}
