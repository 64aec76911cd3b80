package hosting

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/seednode/fleet"
)

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
	// membershipChanges counts the memberships applied while running.
	membershipChanges prometheus.Counter
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
		membershipChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seedfleet_fleet_membership_changes_total",
			Help: "New memberships of the fleet this pod applied while it ran (the fleet scaled).",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.answers, m.forwards, m.replications, m.recordExchanges, m.recordRepairs, m.membershipChanges} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// registerMembers exports the membership the pod places by: its pods and
// how many of them are leaving.
func registerMembers(reg prometheus.Registerer, members func() fleet.Members) error {
	if reg == nil {
		return nil
	}
	for _, g := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "seedfleet_fleet_pods",
			Help: "Pods in the fleet's membership this pod places by, the leaving ones included.",
		}, func() float64 { return float64(len(members().Pods)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "seedfleet_fleet_leaving_pods",
			Help: "Pods of the fleet's membership that are leaving (the fleet shrinks).",
		}, func() float64 { return float64(members().Leaving) }),
	} {
		if err := reg.Register(g); err != nil {
			return err
		}
	}
	return nil
}
