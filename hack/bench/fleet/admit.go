package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/hack/benchutil"
	"github.com/seedfleet/seedfleet/seednode/hosting"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

const benchFleet = "bench/seeds"

// pod is one seed process of the benchmark's fleet.
type pod struct {
	info      peer.AddrInfo
	port      int
	adminPort int
	cmd       *exec.Cmd
}

// fleetProcs is a fleet of `seedfleet seednode` processes on loopback, each
// pod's key and ports chosen first so every configuration can list all
// members, as the operator writes them.
type fleetProcs struct {
	dir, bin string
	r        int
	pods     []*pod
	limits   string // the fleet.limits section, YAML
	keyFile  string // the fleet's key, if any
}

const openLimits = `    maxVaultsPerPod: 10000000
    admissionsPerSecond: 1000000
    requestsPerRangePerMinute: 100000000
`

func newFleetProcs(dir, bin string, n, r int) (*fleetProcs, error) {
	f := &fleetProcs{dir: dir, bin: bin, r: r, pods: make([]*pod, n), limits: openLimits}
	for i := range f.pods {
		_, key, _ := ed25519.GenerateKey(nil)
		if err := identity.Save(filepath.Join(dir, fmt.Sprintf("pod%d.key", i)), key); err != nil {
			return nil, err
		}
		id, err := identity.PeerID(key.Public().(ed25519.PublicKey))
		if err != nil {
			return nil, err
		}
		p := &pod{}
		if p.port, err = freePort(); err != nil {
			return nil, err
		}
		if p.adminPort, err = freePort(); err != nil {
			return nil, err
		}
		if p.info, err = p2p.ParsePeerAddr(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", p.port, id)); err != nil {
			return nil, err
		}
		f.pods[i] = p
	}
	return f, nil
}

// start runs pod i as a member of a fleet of the first count pods, the
// last leaving of them leaving.
func (f *fleetProcs) start(i, count, leaving int) error {
	cfgFile, err := f.writeConfig(i, count, leaving)
	if err != nil {
		return err
	}
	p := f.pods[i]
	p.cmd = exec.Command(f.bin, "seednode", "--config", cfgFile)
	p.cmd.Stderr = os.Stderr
	return p.cmd.Start()
}

// reconfigure tells running pod i its new membership as the operator and
// the kubelet do: its configuration file is replaced, and the seed applies
// the members without a restart.
func (f *fleetProcs) reconfigure(i, count, leaving int) error {
	_, err := f.writeConfig(i, count, leaving)
	return err
}

// writeConfig writes pod i's configuration file (a new file moved in place)
// and returns its path.
func (f *fleetProcs) writeConfig(i, count, leaving int) (string, error) {
	var members []string
	for _, p := range f.pods[:count] {
		members = append(members, fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", p.port, p.info.ID))
	}
	membersJSON, _ := json.Marshal(members)
	p := f.pods[i]
	cfg := fmt.Sprintf(`dataDir: %s
identityFile: %s
listen: {tcp: [/ip4/127.0.0.1/tcp/%d], quic: [], webSocket: []}
admin: {listen: "127.0.0.1:%d"}
dht: {mode: Off}
relay: {mode: Off}
logLevel: Warn
fleet:
  name: %s
  self: %d
  members: %s
  leaving: %d
  replicas: %d
  admission: Open
  keyFile: "%s"
  limits:
%s`, filepath.Join(f.dir, fmt.Sprintf("pod%d", i)), filepath.Join(f.dir, fmt.Sprintf("pod%d.key", i)), p.port, p.adminPort,
		benchFleet, i, membersJSON, leaving, f.r, f.keyFile, f.limits)
	cfgFile := filepath.Join(f.dir, fmt.Sprintf("pod%d.yaml", i))
	if err := os.WriteFile(cfgFile+".new", []byte(cfg), 0o600); err != nil {
		return "", err
	}
	return cfgFile, os.Rename(cfgFile+".new", cfgFile)
}

// stop stops pod i (a no-op if it is not running).
func (f *fleetProcs) stop(i int) {
	p := f.pods[i]
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
	}
	p.cmd = nil
}

func (f *fleetProcs) stopAll() {
	if f == nil {
		return
	}
	for i := range f.pods {
		f.stop(i)
	}
}

// running is the pods with a process.
func (f *fleetProcs) running() []*pod {
	var out []*pod
	for _, p := range f.pods {
		if p.cmd != nil {
			out = append(out, p)
		}
	}
	return out
}

// startFleet builds seedfleet into dir and runs n pods as one open fleet
// with replicas r.
func startFleet(dir string, n, r int) (*fleetProcs, error) {
	bin, err := seedfleetBin()
	if err != nil {
		return nil, err
	}
	f, err := newFleetProcs(dir, bin, n, r)
	if err != nil {
		return nil, err
	}
	for i := range n {
		if err := f.start(i, n, 0); err != nil {
			f.stopAll()
			return nil, err
		}
	}
	return f, nil
}

// admitBench admits n agents, one vault each, through a 3-pod fleet (R=3:
// every admission is written on all three pods), with the requests spread
// over the pods and many in flight; the baseline is the same number of
// fleet-ticket round trips (a stream to the same service, no signature
// check and no write).
func admitBench(n int) {
	dir, err := os.MkdirTemp("", "bench-fleet-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	procs, err := startFleet(dir, 3, 3)
	// log.Fatal skips deferred calls: stop the pods first, or they outlive
	// the driver (and hold its output open).
	fatal := func(err error) {
		procs.stopAll()
		removeBin()
		log.Fatal(err)
	}
	defer procs.stopAll()
	if err != nil {
		fatal(err)
	}
	pods := procs.pods
	// Devices: a seed admits at most a few streams at once from one peer it
	// does not know (and 64 from one address range), as any device sends one
	// request at a time; so several hosts, a few requests in flight each.
	const devices, perDevice = 8, 6
	hosts := make([]host.Host, devices)
	for i := range hosts {
		_, key, _ := ed25519.GenerateKey(nil)
		if hosts[i], err = p2p.NewHost(p2p.HostOptions{Key: key}); err != nil {
			fatal(err)
		}
		defer hosts[i].Close()
	}
	if err := waitReady(hosts[0], pods); err != nil {
		fatal(err)
	}

	// Requests are signed as they are sent, as devices do: a request is
	// valid for MaxClockSkew only.
	request := func(i int) *hosting.Request {
		_, root, _ := ed25519.GenerateKey(nil)
		var ns vault.NamespaceID
		_, _ = rand.Read(ns[:])
		r := &hosting.Request{Op: hosting.OpHost, Kind: hosting.SubjectAgent, Subject: root.Public().(ed25519.PublicKey),
			Fleet: benchFleet, Time: time.Now(), Vaults: []hosting.VaultAsk{{Namespace: ns}}}
		_, _ = rand.Read(r.Nonce[:])
		r.Sign(root)
		return r
	}
	base, err := rate(n, devices, perDevice, func(d, i int) error {
		_, err := hosting.FleetInfo(context.Background(), hosts[d], pods[i%len(pods)].info)
		return err
	})
	if err != nil {
		fatal(err)
	}
	cpu0 := podsCPU(pods)
	var retries atomic.Int64
	admit, err := rate(n, devices, perDevice, func(d, i int) error {
		// A device whose request times out on a busy fleet asks again (a
		// new request: the old one may have been admitted meanwhile).
		var err error
		for attempt := range 3 {
			if attempt > 0 {
				retries.Add(1)
				time.Sleep(time.Second)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			var ans *hosting.Answer
			ans, err = hosting.Ask(ctx, hosts[d], pods[i%len(pods)].info, request(i))
			cancel()
			if err == nil {
				return ans.Err()
			}
		}
		return err
	})
	if err != nil {
		fatal(err)
	}
	cpu := podsCPU(pods) - cpu0
	log.Printf("admit: %d agents from %d devices (%d requests in flight each) through 3 pods (R=3) at %.0f/s (%d asked again after a failure), %.1f CPU-s in the pods; ticket round trips %.0f/s",
		n, devices, perDevice, admit, retries.Load(), cpu, base)
	benchutil.Bench(admitName(n), benchutil.Round(admit, 0), "1/s")
	benchutil.Bench("fleet_ticket_round_trips_per_second", benchutil.Round(base, 0), "1/s")
	benchutil.Bench("fleet_admit_ratio_vs_round_trips", benchutil.Round(admit/base, 3), "ratio")
	benchutil.Bench("fleet_admit_pod_cpu_ms_per_admission", benchutil.Round(cpu*1000/float64(n), 3), "ms")
}

// rate runs do(device, 0..n-1) with perDevice requests in flight on each of
// devices, and returns completions per second, or the first error.
func rate(n, devices, perDevice int, do func(device, i int) error) (float64, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	start := time.Now()
	for w := range devices * perDevice {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := do(w%devices, i); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("request %d: %w", i, err)
					}
					mu.Unlock()
					next.Store(int64(n)) // stop the others
					return
				}
			}
		})
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds(), first
}

func podsCPU(pods []*pod) float64 {
	var sum float64
	for _, p := range pods {
		if p.cmd != nil {
			sum += benchutil.ProcCPU(p.cmd.Process.Pid)
		}
	}
	return sum
}

// admitName is the admission figure's name: fleet_admit_100k_per_second for
// the full run, as the issue names it.
func admitName(n int) string {
	if n == 100_000 {
		return "fleet_admit_100k_per_second"
	}
	return "fleet_admit_per_second"
}

// waitReady waits until every pod answers for the fleet.
func waitReady(h host.Host, pods []*pod) error {
	deadline := time.Now().Add(60 * time.Second)
	for _, p := range pods {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := hosting.FleetInfo(ctx, h, p.info)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("pod %s not answering after 60 s: %w", p.info.ID, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// seedfleetBin builds the seedfleet binary once for every part that runs
// seed processes; removeBin deletes it at the end.
func seedfleetBin() (string, error) {
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "bench-fleet-bin-"); binErr == nil {
			binPath, binErr = benchutil.BuildSeedfleet(binDir)
		}
	})
	return binPath, binErr
}

func removeBin() {
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
}
