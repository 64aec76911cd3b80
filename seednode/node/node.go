package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

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
	// ReplicateInterval is how often each hosted vault is synced with each
	// of its replica peers (default config.DefaultReplicateInterval).
	ReplicateInterval time.Duration
	// Limits apply to every hosted vault, except where the vault's placement
	// options (Placement.Options) set its own quota.
	Limits vault.Limits
	// IdleTimeout cuts off a peer that stops answering mid-sync (default 30 s).
	IdleTimeout time.Duration
	// GCInterval is how often unreferenced blobs and unhosted vaults are
	// collected (default 5 minutes).
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
	// options are the hosted vaults' placement options (nil until placed).
	options atomic.Pointer[map[vault.NamespaceID]admin.VaultOptions]

	reg               *prometheus.Registry
	metrics           *metrics
	dht               *dht.IpfsDHT
	dhtStore          *discovery.Datastore
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

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	fileMod   time.Time
	gcNow     chan struct{}
}

// New opens the data directory and starts listening.
func New(cfg Config) (_ *Node, err error) {
	if cfg.DataDir == "" {
		return nil, errors.New("seed node: data directory is required (--data DIR)")
	}
	if len(cfg.Listen) == 0 {
		cfg.Listen = DefaultListen
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("seed node: data directory: %w", err)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.ReplicateInterval <= 0 {
		cfg.ReplicateInterval = config.DefaultReplicateInterval
	}
	n := &Node{cfg: cfg, log: cfg.Logger, hosted: vault.NewHostedSet(cfg.HostedVaults...), gcNow: make(chan struct{}, 1),
		reg: cfg.Registry, started: time.Now()}
	key, err := n.loadIdentity()
	if err != nil {
		return nil, fmt.Errorf("seed node: %w", err)
	}
	if n.self, err = identity.PeerID(key.Public().(ed25519.PublicKey)); err != nil {
		return nil, fmt.Errorf("seed node: %w", err)
	}
	n.replicas = newReplicator(n, cfg.ReplicateInterval)
	n.blobCounts = newBlobCounter(n)
	if cfg.VaultsFile != "" {
		if err := n.reloadVaultsFile(true); err != nil {
			return nil, err
		}
	}
	n.integrity = newIntegrity(n, cfg.ScrubInterval)
	n.store, err = vault.Open(filepath.Join(cfg.DataDir, "vaults"), vault.StoreOptions{LimitsFor: n.limitsFor,
		Rebuild: cfg.RebuildStore, OnCorruption: n.integrity.requestPass, Logger: n.log})
	if err != nil {
		return nil, fmt.Errorf("seed node: %w", err)
	}
	defer func() {
		if err != nil {
			n.store.Close()
		}
	}()
	verifiedAtStart, err := n.integrity.start(context.Background())
	if err != nil {
		return nil, fmt.Errorf("seed node: vault store: %w", err)
	}
	if n.blobs, err = blobs.Open(filepath.Join(cfg.DataDir, "blobs")); err != nil {
		return nil, fmt.Errorf("seed node: %w", err)
	}
	defer func() {
		if err != nil {
			n.blobs.Close()
		}
	}()
	if cfg.ResourceManager == nil {
		if cfg.ResourceManager, err = SeedResourceManager(config.Resources{}); err != nil {
			return nil, fmt.Errorf("seed node: %w", err)
		}
	}
	// Watermarks well above the relay's reservations: trimming a connection
	// would end a device's reservation.
	connHigh := max(4096, 2*cfg.Relay.Limits.MaxReservations)
	n.host, err = p2p.NewHost(p2p.HostOptions{Key: key, Listen: cfg.Listen, Announce: cfg.Announce,
		ResourceManager: cfg.ResourceManager, Registerer: n.reg, NATService: true,
		ConnLow: connHigh * 3 / 4, ConnHigh: connHigh})
	if err != nil {
		return nil, fmt.Errorf("seed node: %w", err)
	}
	defer func() {
		if err != nil {
			n.host.Close()
		}
	}()
	n.metrics = newMetrics(n, n.reg)
	n.integrity.register(n.reg)
	n.fetcher = newBlobFetcher(n)
	opts := []vault.Option{vault.WithPolicy(syncPolicy{n}), vault.WithLogger(n.log), vault.WithStoredHook(n.stored), vault.WithSessionEndHook(n.sessionEnded), vault.WithLackedBlobs(n.blobCounts.lacking), vault.WithRegisterer(n.reg)}
	if cfg.IdleTimeout > 0 {
		opts = append(opts, vault.WithIdleTimeout(cfg.IdleTimeout))
	}
	n.sync = vault.NewService(n.host, n.store, opts...)
	n.blobSvc = blobs.NewService(n.host, n.blobs, blobs.WithLogger(n.log), blobs.WithAdmission(n.sync.Admission()), blobs.WithRegisterer(n.reg))
	n.ctx, n.cancel = context.WithCancel(context.Background())
	// From here a failed start closes whatever started (Close skips the
	// parts that did not): the DHT's datastore holds a file lock.
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if err = n.startRelay(); err != nil {
		return nil, fmt.Errorf("seed node: %w", err)
	}
	if err = n.startDiscovery(); err != nil {
		return nil, fmt.Errorf("seed node: %w", err)
	}
	// Agent documents and the relay allow-list from what is already hosted,
	// before the first device asks.
	if err = n.refreshAllowed(); err != nil {
		return nil, fmt.Errorf("seed node: agent documents: %w", err)
	}
	n.startRendezvous()
	if err = n.startAdmin(); err != nil {
		return nil, fmt.Errorf("seed node: %w", err)
	}
	for range blobFetchWorkers {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); n.fetcher.run(n.ctx) }()
	}
	if cfg.GCInterval <= 0 {
		cfg.GCInterval = 5 * time.Minute
	}
	n.wg.Add(4)
	go n.integrity.run(n.ctx, verifiedAtStart)
	go n.gcLoop(n.ctx, cfg.GCInterval)
	go n.replicas.run(n.ctx)
	go n.blobCounts.run(n.ctx)
	n.startBlobScrub()
	if cfg.VaultsFile != "" {
		n.wg.Add(1)
		go n.watchVaultsFile()
	}
	return n, nil
}

func (n *Node) startAdmin() error {
	addr := n.cfg.AdminListen
	if addr == "off" {
		return nil
	}
	if addr == "" {
		addr = DefaultAdminListen
	}
	token, err := n.adminToken()
	if err != nil {
		return err
	}
	srv, err := admin.New(addr, adminSource{n}, n.reg, admin.WithRuntimeMetrics(), admin.WithLogger(n.log), admin.WithToken(token))
	if err != nil {
		return fmt.Errorf("admin API on %s: %w", addr, err)
	}
	n.admin = srv
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := srv.Serve(); err != nil {
			n.log.Warn("admin API stopped", "err", err)
		}
	}()
	return nil
}

// AdminURL is the admin API's base URL ("" when disabled).
func (n *Node) AdminURL() string {
	if n.admin == nil {
		return ""
	}
	return n.admin.URL()
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
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.cancel()
		var errs []error
		if n.admin != nil {
			errs = append(errs, n.admin.Close()) // its Serve goroutine is in wg
		}
		n.wg.Wait()
		errs = append(errs, n.sync.Close(), n.blobSvc.Close())
		if n.relay != nil {
			errs = append(errs, n.relay.Close())
		}
		if n.rendezvous != nil {
			errs = append(errs, n.rendezvous.Close())
		}
		if n.dht != nil {
			errs = append(errs, n.dht.Close(), n.dhtStore.Close())
		}
		errs = append(errs, n.host.Close(), n.store.Close(), n.blobs.Close())
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

func (n *Node) watchVaultsFile() {
	defer n.wg.Done()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
			if err := n.reloadVaultsFile(false); err != nil {
				n.log.Warn("hosted vaults file not reloaded; keeping the previous list", "file", n.cfg.VaultsFile, "err", err)
			}
		}
	}
}

// reloadVaultsFile re-reads the hosted vaults and their replica peers when
// the file changed. The first load, in New, changes nothing else (no
// collection before the node has run).
func (n *Node) reloadVaultsFile(first bool) error {
	fi, err := os.Stat(n.cfg.VaultsFile)
	if err != nil {
		return fmt.Errorf("hosted vaults file: %w", err)
	}
	if !first && fi.ModTime().Equal(n.fileMod) {
		return nil
	}
	// Remember this version even if it is broken: one warning per change.
	n.fileMod = fi.ModTime()
	data, err := os.ReadFile(n.cfg.VaultsFile)
	if err != nil {
		return fmt.Errorf("hosted vaults file: %w", err)
	}
	p, err := ParseVaultList(data, n.self)
	if err != nil {
		return fmt.Errorf("hosted vaults file %s: %w", n.cfg.VaultsFile, err)
	}
	p.Vaults = append(p.Vaults, n.cfg.HostedVaults...)
	if first {
		n.place(p)
		return nil
	}
	n.SetPlacement(p)
	n.log.Info("hosted vaults reloaded", "count", len(n.hosted.List()), "withPeers", len(p.Peers))
	return nil
}
