package vault

import (
	"bufio"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/internal/admission"
)

// holdStreams opens n vault-sync streams from h to server, writes one byte
// on each (a hello never finished) and returns them.
func holdStreams(t *testing.T, h host.Host, server peer.ID, n int) []network.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []network.Stream
	for range n {
		st, err := h.NewStream(ctx, server, ProtocolID)
		if err != nil {
			continue // refused during negotiation
		}
		t.Cleanup(func() { st.Reset() })
		if _, err := st.Write([]byte{1}); err != nil {
			st.Reset()
			continue
		}
		out = append(out, st)
	}
	return out
}

// stillOpen counts the streams the server has not ended: a read that times
// out means nothing came back.
func stillOpen(sts []network.Stream, wait time.Duration) int {
	n := 0
	for _, st := range sts {
		_ = st.SetReadDeadline(time.Now().Add(wait))
		var b [1]byte
		_, err := st.Read(b[:])
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			n++
		}
	}
	return n
}

func refusals(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "seedfleet_stream_refusals_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "reason" {
					out[lp.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// TestUnknownPeersHoldOnlyWhatTheCapsAllow: with caps of 3 streams per
// unknown peer and 5 per address range, two unknown peers on 127.0.0.1
// opening 10 idle streams each keep at most 3 and 5 in all; the service
// holds only a hello's memory for each (not a session's); a peer that has
// synced before keeps syncing while they hold them; a new peer of the same
// range is refused (with an error naming the vault) until the flood
// leaves; the refusals are counted by reason.
func TestUnknownPeersHoldOnlyWhatTheCapsAllow(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	w := newWriter(t, newNamespaceKey(rng), rng)
	lim, err := admission.New(admission.Limits{PerPeer: 3, PerRange: 5, Total: 100, MaxKnown: 10})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	hs := testHost(t)
	server := newTestService(t, hs, testStore(t, StoreOptions{}), WithPolicy(NewHostedSet(w.ns)), WithAdmission(lim), WithRegisterer(reg))
	t.Cleanup(func() { server.Close() })

	device := testHost(t)
	devStore := testStore(t, StoreOptions{})
	devSvc := newTestService(t, device, devStore, WithPolicy(NewHostedSet(w.ns)))
	t.Cleanup(func() { devSvc.Close() })
	connect(t, device, hs)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	insert(t, devStore, w.item(t, "k0", "v0", nowMicros()-1000))
	if _, err := devSvc.Sync(ctx, hs.ID(), w.ns, SyncOptions{}); err != nil {
		t.Fatalf("first sync: %v", err)
	}
	// The seed marks the device known when its side of the session
	// finishes, a moment after the device's Sync may return.
	waitFor(t, 5*time.Second, "a device that completed a session is known", func() bool { return lim.Known(device.ID()) })

	var flood []network.Stream
	for range 2 {
		h := testHost(t)
		connect(t, h, hs)
		held := holdStreams(t, h, hs.ID(), 10)
		flood = append(flood, held...)
	}
	if open := stillOpen(flood, 200*time.Millisecond); open > 5 {
		t.Errorf("two unknown peers on one range hold %d idle streams, want at most 5", open)
	}
	var mem int64
	_ = hs.Network().ResourceManager().ViewService(ServiceName, func(s network.ServiceScope) error {
		mem = s.Stat().Memory
		return nil
	})
	if mem >= sessionMemory {
		t.Errorf("the service reserved %d bytes for streams that never sent a hello (a session is %d)", mem, sessionMemory)
	}

	for i := range 3 {
		insert(t, devStore, w.item(t, "k"+string(rune('1'+i)), "v", nowMicros()-1000))
		st, err := devSvc.Sync(ctx, hs.ID(), w.ns, SyncOptions{})
		if err != nil || st.ItemsSent != 1 {
			t.Fatalf("the known device's sync %d during the flood: %+v %v", i, st, err)
		}
	}

	newcomer := testHost(t)
	newSvc := newTestService(t, newcomer, testStore(t, StoreOptions{}), WithPolicy(NewHostedSet(w.ns)))
	t.Cleanup(func() { newSvc.Close() })
	connect(t, newcomer, hs)
	_, err = newSvc.Sync(ctx, hs.ID(), w.ns, SyncOptions{})
	if err == nil {
		t.Fatal("a new peer of the flooded range synced while the range was full")
	}
	if !strings.Contains(err.Error(), w.ns.Short()) {
		t.Errorf("the refused sync's error does not name the vault: %v", err)
	}

	got := refusals(t, reg)
	if got[admission.ReasonPeer] == 0 || got[admission.ReasonRange] == 0 {
		t.Errorf("refusals by reason %v, want both unknown_peer and unknown_range counted", got)
	}

	// The flood leaves: its places are free, and the newcomer syncs.
	for _, st := range flood {
		st.Reset()
	}
	for lim.Held() > 0 {
		if ctx.Err() != nil {
			t.Fatalf("unknown peers still hold %d streams after resetting them all", lim.Held())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := newSvc.Sync(ctx, hs.ID(), w.ns, SyncOptions{}); err != nil {
		t.Fatalf("the newcomer after the flood: %v", err)
	}
}

// TestHelloDeadline: a stream that sends one byte and nothing more is
// ended after the hello timeout, with an error frame saying so, not kept
// for the idle timeout (30 s here).
func TestHelloDeadline(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	w := newWriter(t, newNamespaceKey(rng), rng)
	hs := testHost(t)
	server := newTestService(t, hs, testStore(t, StoreOptions{}), WithPolicy(NewHostedSet(w.ns)),
		WithHelloTimeout(100*time.Millisecond), WithIdleTimeout(30*time.Second))
	t.Cleanup(func() { server.Close() })
	h := testHost(t)
	connect(t, h, hs)
	sts := holdStreams(t, h, hs.ID(), 1)
	if len(sts) != 1 {
		t.Fatal("could not open a stream")
	}
	_ = sts[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	fr := frameReader{r: bufio.NewReader(sts[0])}
	typ, p, err := fr.next()
	if err != nil || typ != frameError {
		t.Fatalf("after the hello timeout: frame %d, %v; want an error frame", typ, err)
	}
	var pe *PeerError
	if !errors.As(decodePeerError(p), &pe) || pe.Code != CodeProtocol || !strings.Contains(pe.Message, "no hello within") {
		t.Fatalf("error frame %+v, want a protocol error saying no hello came", pe)
	}
}

// TestSyncErrorsNameTheVault: whatever ends a session — the peer resets
// the stream after the hello, or answers with an error of its own that
// does not name the vault — the error Sync returns names the vault.
func TestSyncErrorsNameTheVault(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	w := newWriter(t, newNamespaceKey(rng), rng)
	for _, tc := range []struct {
		name  string
		serve func(st network.Stream)
	}{
		{"reset after the hello", func(st network.Stream) { st.Reset() }},
		{"reset at once", func(st network.Stream) { st.Reset() }},
		{"error frame without the vault", func(st network.Stream) {
			fw := frameWriter{w: bufio.NewWriter(st)}
			_ = fw.write(frameError, appendString([]byte{CodeInternal}, "internal error on the receiving side"))
			_ = fw.flush()
			_ = st.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := testHost(t)
			hs.SetStreamHandler(ProtocolID, func(st network.Stream) {
				if tc.name != "reset at once" {
					fr := frameReader{r: bufio.NewReader(st)}
					_, _, _ = fr.next()
				}
				tc.serve(st)
			})
			h := testHost(t)
			svc := newTestService(t, h, testStore(t, StoreOptions{}), WithPolicy(NewHostedSet(w.ns)))
			t.Cleanup(func() { svc.Close() })
			connect(t, h, hs)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := svc.Sync(ctx, hs.ID(), w.ns, SyncOptions{})
			if err == nil || !strings.Contains(err.Error(), "vault "+w.ns.Short()) {
				t.Fatalf("Sync: %v; want an error naming vault %s", err, w.ns.Short())
			}
			t.Logf("Sync: %v", err)
		})
	}
}
