package hosting

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/internal/p2ptest"
	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/ticket"
)

// freshRequest is a host request of a new agent with one new vault, signed
// by its root key.
func freshRequest(invite string) *Request {
	_, root, _ := ed25519.GenerateKey(nil)
	var ns [32]byte
	_, _ = rand.Read(ns[:])
	r := &Request{Op: OpHost, Kind: SubjectAgent, Subject: root.Public().(ed25519.PublicKey), Fleet: testFleet,
		Time: time.Now(), Vaults: []VaultAsk{{Namespace: ns}}, Invite: invite}
	_, _ = rand.Read(r.Nonce[:])
	r.Sign(root)
	return r
}

// TestOpenFlood: an Open fleet's pod flooded for seconds with host requests
// from thousands of fresh keys, over a few connections, admits no more
// than its admissions per second allow (a burst of twice as many, then the
// rate) and never more than its vault limit; an agent with an invite is
// admitted meanwhile (invites pass the admission rate, not the vault
// limit); the heap stays bounded. The per-range limit is raised out of the
// way: on loopback every device shares one address range.
func TestOpenFlood(t *testing.T) {
	const rate, perPod, flood = 5.0, 30, 6 * time.Second
	fleetPub, fleetSK, _ := ed25519.GenerateKey(nil)
	pods := startFleet(t, 1, 1, Policy{Admission: fleet.Open, FleetKey: fleetPub, AdmissionsPerSecond: rate,
		MaxVaultsPerPod: perPod, RequestsPerRangePerMinute: 1 << 30})
	seed := pods[0]
	// Eight devices, four requests in flight each: within what the seed
	// grants unknown peers (8 streams each, 64 per address range).
	info := peer.AddrInfo{ID: seed.host.ID(), Addrs: seed.host.Addrs()}
	devices := make([]host.Host, 8)
	for i := range devices {
		devices[i] = p2ptest.NewHost(t, false)
	}

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	var sent, admitted, rateLimited, full, other atomic.Int64
	var peakHeap atomic.Uint64
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
				ans, err := Ask(ctx, devices[w%len(devices)], info, freshRequest(""))
				cancel()
				sent.Add(1)
				switch {
				case err != nil:
					other.Add(1)
				case ans.OK():
					admitted.Add(1)
				case ans.Reason == ReasonRateLimited:
					rateLimited.Add(1)
				case ans.Reason == ReasonFleetFull:
					full.Add(1)
				default:
					other.Add(1)
				}
			}
		})
	}
	// Once the flood has drained the admission bucket, an invited agent
	// asks, and is admitted while the pod has room.
	for deadline := time.Now().Add(10 * time.Second); rateLimited.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no request rate-limited after 10 s of flood")
		}
	}
	inv, err := ticket.NewInviteTicket(testFleet, [16]byte{9}, time.Now().Add(time.Hour), 1, fleetSK)
	if err != nil {
		t.Fatal(err)
	}
	invited := ask(t, devices[0], seed, freshRequest(inv.String()))
	admittedAtInvite := admitted.Load()
	sampler := time.NewTicker(100 * time.Millisecond)
	for deadline := time.After(flood); ; {
		select {
		case <-sampler.C:
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peakHeap.Load() {
				peakHeap.Store(ms.HeapAlloc)
			}
			continue
		case <-deadline:
		}
		break
	}
	sampler.Stop()
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)

	if err := invited.Err(); err != nil {
		t.Fatalf("the invited agent was refused during the flood (%d flood agents admitted then): %v", admittedAtInvite, err)
	}
	budget := int64(2*rate + rate*elapsed.Seconds())
	t.Logf("%d requests in %s: %d admitted (budget %d, vault limit %d), %d rate-limited, %d refused as full, %d other; heap peak %d MiB over %d MiB before",
		sent.Load(), elapsed.Round(time.Millisecond), admitted.Load(), budget, perPod, rateLimited.Load(), full.Load(), other.Load(),
		peakHeap.Load()>>20, before.HeapAlloc>>20)
	if sent.Load() < 1000 {
		t.Fatalf("only %d requests in %s: not a flood", sent.Load(), elapsed)
	}
	if admitted.Load() > min(budget, perPod) {
		t.Fatalf("%d flood agents admitted; the limits allow %d (%.0f/s for %s with a burst of %.0f) and at most %d vaults",
			admitted.Load(), min(budget, perPod), rate, elapsed.Round(time.Millisecond), 2*rate, perPod)
	}
	if got := seed.records.Vaults(); got > perPod {
		t.Fatalf("the pod holds %d vaults, over its limit of %d", got, perPod)
	}
	if full.Load() == 0 {
		t.Fatalf("no request was refused as full: the flood did not reach the vault limit (%d admitted)", admitted.Load())
	}
	if other.Load() > sent.Load()/100 {
		t.Fatalf("%d of %d requests failed otherwise than by the limits", other.Load(), sent.Load())
	}
	// Generous: the seed's state is a few small records and bounded
	// tables (replay guard, address ranges), whatever the flood's size.
	if grown := int64(peakHeap.Load()) - int64(before.HeapAlloc); grown > 96<<20 {
		t.Fatalf("the heap grew by %d MiB during the flood", grown>>20)
	}
}
