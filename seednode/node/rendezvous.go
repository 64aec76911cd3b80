package node

import (
	"fmt"
	"time"

	"github.com/seedfleet/seedfleet/seednode/rendezvous"
)

// RendezvousConfig configures the rendezvous service.
type RendezvousConfig struct {
	Disabled bool
	// TTL and MaxRecordsPerAgent keep the service's defaults when zero
	// (rendezvous.WithTTL, rendezvous.WithMaxRecordsPerAgent).
	TTL                time.Duration
	MaxRecordsPerAgent int
}

// startRendezvous starts the rendezvous service (unless disabled), whose
// devices the agent index authorizes.
func (n *Node) startRendezvous() error {
	c := n.cfg.Rendezvous
	if c.Disabled {
		return nil
	}
	opts := []rendezvous.Option{rendezvous.WithRegisterer(n.reg), rendezvous.WithLogger(n.log)}
	if c.TTL > 0 {
		opts = append(opts, rendezvous.WithTTL(c.TTL))
	}
	if c.MaxRecordsPerAgent > 0 {
		opts = append(opts, rendezvous.WithMaxRecordsPerAgent(c.MaxRecordsPerAgent))
	}
	svc, err := rendezvous.New(n.host, agentAuthorizer{n}, opts...)
	if err != nil {
		// Name the settings as the configuration file spells them.
		return fmt.Errorf("rendezvous.recordTTL %s, rendezvous.maxRecordsPerAgent %d: %w", c.TTL, c.MaxRecordsPerAgent, err)
	}
	n.rendezvous = svc
	return nil
}
