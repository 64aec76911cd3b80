package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/rendezvous"
)

// How a serving device keeps its rendezvous record on the agent's seeds.
const (
	// registerRetry is the wait after a seed could not be reached.
	registerRetry = 30 * time.Second
	// registerRefusedRetry is the wait after a seed refused the record: it
	// may start hosting one of the agent's vaults (and so learn this
	// device's key) later.
	registerRefusedRetry = 5 * time.Minute
	// maxLookupSeeds bounds how many seeds one rendezvous step asks.
	maxLookupSeeds = 8
)

// agentSeeds are the seeds of the agent this home acts for, parsed; an
// address that does not parse is skipped (agent.json is edited by hand
// sometimes) and reported through the error.
func agentSeeds(a *AgentInfo) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	var bad []error
	for _, s := range a.Seeds {
		info, err := p2p.ParsePeerAddr(s)
		if err != nil {
			bad = append(bad, fmt.Errorf("agent seed %q: %w", s, err))
			continue
		}
		out = append(out, info)
	}
	return out, errors.Join(bad...)
}

// registrar keeps this device's rendezvous record on seeds while it
// serves, so the agent's other devices find it: registered when it starts,
// again when its addresses change and halfway to the record's expiry.
type registrar struct {
	h     *Home
	hst   host.Host
	agent *AgentInfo
	seeds []peer.AddrInfo
	next  []time.Time // when each seed is due
	sent  []string    // the addresses last registered on each seed
	logf  func(string, ...any)
}

func newRegistrar(h *Home, hst host.Host, a *AgentInfo, seeds []peer.AddrInfo, logf func(string, ...any)) *registrar {
	var uniq []peer.AddrInfo
	for _, s := range seeds {
		if !slices.ContainsFunc(uniq, func(u peer.AddrInfo) bool { return u.ID == s.ID }) {
			uniq = append(uniq, s)
		}
	}
	return &registrar{h: h, hst: hst, agent: a, seeds: uniq, next: make([]time.Time, len(uniq)), sent: make([]string, len(uniq)), logf: logf}
}

// recordAddrs are the addresses a record announces: the host's own, less
// those no other machine can dial (unspecified), then circuit addresses.
func recordAddrs(own, circuits []ma.Multiaddr) []ma.Multiaddr {
	var out []ma.Multiaddr
	add := func(from []ma.Multiaddr, limit int) {
		for _, a := range from {
			if len(out) >= limit {
				return
			}
			if ip, err := manet.ToIP(a); err == nil && ip.IsUnspecified() {
				continue
			}
			if len(a.Bytes()) > rendezvous.MaxAddrLen || slices.ContainsFunc(out, a.Equal) {
				continue
			}
			out = append(out, a)
		}
	}
	// Circuit addresses keep up to half the record, however many addresses
	// the host has: behind a NAT they are the only ones that work.
	add(own, rendezvous.MaxAddrs-min(len(circuits), rendezvous.MaxAddrs/2))
	add(circuits, rendezvous.MaxAddrs)
	add(own, rendezvous.MaxAddrs) // room the circuits left
	return out
}

// tick registers on every seed that is due, or whose record's addresses
// are not the current ones.
func (r *registrar) tick(ctx context.Context, circuits []ma.Multiaddr) {
	addrs := recordAddrs(r.hst.Addrs(), circuits)
	if len(addrs) == 0 {
		return // nothing to announce yet (no reservation, no listen address)
	}
	strs := make([]string, len(addrs))
	for i, a := range addrs {
		strs[i] = a.String()
	}
	slices.Sort(strs) // the host lists its addresses in no fixed order
	key := strings.Join(strs, " ")
	now := time.Now()
	for i, s := range r.seeds {
		// Due, or registered with addresses that are no longer current.
		// (After a refusal or a failure, sent is empty: wait for next.)
		changed := r.sent[i] != "" && r.sent[i] != key
		if now.Before(r.next[i]) && !changed {
			continue
		}
		rec, err := rendezvous.NewRecord(r.agent.DID, r.agent.Device, r.h.Key, addrs, now)
		if err != nil {
			r.logf("rendezvous: %v", err)
			return
		}
		r.hst.Peerstore().AddAddrs(s.ID, s.Addrs, peerstore.TempAddrTTL)
		reg, err := rendezvous.RegisterDetailed(ctx, r.hst, s.ID, rec)
		var refused *rendezvous.RefusedError
		switch {
		case errors.As(err, &refused):
			r.next[i], r.sent[i] = now.Add(registerRefusedRetry), ""
			r.logf("rendezvous on %s: %v (the agent's other devices will not find this one there; retrying in %s)", s.ID, err, registerRefusedRetry)
		case err != nil:
			r.next[i], r.sent[i] = now.Add(registerRetry), ""
			r.logf("rendezvous on %s: %v (retrying in %s)", s.ID, err, registerRetry)
		default:
			r.next[i], r.sent[i] = reg.RenewAt(rec), key
			r.logf("registered as %s#%s on %s until %s", r.agent.DID, r.agent.Device, s.ID, reg.Expires.Format(time.RFC3339))
		}
	}
}

// due is when the next registration is due.
func (r *registrar) due() time.Time {
	var first time.Time
	for _, t := range r.next {
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}
	return first
}

// rendezvous asks the agent's seeds, and the peers reached so far, for
// the records of the agent's other devices: they may serve a vault no seed
// hosts (a project kept on a laptop). Only a device of an agent can ask,
// and a seed answers only devices the agent's document lists.
func (f *finder) rendezvous(ctx context.Context) ([]peer.AddrInfo, error) {
	if f.o.NoRendezvous {
		return nil, nil
	}
	a, err := f.h.Agent()
	if errors.Is(err, ErrNoAgent) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	seeds, serr := agentSeeds(a)
	for _, p := range f.seeds() {
		if !slices.ContainsFunc(seeds, func(s peer.AddrInfo) bool { return s.ID == p.ID }) {
			seeds = append(seeds, p)
		}
	}
	if len(seeds) > maxLookupSeeds {
		seeds = seeds[:maxLookupSeeds]
	}
	self := f.hst.ID()
	newest := map[peer.ID]rendezvous.Record{}
	var failures []error
	if serr != nil {
		failures = append(failures, serr)
	}
	answered := 0
	for _, s := range seeds {
		f.hst.Peerstore().AddAddrs(s.ID, s.Addrs, peerstore.TempAddrTTL)
		lctx, cancel := context.WithTimeout(ctx, rendezvous.StreamTimeout)
		recs, err := rendezvous.Lookup(lctx, f.hst, s.ID, a.DID)
		cancel()
		if err != nil {
			failures = append(failures, err)
			continue
		}
		answered++
		for _, rec := range recs {
			id, err := identity.PeerID(rec.Device)
			if err != nil || id == self || len(rec.Addrs) == 0 {
				continue
			}
			if old, ok := newest[id]; !ok || old.Timestamp < rec.Timestamp {
				newest[id] = rec
			}
		}
	}
	ids := slices.Collect(maps.Keys(newest))
	// The most recently registered device first: the likeliest to be up.
	slices.SortFunc(ids, func(x, y peer.ID) int { return cmp.Compare(newest[y].Timestamp, newest[x].Timestamp) })
	var out []peer.AddrInfo
	for _, id := range ids {
		out = append(out, peer.AddrInfo{ID: id, Addrs: newest[id].Addrs})
	}
	switch {
	case len(out) > 0:
		return out, nil
	case len(seeds) == 0:
		return nil, fmt.Errorf("agent %s has no seeds to ask for its other devices (seedfleet agent seeds …)", a.DID)
	case answered == 0:
		return nil, fmt.Errorf("no seed of the agent answered: %w", errors.Join(failures...))
	}
	return nil, fmt.Errorf("no other device of agent %s is registered on its seeds (%d asked): is one serving (seedfleet serve)?", a.DID, answered)
}
