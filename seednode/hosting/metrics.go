package hosting

import "github.com/prometheus/client_golang/prometheus"

// metrics are the service's, bounded in cardinality: labels are outcomes and
// reasons, never subjects or vaults.
type metrics struct {
	answers      *prometheus.CounterVec
	forwards     *prometheus.CounterVec
	replications *prometheus.CounterVec
	// recordExchanges and recordRepairs count the record exchange's work
	// (reconcile.go).
	recordExchanges *prometheus.CounterVec
	recordRepairs   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seedfleet_hosting_answers_total",
			Help: "Hosting requests answered, by outcome (OK, Refused) and reason.",
		}, []string{"outcome", "reason"}),
		forwards: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seedfleet_hosting_forwards_total",
			Help: "Hosting requests forwarded to the subject's home pod, by result.",
		}, []string{"result"}),
		replications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seedfleet_hosting_replications_total",
			Help: "Accepted hosting requests sent to the subject's other home pods, by result.",
		}, []string{"result"}),
		recordExchanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seedfleet_fleet_record_exchanges_total",
			Help: "Record digest exchanges with other pods of the fleet, by role (ask, answer) and outcome (equal, differ, refused, unsupported, error).",
		}, []string{"role", "outcome"}),
		recordRepairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seedfleet_fleet_record_repairs_total",
			Help: "Hosting records sent to a home pod that lacked them or held them older (sent), and records stored from another pod's copy (stored).",
		}, []string{"direction"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.answers, m.forwards, m.replications, m.recordExchanges, m.recordRepairs} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
