package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/hosting"
	"github.com/seedfleet/seedfleet/seednode/ticket"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// fleetFiguresTTL is how long the counted figures of GET /v1/fleet are
// reused: counting reads every hosting record and the size of every
// self-service vault the pod holds.
const fleetFiguresTTL = 5 * time.Second

// fleetFigures caches the counted part of admin.FleetStatus.
type fleetFigures struct {
	mu  sync.Mutex
	at  time.Time
	got admin.FleetStatus
}

// FleetStatus implements admin.FleetSource.
func (a adminSource) FleetStatus(ctx context.Context) (admin.FleetStatus, error) {
	n := a.n
	f := n.cfg.Fleet
	if f == nil || n.hostingSvc == nil {
		return admin.FleetStatus{}, admin.ErrNoFleet
	}
	p := n.admitter.Policy()
	m := n.fleetMembers()
	st := admin.FleetStatus{Name: p.Fleet, Admission: string(p.Admission), Self: m.Self,
		Pods: len(m.Pods), Leaving: m.Leaving, Members: m.Version(), Replicas: m.Replicas, Ticket: n.hostingSvc.Ticket().String(),
		Invites: a.inviteKey() != nil, Refusals: n.hostingSvc.Refusals()}
	counted, err := n.fleetStats.count(ctx, n)
	if err != nil {
		return admin.FleetStatus{}, err
	}
	st.Agents, st.Vaults, st.Admissions = counted.Agents, counted.Vaults, counted.Admissions
	st.HostedVaults, st.Bytes = counted.HostedVaults, counted.Bytes
	return st, nil
}

// forget drops the counted figures: they depend on the membership, which
// changed.
func (c *fleetFigures) forget() {
	c.mu.Lock()
	c.at = time.Time{}
	c.mu.Unlock()
}

// count returns the counted figures, at most fleetFiguresTTL old.
func (c *fleetFigures) count(ctx context.Context, n *Node) (admin.FleetStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < fleetFiguresTTL {
		return c.got, nil
	}
	got, err := countFleet(ctx, n)
	if err != nil {
		return admin.FleetStatus{}, err
	}
	c.got, c.at = got, time.Now()
	return got, nil
}

// countFleet counts the records: subjects and vaults whose first home pod
// this is (each subject is counted by one pod), and the distinct vaults this
// pod holds for self-service with their bytes.
func countFleet(ctx context.Context, n *Node) (admin.FleetStatus, error) {
	var st admin.FleetStatus
	m := n.fleetMembers()
	held := map[vault.NamespaceID]bool{}
	err := n.records.Each(func(rec *hosting.Record) bool {
		if ctx.Err() != nil {
			return false
		}
		if rec.Released() {
			return true // a tombstone: nothing is hosted
		}
		home := m.Home(hosting.PlacementKey(rec.Kind, rec.Subject))
		if len(home) > 0 && home[0] == m.Self {
			st.Agents++
			st.Vaults += len(rec.Vaults)
			if !rec.Admitted.Before(n.started) {
				st.Admissions++
			}
		}
		// Every record this pod stores is held here, at home or not: a pod
		// that the ranking left (the fleet scaled, or the pod is leaving)
		// keeps its records until the hand-off to the new home pods is done,
		// and the operator shrinks the fleet only once a leaving pod holds
		// none.
		for _, v := range rec.Vaults {
			held[vault.NamespaceID(v.Namespace)] = true
		}
		return true
	})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return admin.FleetStatus{}, fmt.Errorf("counting hosting records: %w", err)
	}
	st.HostedVaults = len(held)
	for ns := range held {
		if s, err := n.store.Stats(ns); err == nil {
			st.Bytes += s.Bytes
		}
	}
	return st, nil
}

// inviteKey is the fleet key when this pod may mint invites with it: the
// fleet admits by invite and the key is the one its policy checks.
func (a adminSource) inviteKey() ed25519.PrivateKey {
	n := a.n
	if n.cfg.Fleet == nil || n.admitter == nil || len(n.cfg.FleetKey) != ed25519.PrivateKeySize {
		return nil
	}
	p := n.admitter.Policy()
	if p.Admission != fleet.Invite || !p.FleetKey.Equal(n.cfg.FleetKey.Public()) {
		return nil
	}
	return n.cfg.FleetKey
}

// MintInvite implements admin.FleetSource.
func (a adminSource) MintInvite(_ context.Context, req admin.InviteRequest) (admin.Invite, error) {
	n := a.n
	if n.cfg.Fleet == nil || n.admitter == nil {
		return admin.Invite{}, admin.ErrNoFleet
	}
	uses, expiresIn, err := req.Check()
	if err != nil {
		return admin.Invite{}, err
	}
	p := n.admitter.Policy()
	if p.Admission != fleet.Invite {
		return admin.Invite{}, fmt.Errorf("%w: its admission is %s, not Invite (an invite would not be asked for); "+
			"set admission: Invite (spec.hosting.selfService.admission on Kubernetes) to admit by invite", admin.ErrNoInvites, p.Admission)
	}
	key := a.inviteKey()
	if key == nil {
		return admin.Invite{}, fmt.Errorf("%w: this pod holds no fleet key matching the fleet's (fleet.keyFile)", admin.ErrNoInvites)
	}
	var id [ticket.InviteIDLen]byte
	if _, err := rand.Read(id[:]); err != nil {
		return admin.Invite{}, err
	}
	t, err := ticket.NewInviteTicket(p.Fleet, id, time.Now().Add(expiresIn), uses, key)
	if err != nil {
		return admin.Invite{}, err
	}
	return admin.Invite{Ticket: t.String(), ID: hex.EncodeToString(id[:]), Uses: t.Uses, NotAfter: t.NotAfter.UTC()}, nil
}

// SetFleetMembers implements admin.MembersSource: the operator's push of a
// new membership, applied as the same one read from the configuration
// file would be (SetFleetMembers).
func (a adminSource) SetFleetMembers(_ context.Context, fm admin.FleetMembers) (string, error) {
	if len(fm.Members) > maxFleetMembers {
		return "", fmt.Errorf("%w: %d members, at most %d", admin.ErrBadMembers, len(fm.Members), maxFleetMembers)
	}
	m, err := config.Fleet{Self: fm.Self, Members: fm.Members, Leaving: fm.Leaving, Replicas: fm.Replicas}.Membership()
	if err != nil {
		return "", fmt.Errorf("%w: %v", admin.ErrBadMembers, err)
	}
	if err := a.n.SetFleetMembers(m); err != nil {
		return "", err
	}
	return a.n.fleetMembers().Version(), nil
}

// maxFleetMembers bounds a membership pushed through the admin API.
const maxFleetMembers = 4096
