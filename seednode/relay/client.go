package relay

import (
	"context"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Reserve reserves a slot on a seed's relay so peers can reach this device
// through it. On refusal the error carries the seed's reason.
func Reserve(ctx context.Context, h host.Host, seed peer.AddrInfo) (*client.Reservation, error) {
	if err := h.Connect(ctx, seed); err != nil {
		return nil, fmt.Errorf("connect to relay %s: %w", seed.ID, err)
	}
	rsvp, err := client.Reserve(ctx, h, seed)
	if err != nil {
		if why := strings.TrimSpace(AskWhy(ctx, h, seed.ID)); why != "" {
			return nil, fmt.Errorf("relay %s refused the reservation: %s (%w)", seed.ID, why, err)
		}
		return nil, fmt.Errorf("relay %s refused the reservation: %w", seed.ID, err)
	}
	return rsvp, nil
}

// CircuitAddr is the address at which a device that reserved a slot on
// relay is reachable through the relay's first address: use it in the
// device's peer.AddrInfo (it does not end in the device's own /p2p/
// component). CircuitAddrs gives one through each of the relay's addresses.
func CircuitAddr(relay peer.AddrInfo) (ma.Multiaddr, error) {
	addrs, err := CircuitAddrs(relay)
	if err != nil {
		return nil, err
	}
	return addrs[0], nil
}

// CircuitAddrs are the addresses at which a device that reserved a slot on
// relay is reachable, one through each address of the relay (a seed may
// listen on TCP and QUIC, IPv4 and IPv6): a peer dials whichever it can
// reach. Addresses that cannot be dialled (unspecified, or already a
// circuit) are left out.
func CircuitAddrs(relay peer.AddrInfo) ([]ma.Multiaddr, error) {
	id, err := ma.NewComponent("p2p", relay.ID.String())
	if err != nil {
		return nil, fmt.Errorf("relay peer ID %q: %w", relay.ID, err)
	}
	circuit, err := ma.NewComponent("p2p-circuit", "")
	if err != nil {
		return nil, err
	}
	through := ma.Multiaddr{*id, *circuit}
	var out []ma.Multiaddr
	for _, a := range relay.Addrs {
		if manet.IsIPUnspecified(a) {
			continue
		}
		if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
			continue
		}
		out = append(out, ma.Join(a, through))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("relay %s has no address a peer could dial (%d given)", relay.ID, len(relay.Addrs))
	}
	return out, nil
}
