package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pebbleds "github.com/ipfs/go-ds-pebble"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/blobs"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/discovery"
	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/hosting"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/relay"
	"github.com/seedfleet/seedfleet/seednode/rendezvous"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// DefaultListen is where a standalone seed listens unless told otherwise:
// loopback only, so a seed started on a laptop exposes nothing. Pods and
// servers pass --listen /ip4/0.0.0.0/tcp/7400.
var DefaultListen = []string{"/ip4/127.0.0.1/tcp/7400"}

// Config is everything a seed node needs. The zero value plus DataDir runs.
type Config struct {
	// DataDir holds the Pebble stores (vaults/, blobs/) and, unless
	// IdentityFile is set, identity.key.
	DataDir string
	// IdentityFile, if set, is the seed's key (PEM, as identity.Save writes).
	// It must exist: the seed never creates it (the operator does, so a pod's
	// peer ID is known before it starts). Empty: DataDir/identity.key,
	// created on first start.
	IdentityFile string
	// NewIdentity lets this start give the data directory a peer ID other
	// than the one it records (PeerIDFile): create identity.key although the
	// directory holds stores, or take a key that is another peer's. Without
	// it, New refuses with ErrIdentityChanged.
	NewIdentity bool
	// Listen and Announce are libp2p multiaddrs (defaults: DefaultListen, the listen addresses).
	Listen   []string
	Announce []string
	// HostedVaults are served; sessions for any other vault are refused.
	HostedVaults []vault.NamespaceID
	// VaultsFile, if set, lists more hosted vaults and their replica peers
	// (see ParseVaultList). It is re-read when it changes, without a restart.
	VaultsFile string
	// ReplicateInterval is how often the seed compares, in one digest
	// exchange per replica peer, the vaults the two share and syncs those
	// that differ (default config.DefaultReplicateInterval). A vault that
	// changes is synced with its peers at once.
	ReplicateInterval time.Duration
	// Limits apply to every hosted vault, except where the vault's placement
	// options (Placement.Options) set its own quota.
	Limits vault.Limits
	// IdleTimeout cuts off a peer that stops answering mid-sync (default 30 s).
	IdleTimeout time.Duration
	// GCInterval is how often unreferenced blobs and unhosted vaults are
	// collected (default DefaultGCInterval).
	GCInterval time.Duration
	// ScrubInterval is how often every hosted vault is verified against its
	// stored sums in the background (default DefaultScrubInterval).
	ScrubInterval time.Duration
	// RebuildStore lets a seed whose vault store is not the one its data
	// directory held (files lost or replaced) move it aside and rebuild every
	// hosted vault from its replicas, instead of refusing to start.
	RebuildStore bool
	DHT          DHTConfig
	Relay        RelayConfig
	Rendezvous   RendezvousConfig
	// Fleet, if set, makes the seed a pod of a public fleet (self-service
	// hosting); nil: it hosts only what is placed.
	Fleet *FleetConfig
	// FleetKey is the fleet's private key (the fleet section's keyFile): the
	// admin API mints invites with it. nil: it mints none.
	FleetKey ed25519.PrivateKey
	// ResourceManager, if set, replaces go-libp2p's autoscaled limits.
	ResourceManager network.ResourceManager
	// Registry receives every metric of the node (a new one if nil).
	Registry *prometheus.Registry
	// AdminListen is the admin HTTP API's address (DefaultAdminListen if
	// empty; "off" disables it). Its writes (PUT) need AdminToken; empty:
	// the token in DataDir/admin.token, generated on first start.
	AdminListen string
	AdminToken  string
	Logger      *slog.Logger
}

// Node is a running seed.
type Node struct {
	cfg     Config
	log     *slog.Logger
	host    host.Host
	store   *vault.Store
	sync    *vault.Service
	hosted  *vault.HostedSet
	blobs   *blobs.Store
	blobSvc *blobs.Service
	fetcher *blobFetcher
	// self is the node's peer ID, known before the host starts.
	self       peer.ID
	replicas   *replicator
	blobCounts *blobCounter
	integrity  *integrity
	placeMu    sync.Mutex // serializes changes of hosted, replicas and options
	placed     Placement  // the administrator's placement (SetPlacement), under placeMu
	records    *hosting.Records
	fleetStats fleetFigures // the admin API's counts of the records
	admitter   *hosting.Admitter
	members    atomic.Pointer[fleet.Members] // the fleet's membership now (fleet pods)
	fleetMu    sync.Mutex                    // serializes membership changes
	// membersMoved: the membership changed since the last re-placement,
	// which then asks every replica peer for an exchange soon.
	membersMoved atomic.Bool
	hostingSvc   *hosting.Service
	selfSvc      *selfService  // the self-service vaults, indexed (fleet pods)
	replaceNow   chan struct{} // a record changed: re-place (replaceLoop)
	// options are the hosted vaults' placement options (nil until placed).
	options atomic.Pointer[map[vault.NamespaceID]admin.VaultOptions]

	reg               *prometheus.Registry
	metrics           *metrics
	history           syncHistory // what /status says of each vault's sessions
	dht               *dht.IpfsDHT
	dhtStore          *pebbleds.Datastore
	provider          *discovery.Provider
	bootstrapped      atomic.Bool
	relay             *relay.Service
	rendezvous        *rendezvous.Service
	acl               *relay.ACL
	configuredAllowed []peer.ID
	agentsMu          sync.RWMutex
	agentDocs         map[string]*identity.AgentDocument // root key -> newest document among hosted vaults
	started           time.Time
	admin             *admin.Server
	vaultsFileMod     time.Time // of the vaults file read at start

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	gcNow     chan struct{}
}

// DefaultGCInterval is how often a seed collects unreferenced blobs and
// unhosted vaults unless Config.GCInterval says otherwise.
const DefaultGCInterval = 5 * time.Minute

// New opens the data directory and starts listening. It starts the parts in
// order (identity, stores, host, protocol services, background loops); if one
// fails, Close undoes those that started, so no store keeps its file lock.
func New(cfg Config) (_ *Node, err error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("seed node: %w", err)
	}
	n := &Node{cfg: cfg, log: cfg.Logger, hosted: vault.NewHostedSet(cfg.HostedVaults...), gcNow: make(chan struct{}, 1), replaceNow: make(chan struct{}, 1),
		reg: cfg.Registry, started: time.Now()}
	// The configured vaults are placed by the administrator: a re-placement
	// (the vaults file, a public fleet's records) keeps them.
	n.placed = Placement{Vaults: slices.Clone(cfg.HostedVaults)}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	key, err := n.loadIdentity()
	if err != nil {
		return nil, fmt.Errorf("seed node: %w", err)
	}
	if n.self, err = identity.PeerID(key.Public().(ed25519.PublicKey)); err != nil {
		return nil, fmt.Errorf("seed node: %w", err)
	}
	verifiedAtStart, err := n.openStores()
	if err != nil {
		return nil, fmt.Errorf("seed node: %w", err)
	}
	if err := n.startHost(key); err != nil {
		return nil, fmt.Errorf("seed node: %w", err)
	}
	if err := n.startServices(); err != nil {
		return nil, fmt.Errorf("seed node: %w", err)
	}
	if err := n.startLoops(verifiedAtStart); err != nil {
		return nil, fmt.Errorf("seed node: %w", err)
	}
	return n, nil
}

// setDefaults checks what New cannot do without and fills in the rest.
func (c *Config) setDefaults() error {
	if c.DataDir == "" {
		return errors.New("data directory is required (--data DIR)")
	}
	if len(c.Listen) == 0 {
		c.Listen = DefaultListen
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.ReplicateInterval <= 0 {
		c.ReplicateInterval = config.DefaultReplicateInterval
	}
	if c.GCInterval <= 0 {
		c.GCInterval = DefaultGCInterval
	}
	if err := c.DHT.check(); err != nil {
		return err
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	return nil
}

// openStores reads the vaults file, opens the vault store (verifying it
// now if that is cheap, see integrity.start) and the blob store.
func (n *Node) openStores() (verifiedAtStart bool, err error) {
	n.replicas = newReplicator(n, n.cfg.ReplicateInterval)
	n.blobCounts = newBlobCounter(n)
	if n.cfg.VaultsFile != "" {
		if n.vaultsFileMod, err = modTime(n.cfg.VaultsFile); err != nil {
			return false, fmt.Errorf("hosted vaults file: %w", err)
		}
		if err := n.reloadVaultsFile(true); err != nil {
			return false, err
		}
	}
	n.integrity = newIntegrity(n, n.cfg.ScrubInterval)
	n.store, err = vault.Open(filepath.Join(n.cfg.DataDir, "vaults"), vault.StoreOptions{LimitsFor: n.limitsFor,
		Rebuild: n.cfg.RebuildStore, OnCorruption: n.integrity.requestPass, Logger: n.log, OnChange: n.replicas.changed})
	if err != nil {
		return false, err
	}
	if verifiedAtStart, err = n.integrity.start(context.Background()); err != nil {
		return false, fmt.Errorf("vault store: %w", err)
	}
	if n.blobs, err = blobs.Open(filepath.Join(n.cfg.DataDir, "blobs")); err != nil {
		return false, err
	}
	return verifiedAtStart, nil
}

// startHost starts the libp2p host with the seed's resource limits.
func (n *Node) startHost(key ed25519.PrivateKey) error {
	rm := n.cfg.ResourceManager
	if rm == nil {
		var err error
		if rm, err = SeedResourceManager(config.Resources{}); err != nil {
			return err
		}
	}
	// Watermarks well above the relay's reservations: trimming a connection
	// would end a device's reservation.
	connHigh := max(4096, 2*n.cfg.Relay.Limits.MaxReservations)
	h, err := p2p.NewHost(p2p.HostOptions{Key: key, Listen: n.cfg.Listen, Announce: n.cfg.Announce,
		ResourceManager: rm, Registerer: n.reg, NATService: true,
		ConnLow: connHigh * 3 / 4, ConnHigh: connHigh})
	if err != nil {
		return err
	}
	n.host = h
	return nil
}

// startServices registers the node's metrics and starts the protocol
// services: vault sync and blobs, then the relay, the DHT, the agent index
// (which the relay's allow-list and rendezvous need before the first device
// asks), rendezvous and the admin API.
func (n *Node) startServices() (err error) {
	if n.metrics, err = newMetrics(n, n.reg); err != nil {
		return err
	}
	if err := n.integrity.register(n.reg); err != nil {
		return err
	}
	if err := n.replicas.metrics.register(n.reg); err != nil {
		return err
	}
	n.fetcher = newBlobFetcher(n)
	opts := []vault.Option{vault.WithPolicy(syncPolicy{n}), vault.WithLogger(n.log), vault.WithStoredHook(n.stored),
		vault.WithSessionEndHook(n.sessionEnded), vault.WithLackedBlobs(n.blobCounts.lacking), vault.WithRegisterer(n.reg)}
	if n.cfg.IdleTimeout > 0 {
		opts = append(opts, vault.WithIdleTimeout(n.cfg.IdleTimeout))
	}
	if n.sync, err = vault.NewService(n.host, n.store, opts...); err != nil {
		return err
	}
	n.replicas.serve()
	if n.blobSvc, err = blobs.NewService(n.host, n.blobs, blobs.WithLogger(n.log), blobs.WithAdmission(n.sync.Admission()),
		blobs.WithRegisterer(n.reg)); err != nil {
		return err
	}
	if err := n.startRelay(); err != nil {
		return err
	}
	if err := n.startDiscovery(); err != nil {
		return err
	}
	if err := n.refreshAllowed(); err != nil {
		return fmt.Errorf("agent documents: %w", err)
	}
	if err := n.startRendezvous(); err != nil {
		return err
	}
	if err := n.startFleet(); err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	return n.startAdmin()
}

// startLoops starts the background work: blob fetches, integrity passes,
// garbage collection, replication, blob counts and scrubbing, and the
// vaults file watch.
func (n *Node) startLoops(verifiedAtStart bool) error {
	if err := n.startBlobScrub(); err != nil {
		return err
	}
	for range blobFetchWorkers {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); n.fetcher.run(n.ctx) }()
	}
	n.wg.Add(4)
	go n.integrity.run(n.ctx, verifiedAtStart)
	go n.gcLoop(n.ctx, n.cfg.GCInterval)
	go n.replicas.run(n.ctx)
	go n.blobCounts.run(n.ctx)
	if n.cfg.VaultsFile != "" {
		n.wg.Add(1)
		go n.watchFile(n.cfg.VaultsFile, "hosted vaults", n.vaultsFileMod, func() error { return n.reloadVaultsFile(false) })
	}
	return nil
}

// Addrs are the node's full multiaddrs (with /p2p/).
func (n *Node) Addrs() []ma.Multiaddr { return p2p.FullAddrs(n.host) }

// Host, Store and Hosted expose the parts (tests, the admin API later).
func (n *Node) Host() host.Host           { return n.host }
func (n *Node) Store() *vault.Store       { return n.store }
func (n *Node) Hosted() *vault.HostedSet  { return n.hosted }
func (n *Node) VaultSync() *vault.Service { return n.sync }
func (n *Node) Blobs() *blobs.Store       { return n.blobs }

// Run serves until ctx ends, then closes the node.
func (n *Node) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
	case <-n.ctx.Done():
	}
	return n.Close()
}

// Close ends sessions, closes the host and flushes the store. Idempotent.
// It closes only the parts that started, so New uses it to undo a start
// that failed half-way.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.cancel()
		var errs []error
		add := func(c interface{ Close() error }, started bool) {
			if started {
				errs = append(errs, c.Close())
			}
		}
		add(n.admin, n.admin != nil) // its Serve goroutine is in wg
		n.wg.Wait()
		add(n.sync, n.sync != nil)
		add(n.blobSvc, n.blobSvc != nil)
		add(n.relay, n.relay != nil)
		add(n.rendezvous, n.rendezvous != nil)
		add(n.hostingSvc, n.hostingSvc != nil)
		// The DHT before its datastore: Pebble panics when used after Close.
		add(n.dht, n.dht != nil)
		add(n.dhtStore, n.dhtStore != nil)
		add(n.host, n.host != nil)
		add(n.store, n.store != nil)
		add(n.records, n.records != nil)
		add(n.blobs, n.blobs != nil)
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// Ready reports whether the node can serve: store open, host listening,
// DHT bootstrapped (or configured without peers).
func (n *Node) Ready() error {
	if n.ctx.Err() != nil {
		return errors.New("shutting down")
	}
	if len(n.host.Addrs()) == 0 {
		return errors.New("not listening on any address")
	}
	if _, err := n.store.Stats(vault.NamespaceID{}); err != nil {
		return fmt.Errorf("vault store: %w", err)
	}
	if n.dht != nil && !n.bootstrapped.Load() {
		return errors.New("DHT not bootstrapped yet (no bootstrap peer answered)")
	}
	return nil
}
