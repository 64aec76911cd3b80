package node

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
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
	vaults := &vaultCollector{n: n,
		entries: prometheus.NewDesc("seedfleet_vault_entries", "Entries of a hosted vault.", []string{"vault"}, nil),
		bytes:   prometheus.NewDesc("seedfleet_vault_bytes", "Value bytes a hosted vault's entries refer to.", []string{"vault"}, nil)}
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
