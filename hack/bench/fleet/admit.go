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
	info peer.AddrInfo
	cmd  *exec.Cmd
}

// startFleetProcs runs n `seedfleet seednode` processes on loopback as one
// open fleet with replicas r, each pod's key and port chosen first so every
// configuration lists all members, as the operator writes them.
func startFleetProcs(dir, bin string, n, r int) ([]*pod, error) {
	pods := make([]*pod, n)
	var members []string
	ports := make([]int, n)
	for i := range pods {
		_, key, _ := ed25519.GenerateKey(nil)
		if err := identity.Save(filepath.Join(dir, fmt.Sprintf("pod%d.key", i)), key); err != nil {
			return nil, err
		}
		id, err := identity.PeerID(key.Public().(ed25519.PublicKey))
		if err != nil {
			return nil, err
		}
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
		addr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", ports[i], id)
		info, err := p2p.ParsePeerAddr(addr)
		if err != nil {
			return nil, err
		}
		members = append(members, addr)
		pods[i] = &pod{info: info}
	}
	membersJSON, _ := json.Marshal(members)
	for i, p := range pods {
		cfg := fmt.Sprintf(`dataDir: %s
identityFile: %s
listen: {tcp: [/ip4/127.0.0.1/tcp/%d], quic: [], webSocket: []}
admin: {listen: ""}
dht: {mode: Off}
relay: {mode: Off}
logLevel: Warn
fleet:
  name: %s
  self: %d
  members: %s
  replicas: %d
  admission: Open
  limits:
    maxVaultsPerPod: 10000000
    admissionsPerSecond: 1000000
    requestsPerRangePerMinute: 100000000
`, filepath.Join(dir, fmt.Sprintf("pod%d", i)), filepath.Join(dir, fmt.Sprintf("pod%d.key", i)), ports[i], benchFleet, i, membersJSON, r)
		cfgFile := filepath.Join(dir, fmt.Sprintf("pod%d.yaml", i))
		if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
			return nil, err
		}
		p.cmd = exec.Command(bin, "seednode", "--config", cfgFile)
		p.cmd.Stderr = os.Stderr
		if err := p.cmd.Start(); err != nil {
			return nil, err
		}
	}
	return pods, nil
}

func stopFleetProcs(pods []*pod) {
	for _, p := range pods {
		if p != nil && p.cmd != nil && p.cmd.Process != nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	}
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
	bin, err := benchutil.BuildSeedfleet(dir)
	if err != nil {
		log.Fatal(err)
	}
	pods, err := startFleetProcs(dir, bin, 3, 3)
	// log.Fatal skips deferred calls: stop the pods first, or they outlive
	// the driver (and hold its output open).
	fatal := func(err error) {
		stopFleetProcs(pods)
		log.Fatal(err)
	}
	defer stopFleetProcs(pods)
	if err != nil {
		fatal(err)
	}
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
	admit, err := rate(n, devices, perDevice, func(d, i int) error {
		ans, err := hosting.Ask(context.Background(), hosts[d], pods[i%len(pods)].info, request(i))
		if err == nil {
			err = ans.Err()
		}
		return err
	})
	if err != nil {
		fatal(err)
	}
	cpu := podsCPU(pods) - cpu0
	log.Printf("admit: %d agents from %d devices (%d requests in flight each) through 3 pods (R=3) at %.0f/s, %.1f CPU-s in the pods; ticket round trips %.0f/s",
		n, devices, perDevice, admit, cpu, base)
	benchutil.Bench("fleet_admit_per_second", benchutil.Round(admit, 0), "1/s")
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
		sum += benchutil.ProcCPU(p.cmd.Process.Pid)
	}
	return sum
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
