package p2p

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/libp2p/go-libp2p/p2p/transport/websocket"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/internal/version"
	"github.com/seedfleet/seedfleet/seednode/identity"
)

// HostOptions configure NewHost.
type HostOptions struct {
	// Key is the host's identity; its peer ID derives from it.
	Key ed25519.PrivateKey
	// Listen addresses; none makes a dial-only host (a device).
	Listen []string
	// Announce, if set, replaces the addresses the host advertises (a pod
	// behind a Service announces the Service's address).
	Announce []string
	// ResourceManager, if set, replaces go-libp2p's autoscaled default.
	ResourceManager network.ResourceManager
	// Registerer receives libp2p's metrics (nil: none are registered, rather
	// than landing on the global registry by surprise).
	Registerer prometheus.Registerer
	// NATService runs the AutoNAT service (seeds): peers learn whether they
	// are reachable by asking it to dial them back at their observed address.
	NATService bool
	// ConnLow and ConnHigh are the connection manager's watermarks (0: go-libp2p's
	// 160/192, right for a device). A seed holds a connection per relay
	// reservation and per syncing device, so it needs far more: closing a
	// connection ends its reservation.
	ConnLow, ConnHigh int
}

// NewHost returns a libp2p host with Seedfleet's transport stack.
func NewHost(o HostOptions) (host.Host, error) {
	priv, err := identity.Libp2pPrivKey(o.Key)
	if err != nil {
		return nil, err
	}
	// TCP with TLS (AES-GCM in hardware) and yamux is the fastest stack on
	// our machines; QUIC and WebSocket (browsers) are offered when a listen
	// address asks for them. The circuit relay transport lets a device be
	// reached through a seed's relay; nothing here dials out on its own.
	opts := []libp2p.Option{
		libp2p.Identity(priv),
		// Identify tells peers which build they talk to (go-libp2p's default
		// is the main module's path with an empty version).
		libp2p.UserAgent(version.UserAgent()),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Transport(websocket.New),
		// Both with batched writes: the records of one Write leave in one
		// write to the connection below (see batch.go).
		libp2p.Security(libp2ptls.ID, newTLS),
		libp2p.Security(noise.ID, newNoise),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		// Of a peer's addresses, TCP is dialed first (see DialRanker).
		libp2p.SwarmOpts(swarm.WithDialRanker(DialRanker)),
		// Explicit: libp2p.NoListenAddrs (devices) would otherwise turn it off.
		libp2p.EnableRelay(),
		// Devices connected through a relay try a direct connection (DCUtR)
		// and keep the relayed one when the NATs do not allow it.
		libp2p.EnableHolePunching(),
	}
	if o.NATService {
		opts = append(opts, libp2p.EnableNATService())
	}
	if o.ConnHigh > 0 {
		cm, err := connmgr.NewConnManager(o.ConnLow, o.ConnHigh)
		if err != nil {
			return nil, fmt.Errorf("connection manager: %w", err)
		}
		opts = append(opts, libp2p.ConnectionManager(cm))
	}
	if o.ResourceManager != nil {
		opts = append(opts, libp2p.ResourceManager(o.ResourceManager))
	}
	if o.Registerer != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(o.Registerer))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	if len(o.Listen) == 0 {
		opts = append(opts, libp2p.NoListenAddrs)
	} else {
		for _, a := range o.Listen {
			if _, err := ma.NewMultiaddr(a); err != nil {
				return nil, fmt.Errorf("listen address %q: %w", a, err)
			}
		}
		opts = append(opts, libp2p.ListenAddrStrings(o.Listen...))
	}
	if len(o.Announce) > 0 {
		announce := make([]ma.Multiaddr, 0, len(o.Announce))
		for _, a := range o.Announce {
			m, err := ma.NewMultiaddr(a)
			if err != nil {
				return nil, fmt.Errorf("announce address %q: %w", a, err)
			}
			announce = append(announce, m)
		}
		opts = append(opts, libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr { return announce }))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	return h, nil
}

// FullAddrs returns h's addresses with its /p2p/ peer ID: what a device
// pastes as a bootstrap peer. A host that listens nowhere has none (where
// peer.AddrInfoToP2pAddrs alone would give a bare /p2p/<ID>, no address).
func FullAddrs(h host.Host) []ma.Multiaddr {
	addrs := h.Addrs()
	if len(addrs) == 0 {
		return nil
	}
	// An error is only possible for an empty peer ID, which a host never has.
	full, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.ID(), Addrs: addrs})
	return full
}

// ParsePeerAddr parses a multiaddr that ends in /p2p/<peer ID>; a bare
// /p2p/<peer ID> (no address: the peer is found otherwise) is accepted. Its
// errors name s.
func ParsePeerAddr(s string) (peer.AddrInfo, error) {
	info, err := parsePeerAddr(s, false)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("peer address %q: %w", s, err)
	}
	return info, nil
}

// ParseDialAddr parses the full multiaddr of a peer to dial (another seed,
// a bootstrap peer): a transport address ending in /p2p/<peer ID>, e.g.
// /dns4/seed-1.seeds.default.svc/tcp/7400/p2p/12D3KooW…. Its errors say what
// is wrong without repeating s: callers name the field it came from.
func ParseDialAddr(s string) (peer.AddrInfo, error) { return parsePeerAddr(s, true) }

func parsePeerAddr(s string, needAddr bool) (peer.AddrInfo, error) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("not a multiaddr: %v", err)
	}
	rest, last := ma.SplitLast(m)
	switch {
	case last == nil || last.Code() != ma.P_P2P:
		return peer.AddrInfo{}, errors.New("must end in /p2p/<peer ID> (a seed prints its full addresses at start)")
	case needAddr && len(rest) == 0:
		return peer.AddrInfo{}, errors.New("needs an address before /p2p/ (e.g. /dns4/seed.example/tcp/7400/p2p/<peer ID>)")
	}
	info, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("bad peer ID: %v", err)
	}
	return *info, nil
}
