package node

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/seednode/vault"
)

// metrics are the node's own Prometheus metrics (libp2p, the relay, the
// DHT provider and the services register theirs on the same registry).
// What /status reports is kept apart, in syncHistory.
type metrics struct {
	sessions    *prometheus.CounterVec
	syncItems   *prometheus.CounterVec
	syncBytes   *prometheus.CounterVec
	blobFetches *prometheus.CounterVec
	blobBytes   prometheus.Counter
}

// newMetrics registers the node's metrics and the per-vault collector on
// reg; it fails if reg already holds metrics of the same names.
func newMetrics(n *Node, reg prometheus.Registerer) (*metrics, error) {
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
	vaults := newVaultCollector(n)
	if err := register(reg, m.sessions, m.syncItems, m.syncBytes, m.blobFetches, m.blobBytes, vaults); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers cs on reg, stopping at the first that fails.
func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	return nil
}

func newVaultCollector(n *Node) *vaultCollector {
	return &vaultCollector{n: n,
		entries: prometheus.NewDesc("seedfleet_vault_entries", "Entries of a vault an administrator placed.", []string{"vault"}, nil),
		bytes:   prometheus.NewDesc("seedfleet_vault_bytes", "Value bytes the entries of a vault an administrator placed refer to.", []string{"vault"}, nil),
		hosted: prometheus.NewDesc("seedfleet_hosted_vaults", "Vaults this seed hosts, by how they were placed (Placed: by an administrator; SelfService: by a public fleet's records).",
			[]string{"placement"}, nil),
		totalEntries: prometheus.NewDesc("seedfleet_hosted_entries", "Entries of all hosted vaults.", nil, nil),
		totalBytes:   prometheus.NewDesc("seedfleet_hosted_bytes", "Value bytes the entries of all hosted vaults refer to.", nil, nil)}
}

// vaultCollector reads the vaults' figures at scrape time, so nothing is
// kept per vault between scrapes. Per-vault series are only for the vaults
// an administrator placed (as many as AgentVault objects or lines of a
// vaults file); a public fleet's self-service vaults, which may be millions,
// count in the totals only, so the series stay bounded.
type vaultCollector struct {
	n                                *Node
	entries, bytes                   *prometheus.Desc
	hosted, totalEntries, totalBytes *prometheus.Desc
}

func (c *vaultCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.entries
	ch <- c.bytes
	ch <- c.hosted
	ch <- c.totalEntries
	ch <- c.totalBytes
}

func (c *vaultCollector) Collect(ch chan<- prometheus.Metric) {
	c.n.placeMu.Lock()
	placed := make(map[vault.NamespaceID]bool, len(c.n.placed.Vaults))
	for _, ns := range c.n.placed.Vaults {
		placed[ns] = true
	}
	c.n.placeMu.Unlock()
	var placedCount, selfCount int
	var entries, bytes uint64
	for _, ns := range c.n.hosted.List() {
		if placed[ns] {
			placedCount++
		} else {
			selfCount++
		}
		st, err := c.n.store.Stats(ns)
		if err != nil {
			continue
		}
		entries += st.Entries
		bytes += st.Bytes
		if placed[ns] {
			ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(st.Entries), ns.String())
			ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(st.Bytes), ns.String())
		}
	}
	ch <- prometheus.MustNewConstMetric(c.hosted, prometheus.GaugeValue, float64(placedCount), "Placed")
	ch <- prometheus.MustNewConstMetric(c.hosted, prometheus.GaugeValue, float64(selfCount), "SelfService")
	ch <- prometheus.MustNewConstMetric(c.totalEntries, prometheus.GaugeValue, float64(entries))
	ch <- prometheus.MustNewConstMetric(c.totalBytes, prometheus.GaugeValue, float64(bytes))
}
