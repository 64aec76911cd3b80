package p2p

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/seedfleet/seedfleet/seednode/identity"
)

func TestDialRankerOrder(t *testing.T) {
	const relayPeer = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
	for _, tc := range []struct {
		name string
		in   []string
		want []string // "addr delay"
	}{
		{
			name: "a local seed with every transport: TCP first, then QUIC, then WebSocket",
			in: []string{
				"/ip4/10.0.0.5/tcp/7402/ws",
				"/ip4/10.0.0.5/udp/7400/quic-v1",
				"/ip6/fd00::5/tcp/7400",
				"/ip4/10.0.0.5/tcp/7400",
			},
			want: []string{
				"/ip4/10.0.0.5/tcp/7400 0s",
				"/ip6/fd00::5/tcp/7400 30ms",
				"/ip4/10.0.0.5/udp/7400/quic-v1 60ms",
				"/ip4/10.0.0.5/tcp/7402/ws 120ms",
			},
		},
		{
			name: "public addresses use 250 ms steps; a relay comes 500 ms after them",
			in: []string{
				"/ip4/203.0.113.9/tcp/4001/p2p/" + relayPeer + "/p2p-circuit",
				"/ip4/198.51.100.7/udp/7400/quic-v1",
				"/ip4/198.51.100.7/tcp/7400",
			},
			want: []string{
				"/ip4/198.51.100.7/tcp/7400 0s",
				"/ip4/198.51.100.7/udp/7400/quic-v1 500ms",
				"/ip4/203.0.113.9/tcp/4001/p2p/" + relayPeer + "/p2p-circuit 500ms",
			},
		},
		{
			name: "QUIC only: dialed at once",
			in:   []string{"/ip4/198.51.100.7/udp/7400/quic-v1"},
			want: []string{"/ip4/198.51.100.7/udp/7400/quic-v1 0s"},
		},
		{
			name: "lowest port first among equals",
			in:   []string{"/ip4/127.0.0.1/tcp/9000", "/ip4/127.0.0.1/tcp/7400"},
			want: []string{"/ip4/127.0.0.1/tcp/7400 0s", "/ip4/127.0.0.1/tcp/9000 30ms"},
		},
	} {
		var in []ma.Multiaddr
		for _, s := range tc.in {
			in = append(in, ma.StringCast(s))
		}
		var got []string
		for _, d := range DialRanker(in) {
			got = append(got, fmt.Sprintf("%s %s", d.Addr, d.Delay))
		}
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s:\ngot\n  %s\nwant\n  %s", tc.name, strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
		}
	}
}

// A device connecting to a seed that offers QUIC, TCP and WebSocket ends up
// on TCP, the fastest of them (go-libp2p's default ranker would pick QUIC).
func TestDeviceConnectsOverTCP(t *testing.T) {
	seedKey, _ := identity.Generate()
	seed, err := NewHost(HostOptions{Key: seedKey, Listen: []string{
		"/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/tcp/0/ws",
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer seed.Close()
	if len(seed.Addrs()) != 3 {
		t.Fatalf("seed listens on %v, want QUIC, TCP and WebSocket", seed.Addrs())
	}
	// The default ranker really would choose QUIC here, so the test means
	// something.
	if first := swarm.DefaultDialRanker(seed.Addrs())[0].Addr; addrClass(first) != classQUIC {
		t.Fatalf("go-libp2p's default ranker dials %s first; this test assumes QUIC", first)
	}
	for i := range 3 {
		devKey, _ := identity.Generate()
		dev, err := NewHost(HostOptions{Key: devKey})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = dev.Connect(ctx, peer.AddrInfo{ID: seed.ID(), Addrs: seed.Addrs()})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		conns := dev.Network().ConnsToPeer(seed.ID())
		if len(conns) != 1 {
			t.Fatalf("device %d: %d connections to the seed", i, len(conns))
		}
		if a := conns[0].RemoteMultiaddr(); addrClass(a) != classTCP {
			t.Fatalf("device %d connected over %s, want plain TCP", i, a)
		}
		dev.Close()
	}
}
