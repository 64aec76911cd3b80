package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/seednode/discovery"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/relay"
	"github.com/seedfleet/seedfleet/seednode/rendezvous"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// DHTConfig configures the node's part in the DHT.
type DHTConfig struct {
	// Mode is "server" (default for seeds), "client" or "off".
	Mode              string
	ProtocolPrefix    string
	BootstrapPeers    []peer.AddrInfo
	ReprovideInterval time.Duration // default 1 h
}

// RelayConfig configures the circuit relay service.
type RelayConfig struct {
	// Mode is relay.ModeAgents (default), relay.ModePublic or relay.ModeOff.
	Mode        relay.Mode
	Limits      relay.Limits
	AllowedKeys []ed25519.PublicKey // device keys allowed in agents mode, besides hosted vaults' authors
}

// metrics are the node's own Prometheus metrics (libp2p, relay and DHT
// register theirs on the same registry).
type metrics struct {
	sessions      *prometheus.CounterVec
	syncItems     *prometheus.CounterVec
	syncBytes     *prometheus.CounterVec
	blobFetches   *prometheus.CounterVec
	blobBytes     prometheus.Counter
	lastSync      sync.Map // vault.NamespaceID -> time.Time
	syncPeers     sync.Map // vault.NamespaceID -> map[peer.ID]struct{} (bounded by hosting)
	vaultCollectr prometheus.Collector
}

func newMetrics(n *Node, reg prometheus.Registerer) *metrics {
	m := &metrics{
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seedfleet_vault_sync_sessions_total",
			Help: "Vault sync sessions, by result."}, []string{"result"}),
		syncItems: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seedfleet_vault_sync_entries_total",
			Help: "Entries moved by vault sync, by direction and outcome."}, []string{"direction"}),
		syncBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seedfleet_vault_sync_bytes_total",
			Help: "Bytes of vault sync sessions, by direction."}, []string{"direction"}),
		blobFetches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seedfleet_blob_fetches_total",
			Help: "Blob fetches for hosted vaults' entries, by result."}, []string{"result"}),
		blobBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "seedfleet_blob_fetched_bytes_total",
			Help: "Verified blob bytes fetched for hosted vaults."}),
	}
	m.vaultCollectr = &vaultCollector{n: n,
		entries: prometheus.NewDesc("seedfleet_vault_entries", "Entries of a hosted vault.", []string{"vault"}, nil),
		bytes:   prometheus.NewDesc("seedfleet_vault_bytes", "Value bytes a hosted vault's entries refer to.", []string{"vault"}, nil)}
	reg.MustRegister(m.sessions, m.syncItems, m.syncBytes, m.blobFetches, m.blobBytes, m.vaultCollectr)
	return m
}

// vaultCollector reads per-vault figures at scrape time, so nothing is
// kept per vault between scrapes.
type vaultCollector struct {
	n              *Node
	entries, bytes *prometheus.Desc
}

func (c *vaultCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.entries; ch <- c.bytes }

func (c *vaultCollector) Collect(ch chan<- prometheus.Metric) {
	for _, ns := range c.n.hosted.List() {
		st, err := c.n.store.Stats(ns)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(st.Entries), ns.String())
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(st.Bytes), ns.String())
	}
}

// sessionEnded feeds metrics and the relay ACL, then the blob repair scan.
func (n *Node) sessionEnded(p peer.ID, ns vault.NamespaceID, st vault.SyncStats, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	n.metrics.sessions.WithLabelValues(result).Inc()
	n.metrics.syncItems.WithLabelValues("received").Add(float64(st.ItemsReceived))
	n.metrics.syncItems.WithLabelValues("sent").Add(float64(st.ItemsSent))
	n.metrics.syncItems.WithLabelValues("refused").Add(float64(st.Refused))
	n.metrics.syncBytes.WithLabelValues("in").Add(float64(st.BytesReceived))
	n.metrics.syncBytes.WithLabelValues("out").Add(float64(st.BytesSent))
	if err == nil {
		n.metrics.lastSync.Store(ns, time.Now())
		set, _ := n.metrics.syncPeers.LoadOrStore(ns, &peerSet{set: map[peer.ID]struct{}{}})
		set.(*peerSet).add(p)
	}
	n.fetcher.sessionEnded(p, ns, st, err)
}

// stored feeds the relay ACL (authors of hosted vaults are the agents'
// devices) and the blob fetcher.
func (n *Node) stored(p peer.ID, ns vault.NamespaceID, items []vault.Item) {
	if n.acl != nil {
		seen := map[peer.ID]bool{}
		for _, it := range items {
			if id, err := identity.PeerID(it.Entry.Author.PublicKey()); err == nil && !seen[id] {
				seen[id] = true
				n.acl.Allow(id)
			}
		}
	}
	n.fetcher.stored(p, ns, items)
}

// startDiscovery starts the DHT and the provider loop (unless off).
func (n *Node) startDiscovery() error {
	c := n.cfg.DHT
	if c.Mode == "off" {
		return nil
	}
	store, err := discovery.OpenDatastore(filepath.Join(n.cfg.DataDir, "dht"))
	if err != nil {
		return err
	}
	d, err := discovery.NewDHT(n.host, discovery.DHTOptions{
		Server: c.Mode != "client", ProtocolPrefix: c.ProtocolPrefix, BootstrapPeers: c.BootstrapPeers,
		Datastore: store})
	if err != nil {
		store.Close()
		return err
	}
	n.dhtStore = store
	n.dht = d
	interval := c.ReprovideInterval
	if interval <= 0 {
		interval = time.Hour
	}
	n.provider = discovery.NewProvider(d, interval, n.reg)
	n.provider.Set(vaultKeys(n.hosted.List()))
	n.wg.Add(2)
	go func() { defer n.wg.Done(); n.provider.Run(n.ctx) }()
	go func() {
		defer n.wg.Done()
		n.bootstrapDHT()
	}()
	return nil
}

// bootstrapDHT connects to the configured peers, retrying until one answers.
func (n *Node) bootstrapDHT() {
	backoff := time.Second
	for {
		ok := len(n.cfg.DHT.BootstrapPeers) == 0
		for _, p := range n.cfg.DHT.BootstrapPeers {
			ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
			if err := n.host.Connect(ctx, p); err == nil {
				ok = true
			} else {
				n.log.Info("DHT bootstrap peer unreachable; retrying", "peer", p.ID, "err", err)
			}
			cancel()
		}
		if ok {
			_ = n.dht.Bootstrap(n.ctx)
			n.bootstrapped.Store(true)
			return
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
}

func vaultKeys(list []vault.NamespaceID) []cid.Cid {
	keys := make([]cid.Cid, 0, len(list))
	for _, ns := range list {
		keys = append(keys, discovery.VaultCID(ns))
	}
	return keys
}

// startRelay starts the circuit relay (unless off).
func (n *Node) startRelay() error {
	c := n.cfg.Relay
	if c.Mode == "" {
		c.Mode = relay.ModeAgents
	}
	if c.Mode == relay.ModeOff {
		return nil
	}
	n.acl = relay.NewACL(c.Mode)
	for _, k := range c.AllowedKeys {
		id, err := identity.PeerID(k)
		if err != nil {
			return fmt.Errorf("relay allowed key: %w", err)
		}
		n.configuredAllowed = append(n.configuredAllowed, id)
	}
	n.acl.Allow(n.configuredAllowed...)
	svc, err := relay.New(n.host, c.Mode, n.acl, c.Limits, n.reg)
	if err != nil {
		return err
	}
	n.relay = svc
	return nil
}

// refreshAllowed rebuilds the relay's allowed keys from the configuration
// and the authors of hosted vaults (run with garbage collection).
func (n *Node) refreshAllowed() error {
	if n.acl == nil {
		return nil
	}
	ids := append([]peer.ID(nil), n.configuredAllowed...)
	seen := map[vault.AuthorID]bool{}
	for _, ns := range n.hosted.List() {
		err := n.store.ForEach(ns, func(e *vault.SignedEntry) error {
			if !seen[e.Author] {
				seen[e.Author] = true
				if id, err := identity.PeerID(e.Author.PublicKey()); err == nil {
					ids = append(ids, id)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	n.acl.SetAllowed(ids)
	return nil
}

// SetHostedVaults replaces the hosted vaults: sync policy, DHT
// announcements and (at the next collection, triggered now) the data of
// vaults no longer hosted.
func (n *Node) SetHostedVaults(list []vault.NamespaceID) {
	n.hosted.Replace(list)
	if n.provider != nil {
		n.provider.Set(vaultKeys(n.hosted.List()))
	}
	select {
	case n.gcNow <- struct{}{}:
	default:
	}
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

// RendezvousConfig configures the rendezvous service.
type RendezvousConfig struct {
	Disabled           bool
	TTL                time.Duration
	MaxRecordsPerAgent int
}

// agentAuthorizer decides which device keys act for an agent. Until agent
// documents are enforced, a device may register for an agent only with the
// agent's own key (did:key of the device = the agent DID); agent documents
// will add the keys they list.
type agentAuthorizer struct{}

func (agentAuthorizer) Authorized(agentDID string, device ed25519.PublicKey) error {
	agent, err := identity.ParseDIDKey(agentDID)
	if err != nil {
		return fmt.Errorf("agent DID: %w", err)
	}
	if !agent.Equal(device) {
		return fmt.Errorf("key %s is not authorized for agent %s: this seed accepts registrations only from keys the agent's document lists",
			identity.DIDKey(device), agentDID)
	}
	return nil
}

func (n *Node) startRendezvous() {
	c := n.cfg.Rendezvous
	if c.Disabled {
		return
	}
	opts := []rendezvous.Option{rendezvous.WithRegisterer(n.reg), rendezvous.WithLogger(n.log)}
	if c.TTL > 0 {
		opts = append(opts, rendezvous.WithTTL(c.TTL))
	}
	if c.MaxRecordsPerAgent > 0 {
		opts = append(opts, rendezvous.WithMaxRecordsPerAgent(c.MaxRecordsPerAgent))
	}
	n.rendezvous = rendezvous.New(n.host, agentAuthorizer{}, opts...)
}
