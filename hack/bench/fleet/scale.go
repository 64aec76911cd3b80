package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log"
	"os"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/seedfleet/seedfleet/hack/benchutil"
	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/hosting"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// scaleBench admits n agents (one vault each) to a 3-pod fleet (R=3), then
// scales it to 4 pods as the operator does: the new pod starts and the
// others apply the new membership from their configuration files, without
// a restart. It prints how many vaults moved
// over the ideal R/4 share, and the time until every moved vault is held by
// its new pod and no longer by the pod it left (which drops it only once the
// new pod reports the same fingerprint and no missing blob).
func scaleBench(n int) {
	const r = 3
	dir, err := os.MkdirTemp("", "bench-fleet-scale-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin, err := seedfleetBin()
	if err != nil {
		log.Fatal(err)
	}
	procs, err := newFleetProcs(dir, bin, 4, r)
	if err != nil {
		log.Fatal(err)
	}
	fatal := func(err error) {
		procs.stopAll()
		removeBin()
		log.Fatal(err)
	}
	defer procs.stopAll()
	for i := range 3 {
		if err := procs.start(i, 3, 0); err != nil {
			fatal(err)
		}
	}
	_, key, _ := ed25519.GenerateKey(nil)
	h, err := p2p.NewHost(p2p.HostOptions{Key: key})
	if err != nil {
		fatal(err)
	}
	defer h.Close()
	if err := waitReady(h, procs.running()); err != nil {
		fatal(err)
	}
	keys, err := admitAgents(h, procs.pods[:3], n)
	if err != nil {
		fatal(err)
	}
	home := func(pods int) map[string][]int {
		out := make(map[string][]int, n)
		for ns, k := range keys {
			out[ns] = fleet.Top(k, pods, r)
		}
		return out
	}
	if err := waitPlaced(procs, home(3), 3, 5*time.Minute); err != nil {
		fatal(err)
	}

	start := time.Now()
	if err := procs.start(3, 4, 0); err != nil {
		fatal(err)
	}
	for i := range 3 {
		if err := procs.reconfigure(i, 4, 0); err != nil {
			fatal(err)
		}
	}
	if err := waitPlaced(procs, home(4), 4, 10*time.Minute); err != nil {
		fatal(err)
	}
	took := time.Since(start)
	moved := 0
	h3, h4 := home(3), home(4)
	for ns := range keys {
		if !slices.Equal(sortedInts(h3[ns]), sortedInts(h4[ns])) {
			moved++
		}
	}
	ideal := float64(n) * r / 4
	log.Printf("scale: %d vaults (R=%d) on 3 pods → 4: %d moved a replica (ideal %.0f), all on their new pods after %s",
		n, r, moved, ideal, took.Round(time.Millisecond))
	benchutil.Bench("fleet_scale_moved_ratio", benchutil.Round(float64(moved)/ideal, 3), "ratio")
	benchutil.Bench("fleet_scale_seconds", benchutil.Round(took.Seconds(), 2), "s")
}

// admitAgents admits n agents, one fresh vault each, through pods, and
// returns each vault's placement key.
func admitAgents(h host.Host, pods []*pod, n int) (map[string]string, error) {
	keys := make(map[string]string, n)
	for i := range n {
		_, root, _ := ed25519.GenerateKey(nil)
		var ns vault.NamespaceID
		_, _ = rand.Read(ns[:])
		req := &hosting.Request{Op: hosting.OpHost, Kind: hosting.SubjectAgent, Subject: root.Public().(ed25519.PublicKey),
			Fleet: benchFleet, Time: time.Now(), Vaults: []hosting.VaultAsk{{Namespace: ns}}}
		_, _ = rand.Read(req.Nonce[:])
		req.Sign(root)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		ans, err := hosting.Ask(ctx, h, pods[i%len(pods)].info, req)
		cancel()
		if err == nil {
			err = ans.Err()
		}
		if err != nil {
			return nil, fmt.Errorf("agent %d: %w", i, err)
		}
		keys[ns.String()] = identity.DIDKey(req.Subject)
	}
	return keys, nil
}

// waitPlaced waits until pod o of the first pods hosts exactly the vaults
// whose home includes o.
func waitPlaced(procs *fleetProcs, home map[string][]int, pods int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		off := 0
		for o, p := range procs.pods[:pods] {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			hv, err := admin.NewClient(fmt.Sprintf("http://127.0.0.1:%d", p.adminPort)).HostedVaults(ctx)
			cancel()
			if err != nil {
				off++
				continue
			}
			has := make(map[string]bool, len(hv.Vaults))
			for _, ns := range hv.Vaults {
				has[ns] = true
			}
			for ns, h := range home {
				if has[ns] != slices.Contains(h, o) {
					off++
				}
			}
		}
		if off == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d vault replicas still misplaced after %s", off, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func sortedInts(s []int) []int {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
