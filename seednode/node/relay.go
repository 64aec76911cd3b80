package node

import (
	"crypto/ed25519"
	"fmt"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/relay"
)

// RelayConfig configures the circuit relay service.
type RelayConfig struct {
	// Mode is config.RelayAgents (the default), config.RelayPublic or
	// config.RelayOff.
	Mode   config.RelayMode
	Limits relay.Limits
	// AllowedKeys are device keys allowed in agents mode, besides hosted
	// vaults' authors.
	AllowedKeys []ed25519.PublicKey
	// AdvertisePrivateAddrs makes reservations carry the seed's loopback
	// and private addresses too; by default they carry its public and
	// announced ones (relay.WithAdvertisePrivateAddrs).
	AdvertisePrivateAddrs bool
}

// mode is the configured mode, config.RelayAgents when unset.
func (c RelayConfig) mode() config.RelayMode {
	if c.Mode == "" {
		return config.RelayAgents
	}
	return c.Mode
}

// startRelay starts the circuit relay (unless off); relay.New refuses a
// mode it does not know.
func (n *Node) startRelay() error {
	c := n.cfg.Relay
	if c.mode() == config.RelayOff {
		return nil
	}
	n.acl = relay.NewACL(c.mode())
	for _, k := range c.AllowedKeys {
		id, err := identity.PeerID(k)
		if err != nil {
			return fmt.Errorf("relay allowed key: %w", err)
		}
		n.configuredAllowed = append(n.configuredAllowed, id)
	}
	n.acl.Allow(n.configuredAllowed...)
	opts := []relay.Option{relay.WithLimits(c.Limits), relay.WithRegisterer(n.reg)}
	for _, a := range n.cfg.Announce {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return fmt.Errorf("announce address %q: %w", a, err)
		}
		opts = append(opts, relay.WithAnnouncedAddrs(m))
	}
	if c.AdvertisePrivateAddrs {
		opts = append(opts, relay.WithAdvertisePrivateAddrs())
	}
	svc, err := relay.New(n.host, n.acl, opts...)
	if err != nil {
		return err
	}
	n.relay = svc
	return nil
}
