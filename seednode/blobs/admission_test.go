package blobs

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/internal/admission"
)

// TestUnknownPeersStreamsAreCapped: an unknown peer opening 10 blob streams
// that never send a request keeps at most 3 (its cap), each holding only a
// request's memory, not a transfer's; they are ended after the request
// timeout; a known peer fetches meanwhile; the refusals are counted.
func TestUnknownPeersStreamsAreCapped(t *testing.T) {
	lim, err := admission.New(admission.Limits{PerPeer: 3, PerRange: 10, Total: 10, MaxKnown: 10})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	p := newPeers(t, WithAdmission(lim), WithRegisterer(reg), WithRequestTimeout(time.Second))
	data := randBytes(7, 3*GroupSize+5)
	h, err := p.serverStore.AddBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	lim.MarkKnown(p.client.host.ID())

	flood := testHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := flood.Connect(ctx, peer.AddrInfo{ID: p.serverHost.ID(), Addrs: p.serverHost.Addrs()}); err != nil {
		t.Fatal(err)
	}
	var held []network.Stream
	for range 10 {
		st, err := flood.NewStream(ctx, p.serverHost.ID(), ProtocolID)
		if err != nil {
			continue
		}
		t.Cleanup(func() { st.Reset() })
		if _, err := st.Write([]byte{1}); err == nil {
			held = append(held, st)
		}
	}
	// Within the request timeout: the streams still open are at most 3.
	open := 0
	ended := make(chan bool, len(held))
	for _, st := range held {
		go func() {
			_ = st.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			var b [1]byte
			_, err := st.Read(b[:])
			var ne interface{ Timeout() bool }
			ended <- !(errors.As(err, &ne) && ne.Timeout())
		}()
	}
	for range held {
		if !<-ended {
			open++
		}
	}
	if open > 3 {
		t.Errorf("an unknown peer holds %d idle blob streams, want at most 3", open)
	}
	var mem int64
	_ = p.serverHost.Network().ResourceManager().ViewService(ServiceName, func(s network.ServiceScope) error {
		mem = s.Stat().Memory
		return nil
	})
	if mem >= 2*streamBuf {
		t.Errorf("the service reserved %d bytes for streams that sent no request (a transfer is %d)", mem, 2*streamBuf)
	}

	st, err := p.client.Fetch(ctx, p.serverHost.ID(), h, FetchOptions{})
	if err != nil || !st.Complete {
		t.Fatalf("the known peer's fetch during the flood: %+v %v", st, err)
	}

	// Past the request timeout the seed has ended every idle stream.
	for _, s := range held {
		_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
		var b [1]byte
		if _, err := s.Read(b[:]); err == nil {
			t.Error("an idle stream was answered")
		} else if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
			t.Error("an idle stream is still open 10 s after the 1 s request timeout")
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "seedfleet_stream_refusals_total" {
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == "reason" {
						got[lp.GetValue()] += m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	if got[admission.ReasonPeer] < 7 || got[admission.ReasonHello] < 1 {
		t.Errorf("refusals by reason %v, want 7 or more unknown_peer and the timed-out requests as hello", got)
	}
}
