package node

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"

	"github.com/seedfleet/seedfleet/seednode/blobs"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/hosting"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/relay"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// FromConfig turns a validated configuration file into a node Config.
func FromConfig(c config.Config) (Config, error) {
	hosted, err := c.NamespaceIDs()
	if err != nil {
		return Config{}, err
	}
	out := Config{
		DataDir:           c.DataDir,
		IdentityFile:      c.IdentityFile,
		NewIdentity:       c.NewIdentity,
		Listen:            c.Listen.All(),
		Announce:          c.Announce,
		HostedVaults:      hosted,
		VaultsFile:        c.HostedVaultsFile,
		ReplicateInterval: c.ReplicateInterval.Duration,
		Limits:            c.Limits.Vault(),
		IdleTimeout:       c.IdleTimeout.Duration,
		GCInterval:        c.GCInterval.Duration,
		ScrubInterval:     c.ScrubInterval.Duration,
		RebuildStore:      c.RebuildStore,
		AdminListen:       c.Admin.Listen,
		DHT: DHTConfig{
			Mode:              c.DHT.Mode,
			ProtocolPrefix:    c.DHT.ProtocolPrefix,
			ReprovideInterval: c.DHT.ReprovideInterval.Duration,
		},
		Relay: RelayConfig{
			Mode: c.Relay.Mode,
			Limits: relay.Limits{
				MaxReservations:       c.Relay.Limits.MaxReservations,
				MaxReservationsPerIP:  c.Relay.Limits.MaxReservationsPerIP,
				MaxReservationsPerASN: c.Relay.Limits.MaxReservationsPerASN,
				MaxCircuits:           c.Relay.Limits.MaxCircuits,
				ReservationTTL:        c.Relay.Limits.ReservationTTL.Duration,
				CircuitDuration:       c.Relay.Limits.CircuitDuration.Duration,
				CircuitBytes:          int64(min(c.Relay.Limits.CircuitBytes, 1<<62)),
			},
			AdvertisePrivateAddrs: c.Relay.AdvertisePrivateAddrs,
		},
	}
	out.Rendezvous = RendezvousConfig{Disabled: !c.Rendezvous.Enabled, TTL: c.Rendezvous.RecordTTL.Duration,
		MaxRecordsPerAgent: c.Rendezvous.MaxRecordsPerAgent}
	if out.AdminListen == "" {
		out.AdminListen = "off"
	}
	if c.Admin.TokenFile != "" {
		b, err := os.ReadFile(c.Admin.TokenFile)
		if err != nil {
			return out, fmt.Errorf("admin.tokenFile: %w", err)
		}
		if out.AdminToken = strings.TrimSpace(string(b)); out.AdminToken == "" {
			return out, fmt.Errorf("admin.tokenFile: %s is empty", c.Admin.TokenFile)
		}
	}
	for i, s := range c.DHT.BootstrapPeers {
		info, err := p2p.ParsePeerAddr(s)
		if err != nil {
			return out, fmt.Errorf("dht.bootstrapPeers[%d]: %w", i, err)
		}
		out.DHT.BootstrapPeers = append(out.DHT.BootstrapPeers, info)
	}
	for i, did := range c.Relay.AllowedKeys {
		pub, err := identity.ParseDIDKey(did)
		if err != nil {
			return out, fmt.Errorf("relay.allowedKeys[%d]: %w", i, err)
		}
		out.Relay.AllowedKeys = append(out.Relay.AllowedKeys, ed25519.PublicKey(pub))
	}
	if out.ResourceManager, err = SeedResourceManager(c.Resources); err != nil {
		return out, err
	}
	if out.Fleet, out.FleetKey, err = fleetFromConfig(c.Fleet); err != nil {
		return out, err
	}
	return out, nil
}

// fleetFromConfig reads the fleet section: members and, for Invite, the
// fleet's key. nil when the seed is not part of a fleet.
func fleetFromConfig(f config.Fleet) (*FleetConfig, ed25519.PrivateKey, error) {
	if !f.Enabled() {
		return nil, nil, nil
	}
	m, err := f.Membership()
	if err != nil {
		return nil, nil, err
	}
	var key ed25519.PrivateKey
	var pub ed25519.PublicKey
	if f.KeyFile != "" {
		var err error
		if key, err = identity.Load(f.KeyFile); err != nil {
			return nil, nil, fmt.Errorf("fleet.keyFile: %w", err)
		}
		pub = key.Public().(ed25519.PublicKey)
	}
	return &FleetConfig{Members: m, Policy: f.Policy(pub)}, key, nil
}

// WatchFleetMembers makes a fleet pod re-read its membership whenever file
// (its configuration file) changes, through load, which reads the
// configuration again as it was read at start (the file, then the same
// flags). Only the membership (fleet.members, fleet.leaving and
// fleet.replicas) is applied while the seed runs, which is what the
// operator changes when the fleet scales; any other change is logged as
// needing a restart. Nothing without a fleet or a file.
func (c *Config) WatchFleetMembers(file string, started config.Config, load func() (config.Config, error)) {
	if c.Fleet == nil || file == "" {
		return
	}
	c.Fleet.File = file
	c.Fleet.Reload = func() (fleet.Members, error) {
		next, err := load()
		if err != nil {
			return fleet.Members{}, err
		}
		if !next.Fleet.Enabled() {
			return fleet.Members{}, errors.New("the configuration has no fleet section any more: restart the seed to leave the fleet")
		}
		if !sameButMembers(started, next) && c.Logger != nil {
			c.Logger.Info("the configuration file changed beyond the fleet's membership: only that is applied while the seed runs; the rest applies at its next start", "file", file)
		}
		return next.Fleet.Membership()
	}
}

// sameButMembers reports whether a and b differ at most in the fleet's
// membership: its members, how many of them are leaving, and R.
func sameButMembers(a, b config.Config) bool {
	a.Fleet.Members, a.Fleet.Leaving, a.Fleet.Replicas = nil, 0, 0
	b.Fleet.Members, b.Fleet.Leaving, b.Fleet.Replicas = nil, 0, 0
	return reflect.DeepEqual(a, b)
}

// SeedResourceManager returns go-libp2p's autoscaled limits with the
// per-service defaults, connection limits raised to what a seed needs (its
// devices, their relay reservations and the DHT: at least 4,096 inbound and
// 8,192 in all, within the file descriptors), a transient scope no single
// peer can fill (256 inbound streams per peer, 16,384 in transit), then the
// configured caps. What peers the seed does not know may hold on the
// vault-sync and blob services is bounded by the services themselves
// (internal/admission: per peer, per address range, in all, and a session's
// memory only after a hello names a hosted vault), since the resource
// manager's scopes know neither address ranges nor which peers are known
// devices. The services reserve an unknown peer's memory at low priority
// (granted while the scope is under 40% full) and a known peer's at high
// (under 80%), so what unknown peers leave is kept for known devices.
func SeedResourceManager(r config.Resources) (network.ResourceManager, error) {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	base := scaling.AutoScale()
	sys := rcmgr.ResourceLimits{ConnsInbound: rcmgr.LimitVal(4096), Conns: rcmgr.LimitVal(8192)}
	if r.MaxMemoryMiB > 0 {
		sys.Memory = rcmgr.LimitVal64(int64(r.MaxMemoryMiB) << 20)
	}
	if r.MaxFileDescriptors > 0 {
		sys.FD = rcmgr.LimitVal(r.MaxFileDescriptors)
	}
	if r.MaxConnsInbound > 0 {
		sys.ConnsInbound = rcmgr.LimitVal(r.MaxConnsInbound)
		sys.Conns = rcmgr.LimitVal(max(2*r.MaxConnsInbound, 8192))
	}
	if r.MaxStreamsInbound > 0 {
		sys.StreamsInbound = rcmgr.LimitVal(r.MaxStreamsInbound)
	}
	// New streams and connections sit in the shared transient scope until
	// their protocol or handshake is agreed; with go-libp2p's defaults (504
	// streams here) one peer opening idle streams fills it and every peer's
	// next stream is reset. Raise it well above what any one peer may hold.
	transient := rcmgr.ResourceLimits{StreamsInbound: rcmgr.LimitVal(16384), Streams: rcmgr.LimitVal(16384),
		ConnsInbound: rcmgr.LimitVal(1024), Conns: rcmgr.LimitVal(2048)}
	perPeer := rcmgr.ResourceLimits{StreamsInbound: rcmgr.LimitVal(256), Streams: rcmgr.LimitVal(512)}
	// A live vault session is a stream held as long as the device is
	// online: go-libp2p's default service and protocol limits (512 to
	// 1,024 inbound streams plus 256 to 512 per GiB) refused the ~1,266th
	// live device. And a flood of streams from peers the seed does not know
	// fills those limits for the moment each stream takes to be refused by
	// the service (internal/admission), so a known device's next blob or
	// hosting stream was reset too. Allow two per inbound connection the
	// system admits on each service that bounds unknown peers itself; the
	// services' memory limits stay go-libp2p's (a live session keeps 20 KiB
	// of its reservation, see vault.liveMemory).
	conns := int(sys.ConnsInbound)
	ours := rcmgr.ResourceLimits{StreamsInbound: rcmgr.LimitVal(2 * conns), Streams: rcmgr.LimitVal(4 * conns)}
	defaults := base.ToPartialLimitConfig().System
	if sys.StreamsInbound == 0 {
		sys.StreamsInbound = max(rcmgr.LimitVal(4*conns), defaults.StreamsInbound)
	}
	sys.Streams = max(2*sys.StreamsInbound, defaults.Streams)
	limits := rcmgr.PartialLimitConfig{System: sys, Transient: transient, PeerDefault: perPeer,
		Service:  map[string]rcmgr.ResourceLimits{vault.ServiceName: ours, blobs.ServiceName: ours, hosting.ServiceName: ours},
		Protocol: map[protocol.ID]rcmgr.ResourceLimits{vault.ProtocolID: ours, blobs.ProtocolID: ours, hosting.ProtocolID: ours}}.Build(base)
	var opts []rcmgr.Option
	if !r.Metrics {
		opts = append(opts, rcmgr.WithMetricsDisabled())
	}
	mgr, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits), opts...)
	if err != nil {
		return nil, fmt.Errorf("resources: %w", err)
	}
	return mgr, nil
}
