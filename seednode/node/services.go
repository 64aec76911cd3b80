package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/seednode/admin"
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
	n.integrity.sessionEnded(p, ns, err)
	n.fetcher.sessionEnded(p, ns, st, err)
}

// stored feeds the relay ACL (authors of hosted vaults are the agents'
// devices: the store let only authorized ones in; NoRelay vaults add none)
// and the blob fetcher. A new agent document may revoke keys, so it triggers
// a refresh of the allow-list and the agent index (and a collection:
// revocation can purge entries).
func (n *Node) stored(p peer.ID, ns vault.NamespaceID, items []vault.Item) {
	docChanged := false
	seen := map[peer.ID]bool{}
	relayed := n.acl != nil && !n.vaultOptions(ns).NoRelay
	for _, it := range items {
		if bytes.Equal(it.Entry.Key, vault.AgentDocKey) {
			docChanged = true
		}
		if !relayed {
			continue
		}
		if id, err := identity.PeerID(it.Entry.Author.PublicKey()); err == nil && !seen[id] {
			seen[id] = true
			n.acl.Allow(id)
		}
	}
	if docChanged {
		select {
		case n.gcNow <- struct{}{}:
		default:
		}
	}
	n.blobCounts.stored(ns, n.fetcher.stored(p, ns, items))
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

// refreshAllowed rebuilds the agent index (hosted vaults' agent documents)
// and the relay's allowed keys: the configured keys, the active keys of hosted
// agents' documents, and the authors of hosted vaults not bound to an agent,
// leaving out the vaults placed with NoRelay.
// It runs with garbage collection and after an agent document arrives.
func (n *Node) refreshAllowed() error {
	var ids []peer.ID
	if n.acl != nil {
		ids = append(ids, n.configuredAllowed...)
	}
	agents := map[string]*identity.AgentDocument{}
	seen := map[vault.AuthorID]bool{}
	allow := func(k ed25519.PublicKey) {
		if a := vault.AuthorID(k); !seen[a] {
			seen[a] = true
			if id, err := identity.PeerID(k); err == nil {
				ids = append(ids, id)
			}
		}
	}
	for _, ns := range n.hosted.List() {
		relayed := !n.vaultOptions(ns).NoRelay
		doc, err := n.store.AgentDocument(ns)
		if err != nil {
			// A damaged vault must not stop the others being served: the
			// store reported it, and integrity quarantines it.
			n.log.Warn("agent document of a hosted vault unreadable; its devices are left out until it is repaired",
				"vault", ns.Short(), "err", err)
			continue
		}
		if doc != nil {
			if held := agents[string(doc.Root)]; held == nil || held.Version < doc.Version {
				agents[string(doc.Root)] = doc
			}
			if relayed {
				for _, k := range doc.ActiveKeys() {
					allow(k)
				}
			}
			continue
		}
		if n.acl == nil || !relayed {
			continue
		}
		err = n.store.ForEach(ns, func(e *vault.SignedEntry) error {
			allow(e.Author.PublicKey())
			return nil
		})
		if err != nil {
			n.log.Warn("authors of a hosted vault unreadable; they are left out until it is repaired", "vault", ns.Short(), "err", err)
		}
	}
	n.agentsMu.Lock()
	n.agentDocs = agents
	n.agentsMu.Unlock()
	if n.acl != nil {
		n.acl.SetAllowed(ids)
	}
	n.setProvided()
	return nil
}

// setProvided announces every hosted vault and every agent those vaults are
// bound to, so a device finds its seeds by namespace or by agent DID.
func (n *Node) setProvided() {
	if n.provider == nil {
		return
	}
	keys := vaultKeys(n.hosted.List())
	n.agentsMu.RLock()
	for _, doc := range n.agentDocs {
		keys = append(keys, discovery.AgentCID(doc.DID()))
	}
	n.agentsMu.RUnlock()
	n.provider.Set(keys)
}

// agentDocument returns the newest document of the agent with root key root
// among hosted vaults, or nil.
func (n *Node) agentDocument(root ed25519.PublicKey) *identity.AgentDocument {
	n.agentsMu.RLock()
	defer n.agentsMu.RUnlock()
	return n.agentDocs[string(root)]
}

// SetPlacement replaces the hosted vaults, their replica peers and options:
// sync policy, replication, quotas (of sessions started from now on), DHT
// announcements and (at the next collection, triggered now) the relay
// allow-list and the data of vaults no longer hosted.
func (n *Node) SetPlacement(p Placement) {
	n.place(p)
	if err := n.integrity.settleRebuild(p.Vaults); err != nil {
		n.log.Warn("vaults of the rebuilt store not marked", "err", err)
	}
	n.setProvided()
	select {
	case n.gcNow <- struct{}{}:
	default:
	}
}

// SetHostedVaults replaces the hosted vaults, with no replica peers.
func (n *Node) SetHostedVaults(list []vault.NamespaceID) { n.SetPlacement(Placement{Vaults: list}) }

// place replaces the hosted set, the replica peers and the options (of
// hosted vaults only), together: the vaults file and the admin API may place
// at once.
func (n *Node) place(p Placement) {
	hosted := make(map[vault.NamespaceID]bool, len(p.Vaults))
	for _, ns := range p.Vaults {
		hosted[ns] = true
	}
	peers := maps.Clone(p.Peers)
	maps.DeleteFunc(peers, func(ns vault.NamespaceID, _ []peer.AddrInfo) bool { return !hosted[ns] })
	options := maps.Clone(p.Options)
	if options == nil {
		options = map[vault.NamespaceID]admin.VaultOptions{}
	}
	maps.DeleteFunc(options, func(ns vault.NamespaceID, o admin.VaultOptions) bool {
		return !hosted[ns] || o == (admin.VaultOptions{})
	})
	n.placeMu.Lock()
	defer n.placeMu.Unlock()
	n.hosted.Replace(p.Vaults)
	n.replicas.set(peers)
	n.options.Store(&options)
}

// vaultOptions returns the placement options of ns (zero if it has none).
func (n *Node) vaultOptions(ns vault.NamespaceID) admin.VaultOptions {
	if m := n.options.Load(); m != nil {
		return (*m)[ns]
	}
	return admin.VaultOptions{}
}

// limitsFor is the store's vault.StoreOptions.LimitsFor: the configured
// limits, with the vault's own quota where its options set one.
func (n *Node) limitsFor(ns vault.NamespaceID) vault.Limits {
	lim, o := n.cfg.Limits, n.vaultOptions(ns)
	if o.MaxEntries != 0 {
		lim.MaxEntries = o.MaxEntries
	}
	if o.MaxBytes != 0 {
		lim.MaxBytes = o.MaxBytes
	}
	return lim
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

// agentAuthorizer decides which device keys act for an agent: the keys the
// agent's document lists (and the root key itself), from the hosted vaults
// bound to that agent. For an agent none of whose vaults is hosted here,
// only the agent's own root key may register.
type agentAuthorizer struct{ n *Node }

func (a agentAuthorizer) Authorized(agentDID string, device ed25519.PublicKey) error {
	root, err := identity.ParseDIDKey(agentDID)
	if err != nil {
		return fmt.Errorf("agent DID: %w", err)
	}
	doc := a.n.agentDocument(root)
	if doc == nil {
		if !root.Equal(device) {
			return fmt.Errorf("key %s is not authorized for agent %s: this seed hosts no vault of that agent, so it accepts only the agent's own key",
				identity.DIDKey(device), agentDID)
		}
		return nil
	}
	return doc.Authorized(device, uint64(time.Now().UnixMicro()))
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
	n.rendezvous = rendezvous.New(n.host, agentAuthorizer{n}, opts...)
}
