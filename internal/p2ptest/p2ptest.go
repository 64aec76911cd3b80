package p2ptest

import (
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
