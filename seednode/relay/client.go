package relay

import (
	"context"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"
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
// relay is reachable: use it in the device's peer.AddrInfo (it does not end
// in the device's own /p2p/ component).
func CircuitAddr(relay peer.AddrInfo) (ma.Multiaddr, error) {
	if len(relay.Addrs) == 0 {
		return nil, fmt.Errorf("relay %s has no address", relay.ID)
	}
	return ma.NewMultiaddr(fmt.Sprintf("%s/p2p/%s/p2p-circuit", relay.Addrs[0], relay.ID))
}
