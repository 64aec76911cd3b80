package p2ptest

import (
	"net"
	"testing"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
)

// NewHost returns a host with a fresh key, closed when the test ends. With
// listen it listens on a free TCP port of 127.0.0.1; without, it can only
// dial (a device behind a NAT, or one reached through a relay).
func NewHost(t testing.TB, listen bool) host.Host {
	t.Helper()
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	o := p2p.HostOptions{Key: key}
	if listen {
		o.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	h, err := p2p.NewHost(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, for
// a process or configuration that must name its port before it listens.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
