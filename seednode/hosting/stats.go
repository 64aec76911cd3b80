package hosting

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Refusals are the requests the service refused since it started, by reason
// name (Reason.String, and "stream" for streams refused before a request was
// read), as its seedfleet_hosting_answers_total counts them: every answer
// this pod gave, to devices and to the fleet's other pods.
func (s *Service) Refusals() map[string]uint64 {
	out := map[string]uint64{}
	ch := make(chan prometheus.Metric, 32)
	go func() {
		s.m.answers.Collect(ch)
		close(ch)
	}()
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil || d.GetCounter() == nil {
			continue
		}
		var outcome, reason string
		for _, l := range d.GetLabel() {
			switch l.GetName() {
			case "outcome":
				outcome = l.GetValue()
			case "reason":
				reason = l.GetValue()
			}
		}
		if outcome == "Refused" && reason != "" {
			out[reason] += uint64(d.GetCounter().GetValue())
		}
	}
	return out
}
