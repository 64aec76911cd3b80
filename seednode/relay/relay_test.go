package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/internal/p2ptest"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
)

const (
	echoProto = "/seedfleet/test-echo/1.0.0"
	bulkProto = "/seedfleet/test-bulk/1.0.0"
)

// sendBulkThrough sends n random bytes from b to a over their (relayed)
// connection in writes of 256 KiB; a answers the SHA-256 of what it read.
func sendBulkThrough(ctx context.Context, t *testing.T, a, b host.Host, n int) {
	t.Helper()
	a.SetStreamHandler(bulkProto, func(s network.Stream) {
		defer s.Close()
		h := sha256.New()
		if _, err := io.Copy(h, s); err == nil {
			s.Write(h.Sum(nil))
		}
	})
	defer a.RemoveStreamHandler(bulkProto)
	s, err := b.NewStream(network.WithAllowLimitedConn(ctx, bulkProto), a.ID(), bulkProto)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data := make([]byte, n)
	_, _ = rand.Read(data)
	for off := 0; off < n; off += 256 << 10 {
		if _, err := s.Write(data[off:min(n, off+256<<10)]); err != nil {
			t.Fatalf("write at %d: %v", off, err)
		}
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(s)
	if want := sha256.Sum256(data); err != nil || !bytes.Equal(got, want[:]) {
		t.Fatalf("the other device read other bytes than were sent (%x, %v)", got, err)
	}
}

// TestDevicesReachEachOtherThroughTheSeed: two devices that cannot be
// dialled (no listen address) talk through a seed's relay; a third device,
// unknown to the seed, is refused and told why.
func TestDevicesReachEachOtherThroughTheSeed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seed := p2ptest.NewHost(t, true)
	a, b, stranger := p2ptest.NewHost(t, false), p2ptest.NewHost(t, false), p2ptest.NewHost(t, false)
	acl := NewACL(config.RelayAgents)
	acl.Allow(a.ID(), b.ID())
	svc, err := New(seed, acl, WithLimits(Limits{CircuitBytes: 1 << 20}), WithRegisterer(prometheus.NewRegistry()), WithAdvertisePrivateAddrs())
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	seedInfo := peer.AddrInfo{ID: seed.ID(), Addrs: seed.Addrs()}

	if _, err := Reserve(ctx, a, seedInfo); err != nil {
		t.Fatalf("allowed device: %v", err)
	}
	a.SetStreamHandler(echoProto, func(s network.Stream) {
		defer s.Close()
		buf := make([]byte, 5)
		if _, err := s.Read(buf); err == nil {
			s.Write(buf)
		}
	})
	circuit, err := CircuitAddr(seedInfo)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: []ma.Multiaddr{circuit}}); err != nil {
		t.Fatalf("connect through the relay: %v", err)
	}
	s, err := b.NewStream(network.WithAllowLimitedConn(ctx, echoProto), a.ID(), echoProto)
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("hello"))
	got := make([]byte, 5)
	if _, err := s.Read(got); err != nil || string(got) != "hello" {
		t.Fatalf("echo through the relay: %q %v", got, err)
	}
	s.Close()
	// Bulk data crosses intact: large writes leave the devices' end-to-end
	// TLS in batches of records that span the hop's yamux frames.
	sendBulkThrough(ctx, t, a, b, 512<<10)
	for _, c := range b.Network().ConnsToPeer(a.ID()) {
		if !c.Stat().Limited {
			t.Fatalf("connection to the device is not relayed: %s", c.RemoteMultiaddr())
		}
	}

	_, err = Reserve(ctx, stranger, seedInfo)
	if err == nil || !strings.Contains(err.Error(), "relays only for devices of the agents it serves") {
		t.Fatalf("unknown device: want a refusal with the reason, got %v", err)
	}
}

func TestPublicModeAndLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seed := p2ptest.NewHost(t, true)
	svc, err := New(seed, NewACL(config.RelayPublic), WithLimits(Limits{MaxReservations: 2}), WithAdvertisePrivateAddrs())
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	seedInfo := peer.AddrInfo{ID: seed.ID(), Addrs: seed.Addrs()}
	for i := range 2 {
		if _, err := Reserve(ctx, p2ptest.NewHost(t, false), seedInfo); err != nil {
			t.Fatalf("reservation %d: %v", i, err)
		}
	}
	_, err = Reserve(ctx, p2ptest.NewHost(t, false), seedInfo)
	if err == nil || !strings.Contains(err.Error(), "2 reservations in all") {
		t.Fatalf("third reservation over the limit of 2: want a refusal naming the limit, got %v", err)
	}
}

// TestCircuitAddrs: one circuit address through each dialable address of
// the relay; none dialable is an error that says so.
func TestCircuitAddrs(t *testing.T) {
	id, err := peer.Decode("12D3KooWC7xY5KTZd3ExxLugeo3VzaihJdEYXdPoeq1rgQrThwby")
	if err != nil {
		t.Fatal(err)
	}
	info := peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{
		ma.StringCast("/ip4/0.0.0.0/tcp/4001"),
		ma.StringCast("/ip4/127.0.0.1/tcp/4001"),
		ma.StringCast("/ip6/::1/udp/4001/quic-v1"),
		ma.StringCast("/ip4/127.0.0.1/tcp/4002/p2p/" + id.String() + "/p2p-circuit"),
	}}
	got, err := CircuitAddrs(info)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/ip4/127.0.0.1/tcp/4001/p2p/" + id.String() + "/p2p-circuit",
		"/ip6/::1/udp/4001/quic-v1/p2p/" + id.String() + "/p2p-circuit",
	}
	if len(got) != len(want) || got[0].String() != want[0] || got[1].String() != want[1] {
		t.Fatalf("circuit addresses %v, want %v", got, want)
	}
	if first, err := CircuitAddr(info); err != nil || first.String() != want[0] {
		t.Fatalf("CircuitAddr = %v, %v; want %s", first, err, want[0])
	}
	info.Addrs = info.Addrs[:1]
	if _, err := CircuitAddrs(info); err == nil || !strings.Contains(err.Error(), "no address a peer could dial") {
		t.Fatalf("a relay with only 0.0.0.0: error %v", err)
	}
	if _, err := CircuitAddrs(peer.AddrInfo{Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/4001")}}); err == nil || !strings.Contains(err.Error(), "relay peer ID") {
		t.Fatalf("a relay without a peer ID: error %v", err)
	}
}

// TestReservationAddresses: as in go-libp2p, a reservation carries the
// seed's public addresses and the ones it announces, and its loopback and
// private ones only with WithAdvertisePrivateAddrs.
func TestReservationAddresses(t *testing.T) {
	private := ma.StringCast("/ip4/10.1.2.3/tcp/7400")
	for _, tc := range []struct {
		name     string
		announce []string // the seed host's announced addresses (default: its listen address)
		opts     []Option
		want     func(t *testing.T, seed host.Host, got []ma.Multiaddr)
	}{
		{"default", nil, nil, func(t *testing.T, _ host.Host, got []ma.Multiaddr) {
			for _, a := range got {
				if manet.IsIPLoopback(a) || manet.IsPrivateAddr(a) {
					t.Errorf("reservation carries %s", a)
				}
			}
		}},
		{"advertisePrivateAddrs", nil, []Option{WithAdvertisePrivateAddrs()}, func(t *testing.T, seed host.Host, got []ma.Multiaddr) {
			if !slices.ContainsFunc(got, manet.IsIPLoopback) {
				t.Errorf("reservation carries %v, want the seed's loopback address among them", got)
			}
		}},
		{"announced", []string{private.String(), "/ip4/127.0.0.1/tcp/7400"}, []Option{WithAnnouncedAddrs(private)}, func(t *testing.T, seed host.Host, got []ma.Multiaddr) {
			want := private.Encapsulate(ma.StringCast("/p2p/" + seed.ID().String()))
			if len(got) != 1 || !got[0].Equal(want) {
				t.Errorf("reservation carries %v, want only the announced private address %s (not the loopback one, announced but not named)", got, want)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			key, err := identity.Generate()
			if err != nil {
				t.Fatal(err)
			}
			seed, err := p2p.NewHost(p2p.HostOptions{Key: key, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Announce: tc.announce})
			if err != nil {
				t.Fatal(err)
			}
			defer seed.Close()
			svc, err := New(seed, NewACL(config.RelayPublic), tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			rsvp, err := Reserve(ctx, p2ptest.NewHost(t, false), peer.AddrInfo{ID: seed.ID(), Addrs: seed.Network().ListenAddresses()})
			if err != nil {
				t.Fatal(err)
			}
			tc.want(t, seed, rsvp.Addrs)
		})
	}
}

// TestNewRefuses: a missing ACL, a mode that runs no relay and invalid
// options are errors that say what is wrong; Close is idempotent.
func TestNewRefuses(t *testing.T) {
	seed := p2ptest.NewHost(t, true)
	for _, tc := range []struct {
		name string
		acl  *ACL
		opts []Option
		want string
	}{
		{"nil ACL", nil, nil, "nil ACL"},
		{"mode off", NewACL(config.RelayOff), nil, "runs no relay service"},
		{"unknown mode", NewACL("everyone"), nil, "runs no relay service"},
		{"negative limit", NewACL(config.RelayPublic), []Option{WithLimits(Limits{MaxCircuits: -1})}, "WithLimits: MaxCircuits is negative"},
		{"nil registerer", NewACL(config.RelayPublic), []Option{WithRegisterer(nil)}, "nil registerer"},
		{"nil announced address", NewACL(config.RelayPublic), []Option{WithAnnouncedAddrs(nil)}, "address 0 is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, err := New(seed, tc.acl, tc.opts...)
			if err == nil {
				svc.Close()
				t.Fatalf("New accepted it")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
	svc, err := New(seed, NewACL(config.RelayAgents))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := svc.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
