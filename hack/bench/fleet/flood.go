package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/seedfleet/seedfleet/hack/benchutil"
	"github.com/seedfleet/seedfleet/seednode/hosting"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/ticket"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// Flood limits: few admissions a second and a small pod, so that the flood
// meets both within its run.
const (
	floodRate   = 20
	floodPerPod = 300
)

// floodBench floods a one-pod Open fleet (a seed process) with host
// requests from fresh keys over a few connections for d, with an invited
// agent asking midway, and prints the seed's peak RSS, the agents admitted
// next to what the limits allow, and whether the invited agent got in.
func floodBench(d time.Duration) {
	dir, err := os.MkdirTemp("", "bench-fleet-flood-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin, err := seedfleetBin()
	if err != nil {
		log.Fatal(err)
	}
	procs, err := newFleetProcs(dir, bin, 1, 1)
	if err != nil {
		log.Fatal(err)
	}
	fatal := func(err error) {
		procs.stopAll()
		removeBin()
		log.Fatal(err)
	}
	defer procs.stopAll()
	_, fleetKey, _ := ed25519.GenerateKey(nil)
	procs.keyFile = filepath.Join(dir, "fleet.key")
	if err := identity.Save(procs.keyFile, fleetKey); err != nil {
		fatal(err)
	}
	// On loopback every device shares one address range: its limit is
	// raised out of the way, leaving the fleet-wide ones.
	procs.limits = fmt.Sprintf("    maxVaultsPerPod: %d\n    admissionsPerSecond: %d\n    requestsPerRangePerMinute: 100000000\n", floodPerPod, floodRate)
	if err := procs.start(0, 1, 0); err != nil {
		fatal(err)
	}
	seed := procs.pods[0]
	devices := make([]host.Host, 8)
	for i := range devices {
		_, key, _ := ed25519.GenerateKey(nil)
		if devices[i], err = p2p.NewHost(p2p.HostOptions{Key: key}); err != nil {
			fatal(err)
		}
		defer devices[i].Close()
	}
	if err := waitReady(devices[0], procs.pods); err != nil {
		fatal(err)
	}
	rss0 := procRSS(seed.cmd.Process.Pid)
	request := func(invite string) *hosting.Request {
		_, root, _ := ed25519.GenerateKey(nil)
		var ns vault.NamespaceID
		_, _ = rand.Read(ns[:])
		r := &hosting.Request{Op: hosting.OpHost, Kind: hosting.SubjectAgent, Subject: root.Public().(ed25519.PublicKey),
			Fleet: benchFleet, Time: time.Now(), Vaults: []hosting.VaultAsk{{Namespace: ns}}, Invite: invite}
		_, _ = rand.Read(r.Nonce[:])
		r.Sign(root)
		return r
	}
	var sent, admitted atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for w := range 4 * len(devices) {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				ans, err := hosting.Ask(ctx, devices[w%len(devices)], seed.info, request(""))
				cancel()
				sent.Add(1)
				if err == nil && ans.OK() {
					admitted.Add(1)
				}
			}
		})
	}
	var peak atomic.Int64
	sample := func() {
		if r := procRSS(seed.cmd.Process.Pid); r > peak.Load() {
			peak.Store(r)
		}
	}
	// The invited agent asks a quarter of the way in.
	time.Sleep(d / 4)
	inv, err := ticket.NewInviteTicket(benchFleet, [16]byte{1}, time.Now().Add(time.Hour), 1, fleetKey)
	if err != nil {
		fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	ans, err := hosting.Ask(ctx, devices[0], seed.info, request(inv.String()))
	cancel()
	invited := err == nil && ans.OK()
	for time.Since(start) < d {
		sample()
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)
	sample()
	budget := min(int64(2*floodRate+floodRate*elapsed.Seconds()), floodPerPod)
	log.Printf("flood: %d requests from fresh keys in %s over %d connections: %d admitted (the limits allow %d), invited agent admitted: %v; seed RSS %d MiB before, %d MiB at peak",
		sent.Load(), elapsed.Round(time.Millisecond), len(devices), admitted.Load(), budget, invited, rss0>>20, peak.Load()>>20)
	benchutil.Bench("fleet_flood_requests", float64(sent.Load()), "requests")
	benchutil.Bench("fleet_flood_admitted", float64(admitted.Load()), "agents")
	benchutil.Bench("fleet_flood_admitted_budget", float64(budget), "agents")
	benchutil.Bench("fleet_flood_rss_bytes", float64(peak.Load()), "bytes")
	benchutil.Bench("fleet_flood_rss_before_bytes", float64(rss0), "bytes")
	inviteOK := 0.0
	if invited {
		inviteOK = 1
	}
	benchutil.Bench("fleet_flood_invited_admitted", inviteOK, "bool")
}

// procRSS is a process's resident set size in bytes (0 if unreadable).
func procRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
