package p2p

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/seedfleet/seedfleet/internal/version"
	"github.com/seedfleet/seedfleet/seednode/identity"
)

func TestNewHostIdentityAndAddrs(t *testing.T) {
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHost(HostOptions{Key: key, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	want, _ := identity.PeerID(key.Public().(ed25519.PublicKey))
	if h.ID() != want {
		t.Fatalf("peer ID %s, want the key's %s", h.ID(), want)
	}
	addrs := FullAddrs(h)
	if len(addrs) == 0 {
		t.Fatal("no addresses")
	}
	for _, a := range addrs {
		info, err := ParsePeerAddr(a.String())
		if err != nil || info.ID != h.ID() || !strings.HasPrefix(a.String(), "/ip4/127.0.0.1/tcp/") {
			t.Fatalf("address %s: %v %v", a, info, err)
		}
	}
	// A device host listens nowhere.
	d, err := NewHost(HostOptions{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if len(d.Addrs()) != 0 {
		t.Fatalf("dial-only host listens on %v", d.Addrs())
	}
	if full := FullAddrs(d); len(full) != 0 {
		t.Fatalf("dial-only host has full addresses %v", full)
	}
}

func TestNewHostAnnounce(t *testing.T) {
	key, _ := identity.Generate()
	h, err := NewHost(HostOptions{Key: key, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Announce: []string{"/dns4/seed-0.example/tcp/7400"}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if got := h.Addrs(); len(got) != 1 || got[0].String() != "/dns4/seed-0.example/tcp/7400" {
		t.Fatalf("announced %v", got)
	}
}

func TestBadAddresses(t *testing.T) {
	key, _ := identity.Generate()
	for _, tc := range []struct {
		opts HostOptions
		want string
	}{
		{HostOptions{Key: key, Listen: []string{"tcp/7400"}}, `listen address "tcp/7400"`},
		{HostOptions{Key: key, Announce: []string{"nope"}}, `announce address "nope"`},
	} {
		if _, err := NewHost(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error containing %q", tc.opts.Listen, err, tc.want)
		}
	}
	for _, s := range []string{"/ip4/127.0.0.1/tcp/7400", "garbage", ""} {
		if _, err := ParsePeerAddr(s); err == nil {
			t.Errorf("ParsePeerAddr(%q) accepted", s)
		}
	}
}

// TestIdentifyReportsTheBuild: a peer learns through identify which build a
// seed or device runs ("seedfleet/<version>"), in both directions.
func TestIdentifyReportsTheBuild(t *testing.T) {
	seedKey, _ := identity.Generate()
	deviceKey, _ := identity.Generate()
	seed, err := NewHost(HostOptions{Key: seedKey, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer seed.Close()
	device, err := NewHost(HostOptions{Key: deviceKey})
	if err != nil {
		t.Fatal(err)
	}
	defer device.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := device.Connect(ctx, peer.AddrInfo{ID: seed.ID(), Addrs: seed.Addrs()}); err != nil {
		t.Fatal(err)
	}
	want := version.UserAgent()
	if !strings.HasPrefix(want, "seedfleet/") || want == "seedfleet/" {
		t.Fatalf("user agent %q, want seedfleet/<version>", want)
	}
	for _, side := range []struct {
		name     string
		observer host.Host
		observed peer.ID
	}{{"seed as seen by the device", device, seed.ID()}, {"device as seen by the seed", seed, device.ID()}} {
		var got any
		for ctx.Err() == nil {
			if got, err = side.observer.Peerstore().Get(side.observed, "AgentVersion"); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if got != want {
			t.Errorf("%s: agent version %v (%v), want %q", side.name, got, err, want)
		}
	}
}

// TestFullAddrs: every address of the host, each ending in its peer ID.
func TestFullAddrs(t *testing.T) {
	key, _ := identity.Generate()
	h, err := NewHost(HostOptions{Key: key, Listen: []string{"/ip4/127.0.0.1/tcp/0", "/ip6/::1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	full := FullAddrs(h)
	if len(full) != len(h.Addrs()) || len(full) < 2 {
		t.Fatalf("full addresses %v for %v", full, h.Addrs())
	}
	for i, a := range full {
		if want := h.Addrs()[i].String() + "/p2p/" + h.ID().String(); a.String() != want {
			t.Errorf("address %d: %s, want %s", i, a, want)
		}
	}
}

// TestStreamBurstPastTheAcceptBacklog: a go-libp2p peer with default
// settings (kubo) opening 120 streams at once has every one served. yamux
// peers assume each other's accept backlog is 256: an opener waits for
// acknowledgements only past that many, and the receiver resets what
// overflows its own backlog. A seed's backlog of 64 (2 KiB less per
// connection) reset a quarter of such a burst, so seeds keep 256.
func TestStreamBurstPastTheAcceptBacklog(t *testing.T) {
	const burst = 120
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key, _ := identity.Generate()
	seed, err := NewHost(HostOptions{Key: key, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer seed.Close()
	seed.SetStreamHandler("/echo-byte", func(s network.Stream) {
		defer s.Close()
		b := make([]byte, 1)
		if _, err := io.ReadFull(s, b); err == nil {
			_, _ = s.Write(b)
		}
	})
	// The peer runs go-libp2p's own yamux settings, as kubo does: it
	// assumes a backlog of 256.
	dkey, _ := identity.Generate()
	priv, _ := identity.Libp2pPrivKey(dkey)
	dev, err := libp2p.New(libp2p.Identity(priv), libp2p.NoListenAddrs, libp2p.DisableRelay(),
		libp2p.Transport(tcp.NewTCPTransport), libp2p.Muxer(yamux.ID, yamux.DefaultTransport))
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if err := dev.Connect(ctx, peer.AddrInfo{ID: seed.ID(), Addrs: seed.Addrs()}); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, burst)
	for i := range burst {
		go func() {
			s, err := dev.NewStream(ctx, seed.ID(), "/echo-byte")
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			if _, err := s.Write([]byte{byte(i)}); err != nil {
				errs <- err
				return
			}
			b := make([]byte, 1)
			if _, err := io.ReadFull(s, b); err != nil {
				errs <- fmt.Errorf("stream %d: %w", i, err)
				return
			}
			errs <- nil
		}()
	}
	failed := 0
	var first error
	for range burst {
		if err := <-errs; err != nil {
			if failed++; first == nil {
				first = err
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d streams opened at once failed; first: %v", failed, burst, first)
	}
	if n := len(dev.Network().ConnsToPeer(seed.ID())); n != 1 {
		t.Fatalf("%d connections to the seed, want the burst on one", n)
	}
}
