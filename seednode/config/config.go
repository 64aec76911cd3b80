package config

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/hosting"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// Config is a seed node's configuration. The json tags are the YAML keys.
// Start from Default (Load and Parse do): a zero Config is not valid.
//
// Lists are canonical when empty lists are nil: Parse and Load return nil for
// an empty list, and Marshal writes nil as [].
type Config struct {
	// DataDir holds the vault store, the blob store and, unless IdentityFile
	// is set, identity.key.
	DataDir string `json:"dataDir"`
	// IdentityFile, if set, is the seed's key (PEM, as identity.Save writes):
	// it must exist, and the seed never creates it (the operator does, so a
	// pod's peer ID is known before it starts). Empty: DataDir/identity.key,
	// created on first start.
	IdentityFile string `json:"identityFile"`
	// NewIdentity lets the seed start under a peer ID other than the one its
	// data directory records: create identity.key although the directory
	// holds stores, or take a key (identityFile) that is another peer's.
	// Without it such a start is refused. Set it for one start only.
	NewIdentity bool `json:"newIdentity"`
	// RebuildStore lets the seed start when its vault store is not the one
	// its data directory held (files lost or replaced): the store is moved
	// aside and every vault it hosts is rebuilt from its other replicas.
	// Without it such a start is refused. Set it for one start only.
	RebuildStore bool `json:"rebuildStore"`
	// Listen lists the addresses the libp2p host listens on, per transport.
	Listen Listen `json:"listen"`
	// Announce, if not empty, is announced instead of the listen addresses
	// (a public IP or DNS name in front of a pod). No /p2p/ part.
	Announce []string `json:"announce"`
	// HostedVaults are the namespace IDs (52 base32 characters) of the vaults
	// this seed hosts; sessions for any other vault are refused.
	HostedVaults []string `json:"hostedVaults"`
	// HostedVaultsFile, if set, lists more hosted vaults, one per line: a
	// namespace ID, then optionally the full multiaddrs (ending in /p2p/) of
	// the other seeds hosting it, which this seed syncs it with; # comments.
	// The node re-reads it when it changes.
	HostedVaultsFile string `json:"hostedVaultsFile"`
	// ReplicateInterval is how often the seed compares, in one digest
	// exchange per replica peer (from HostedVaultsFile or the admin API),
	// the vaults the two share, and syncs those that differ; between 1s and
	// 1h. A vault that changes is synced with its peers at once.
	ReplicateInterval Duration `json:"replicateInterval"`
	// Limits apply to every hosted vault.
	Limits VaultLimits `json:"limits"`
	// Admin is the HTTP endpoint for health, readiness, metrics and status.
	Admin Admin `json:"admin"`
	// DHT configures the Kademlia DHT.
	DHT DHT `json:"dht"`
	// Relay configures the circuit relay v2 service.
	Relay Relay `json:"relay"`
	// Rendezvous configures the rendezvous service for agents' devices.
	Rendezvous Rendezvous `json:"rendezvous"`
	// Resources bound the libp2p resource manager.
	Resources Resources `json:"resources"`
	// IdleTimeout ends a sync whose peer sends nothing for this long.
	IdleTimeout Duration `json:"idleTimeout"`
	// GCInterval is how often unreferenced blobs and unhosted vaults are collected.
	GCInterval Duration `json:"gcInterval"`
	// ScrubInterval is how often every hosted vault is verified against its
	// stored sums in the background (it is also verified at start when the
	// store is small, and whenever the store finds damaged data).
	ScrubInterval Duration `json:"scrubInterval"`
	// LogLevel is Debug, Info, Warn or Error.
	LogLevel LogLevel `json:"logLevel"`
	// Fleet makes the seed one pod of a fleet that answers self-service
	// hosting requests. Empty name: the seed is not part of a fleet and
	// hosts only what its administrator places.
	Fleet Fleet `json:"fleet"`
}

// Fleet is a seed's place in a public fleet and the fleet's admission
// policy; the operator writes it for every pod of a SeedNode with
// spec.hosting.selfService.
type Fleet struct {
	// Name is the fleet's name, which requests and invites must carry
	// (the operator uses <namespace>/<SeedNode name>).
	Name string `json:"name"`
	// Self is this pod's ordinal: its index in Members.
	Self int `json:"self"`
	// Members are every pod's full multiaddr (ending in /p2p/<peer ID>), by
	// ordinal, this pod's own included. A seed started with a configuration
	// file applies new Members, Replicas and Leaving from it while it runs.
	Members []string `json:"members"`
	// Replicas is how many pods hold each agent's vaults; at most the
	// number of members.
	Replicas int `json:"replicas"`
	// Leaving is how many of the last Members are leaving the fleet as it
	// scales down: they hand their vaults to the others and host nothing
	// new. 0 (the default) while the fleet does not shrink.
	Leaving int `json:"leaving,omitempty"`
	// Admission is Closed (only placed vaults), Open or Invite.
	Admission fleet.Admission `json:"admission"`
	// KeyFile holds the fleet's Ed25519 key (PEM), shared by its pods: it
	// checks invite tickets and signs those the admin API mints. Required
	// for Invite.
	KeyFile string `json:"keyFile"`
	// Limits bound what self-service agents may hold.
	Limits FleetLimits `json:"limits"`
	// IdleExpiry releases a vault no device synced for this long, after a
	// notice period shown by host status. 0 (the default) never does.
	IdleExpiry Duration `json:"idleExpiry"`
}

// FleetLimits bound self-service hosting; see hosting.Policy.
type FleetLimits struct {
	MaxVaultsPerAgent         int     `json:"maxVaultsPerAgent"`
	DefaultQuotaBytes         uint64  `json:"defaultQuotaBytes"`
	DefaultQuotaEntries       uint64  `json:"defaultQuotaEntries"`
	MaxQuotaBytes             uint64  `json:"maxQuotaBytes"`
	MaxQuotaEntries           uint64  `json:"maxQuotaEntries"`
	MaxAgentBytes             uint64  `json:"maxAgentBytes"`
	MaxVaultsPerPod           int     `json:"maxVaultsPerPod"`
	AdmissionsPerSecond       float64 `json:"admissionsPerSecond"`
	RequestsPerRangePerMinute int     `json:"requestsPerRangePerMinute"`
}

// Enabled reports whether the seed is a pod of a fleet.
func (f Fleet) Enabled() bool { return f.Name != "" }

// Membership is the fleet's membership as the section lists it: the pods'
// full multiaddrs parsed, this pod's ordinal, how many are leaving, and R.
// The seed applies it at start and whenever it changes; the operator
// computes the version each pod will report from it.
func (f Fleet) Membership() (fleet.Members, error) {
	m := fleet.Members{Self: f.Self, Replicas: f.Replicas, Leaving: f.Leaving}
	for i, s := range f.Members {
		info, err := p2p.ParseDialAddr(s)
		if err != nil {
			return fleet.Members{}, fmt.Errorf("fleet.members[%d] %q: %w", i, s, err)
		}
		m.Pods = append(m.Pods, info)
	}
	return m, nil
}

// Policy is the fleet's admission policy for the hosting package; key is
// the fleet key's public half (nil without a key file).
func (f Fleet) Policy(key ed25519.PublicKey) hosting.Policy {
	l := f.Limits
	return hosting.Policy{
		Fleet: f.Name, Admission: f.Admission, FleetKey: key,
		MaxVaultsPerAgent: l.MaxVaultsPerAgent, DefaultQuotaBytes: l.DefaultQuotaBytes, DefaultQuotaEntries: l.DefaultQuotaEntries,
		MaxQuotaBytes: l.MaxQuotaBytes, MaxQuotaEntries: l.MaxQuotaEntries, MaxAgentBytes: l.MaxAgentBytes,
		MaxVaultsPerPod: l.MaxVaultsPerPod, AdmissionsPerSecond: l.AdmissionsPerSecond,
		RequestsPerRangePerMinute: l.RequestsPerRangePerMinute, IdleExpiry: f.IdleExpiry.Duration,
	}
}

// Listen holds libp2p listen multiaddrs per transport. Each list may be empty,
// but not all of them.
type Listen struct {
	// TCP addresses look like /ip4/HOST/tcp/PORT (or /ip6/...).
	TCP []string `json:"tcp"`
	// QUIC addresses look like /ip4/HOST/udp/PORT/quic-v1.
	QUIC []string `json:"quic"`
	// WebSocket addresses look like /ip4/HOST/tcp/PORT/ws.
	WebSocket []string `json:"webSocket"`
}

// All returns every listen address: TCP, then QUIC, then WebSocket.
func (l Listen) All() []string {
	out := make([]string, 0, len(l.TCP)+len(l.QUIC)+len(l.WebSocket))
	out = append(out, l.TCP...)
	out = append(out, l.QUIC...)
	return append(out, l.WebSocket...)
}

// VaultLimits bound what each hosted vault accepts.
type VaultLimits struct {
	// MaxEntries is the most (key, author) slots a vault may hold.
	MaxEntries uint64 `json:"maxEntries"`
	// MaxBytes is the most value bytes a vault's entries may reference.
	MaxBytes uint64 `json:"maxBytes"`
	// MaxClockSkew refuses entries timestamped further than this in the future.
	MaxClockSkew Duration `json:"maxClockSkew"`
}

// Vault returns the limits in the form the vault package takes.
func (l VaultLimits) Vault() vault.Limits {
	return vault.Limits{MaxEntries: l.MaxEntries, MaxBytes: l.MaxBytes, MaxClockSkew: l.MaxClockSkew.Duration}
}

// Admin configures the admin HTTP endpoint.
type Admin struct {
	// Listen is a host:port; empty turns the admin endpoint off.
	Listen string `json:"listen"`
	// TokenFile, if set, holds the bearer token that changes through the
	// admin endpoint (PUT requests) must carry; reads stay open. Empty: the
	// token in dataDir/admin.token, generated on first start.
	TokenFile string `json:"tokenFile"`
}

// DHT configures the Kademlia DHT.
type DHT struct {
	// Mode is Server, Client or Off.
	Mode DHTMode `json:"mode"`
	// ProtocolPrefix separates this DHT from others (protocols are
	// PREFIX/kad/1.0.0); seeds and devices must agree on it.
	ProtocolPrefix string `json:"protocolPrefix"`
	// BootstrapPeers are full multiaddrs ending in /p2p/<peer ID>.
	BootstrapPeers []string `json:"bootstrapPeers"`
	// ReprovideInterval is how often provider records for hosted vaults are
	// published again; between 1m and 48h (records expire after 48h).
	ReprovideInterval Duration `json:"reprovideInterval"`
}

// Relay configures the circuit relay v2 service.
type Relay struct {
	// Mode is Agents, Public or Off.
	Mode RelayMode `json:"mode"`
	// AllowedKeys are did:key DIDs that may reserve in Agents mode besides
	// the keys listed in hosted agents' documents.
	AllowedKeys []string `json:"allowedKeys"`
	// AdvertisePrivateAddrs lets reservations advertise every address of
	// the seed. Off (the default), a reservation advertises the seed's public
	// addresses and its Announce addresses only, as go-libp2p's relay does:
	// a device elsewhere cannot dial a loopback or private address, and
	// learning them tells it about the seed's network. Set it for loopback
	// tests and for private clusters whose devices reach the seed on a
	// private address.
	AdvertisePrivateAddrs bool `json:"advertisePrivateAddrs"`
	// Limits bound the relay's resources.
	Limits RelayLimits `json:"limits"`
}

// RelayLimits mirror go-libp2p's relay.Resources. There is no limit per
// peer: a circuit v2 relay holds one reservation per peer (a peer's new
// reservation replaces its old one), and go-libp2p no longer reads its
// MaxReservationsPerPeer.
type RelayLimits struct {
	// MaxReservations is the most active reservations in total.
	MaxReservations int `json:"maxReservations"`
	// MaxReservationsPerIP is the most reservations from one IP address.
	MaxReservationsPerIP int `json:"maxReservationsPerIP"`
	// MaxReservationsPerASN is the most reservations from one autonomous system.
	MaxReservationsPerASN int `json:"maxReservationsPerASN"`
	// MaxCircuits is the most relayed connections open at once for one
	// peer (go-libp2p's MaxCircuits is per peer).
	MaxCircuits int `json:"maxCircuits"`
	// ReservationTTL is how long a reservation lasts before it must be refreshed.
	ReservationTTL Duration `json:"reservationTTL"`
	// CircuitDuration is how long a relayed connection may stay open.
	CircuitDuration Duration `json:"circuitDuration"`
	// CircuitBytes is how much a relayed connection may carry in each direction.
	CircuitBytes uint64 `json:"circuitBytes"`
}

// Rendezvous configures the rendezvous service.
type Rendezvous struct {
	// Enabled runs the service.
	Enabled bool `json:"enabled"`
	// RecordTTL is how long a registration lives; between 1m and 72h.
	RecordTTL Duration `json:"recordTTL"`
	// MaxRecordsPerAgent bounds the registrations one agent DID may hold.
	MaxRecordsPerAgent int `json:"maxRecordsPerAgent"`
}

// Resources bound the libp2p resource manager; 0 keeps libp2p's default
// (scaled to the machine's memory and file descriptors).
type Resources struct {
	// MaxMemoryMiB is the memory libp2p may reserve, in MiB.
	MaxMemoryMiB int `json:"maxMemoryMiB"`
	// MaxFileDescriptors is the file descriptors libp2p may use.
	MaxFileDescriptors int `json:"maxFileDescriptors"`
	// MaxConnsInbound is the most inbound connections at once.
	MaxConnsInbound int `json:"maxConnsInbound"`
	// MaxStreamsInbound is the most inbound streams at once.
	MaxStreamsInbound int `json:"maxStreamsInbound"`
	// Metrics turns on go-libp2p's resource manager metrics
	// (libp2p_rcmgr_*). Off by default: they trace every stream and
	// reservation, about a sixth of a busy seed's CPU.
	Metrics bool `json:"metrics"`
}

// Defaults that other packages may want to show or compare with.
const (
	DefaultDataDir        = "seed-data"
	DefaultAdminListen    = "127.0.0.1:7401"
	DefaultProtocolPrefix = "/seedfleet"
	// DefaultReplicateInterval is how often a seed compares the vaults it
	// shares with each replica peer.
	DefaultReplicateInterval = 10 * time.Second
)

// Default returns the built-in configuration: loopback listeners only (a
// standalone seed exposes nothing unless told to; pods pass 0.0.0.0), DHT
// server, relay for hosted agents, rendezvous on, no hosted vaults.
// Every call returns fresh slices.
func Default() Config {
	return Config{
		DataDir: DefaultDataDir,
		Listen: Listen{
			TCP:       []string{"/ip4/127.0.0.1/tcp/7400"},
			QUIC:      []string{"/ip4/127.0.0.1/udp/7400/quic-v1"},
			WebSocket: []string{"/ip4/127.0.0.1/tcp/7402/ws"},
		},
		Limits: VaultLimits{
			MaxEntries:   vault.DefaultLimits.MaxEntries,
			MaxBytes:     vault.DefaultLimits.MaxBytes,
			MaxClockSkew: Duration{vault.DefaultLimits.MaxClockSkew},
		},
		Admin: Admin{Listen: DefaultAdminListen},
		DHT: DHT{
			Mode:              DHTServer,
			ProtocolPrefix:    DefaultProtocolPrefix,
			ReprovideInterval: Duration{time.Hour},
		},
		Relay: Relay{
			Mode: RelayAgents,
			Limits: RelayLimits{
				MaxReservations:       128,
				MaxReservationsPerIP:  8,
				MaxReservationsPerASN: 32,
				MaxCircuits:           16,
				ReservationTTL:        Duration{time.Hour},
				CircuitDuration:       Duration{2 * time.Minute},
				CircuitBytes:          1 << 20,
			},
		},
		Rendezvous: Rendezvous{
			Enabled:            true,
			RecordTTL:          Duration{2 * time.Hour},
			MaxRecordsPerAgent: 32,
		},
		ReplicateInterval: Duration{DefaultReplicateInterval},
		IdleTimeout:       Duration{30 * time.Second},
		GCInterval:        Duration{5 * time.Minute},
		ScrubInterval:     Duration{24 * time.Hour},
		LogLevel:          LogInfo,
		Fleet: Fleet{
			Replicas:  3,
			Admission: fleet.Closed,
			Limits: FleetLimits{
				MaxVaultsPerAgent:         hosting.DefaultMaxVaultsPerAgent,
				DefaultQuotaBytes:         hosting.DefaultQuotaBytes,
				DefaultQuotaEntries:       hosting.DefaultQuotaEntries,
				MaxQuotaBytes:             hosting.DefaultMaxQuotaBytes,
				MaxQuotaEntries:           hosting.DefaultMaxQuotaEntries,
				MaxAgentBytes:             hosting.DefaultMaxAgentBytes,
				MaxVaultsPerPod:           hosting.DefaultMaxVaultsPerPod,
				AdmissionsPerSecond:       hosting.DefaultAdmissionsPerSecond,
				RequestsPerRangePerMinute: hosting.DefaultRequestsPerRangePerMinute,
			},
		},
	}
}
