package node

import (
	"fmt"
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/hosting"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// selfService is the self-service part of a pod's placement, kept in memory:
// built from every record once at start, then changed record by record as
// records change, so that an admission costs the same with a hundred or a
// million subjects held.
type selfService struct {
	mu      sync.Mutex
	members fleet.Members
	claims  map[vault.NamespaceID][]claim // the subjects claiming each vault this pod holds
	leaving map[string]*hosting.Record    // subjects whose home no longer includes this pod, by key
}

// claim is one subject's claim on a vault held here.
type claim struct {
	subject             string // the subject's key
	quotaBytes, entries uint64
	peers               []peer.AddrInfo // the other home pods; never modified
}

// reset indexes every record held anew under the membership m. It holds
// the index while it reads the records, so a record that changes meanwhile
// is applied after it (apply is idempotent for a record already indexed).
// If a record cannot be read, the index stays as it was: a partial one
// would drop the vaults of the records not read.
func (s *selfService) reset(m fleet.Members, records *hosting.Records) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	members, claims, leaving := s.members, s.claims, s.leaving
	s.members = m
	s.claims, s.leaving = map[vault.NamespaceID][]claim{}, map[string]*hosting.Record{}
	if err := records.Each(func(rec *hosting.Record) bool {
		s.applyLocked(nil, rec)
		return true
	}); err != nil {
		s.members, s.claims, s.leaving = members, claims, leaving
		return fmt.Errorf("hosting records unreadable: %w", err)
	}
	return nil
}

// apply replaces the subject's old record with rec (either may be nil) and
// returns the vaults rec makes this pod host that it did not before.
func (s *selfService) apply(old, rec *hosting.Record) []vault.NamespaceID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applyLocked(old, rec)
}

func (s *selfService) applyLocked(old, rec *hosting.Record) []vault.NamespaceID {
	var peers []peer.AddrInfo
	leaving := false
	if rec != nil {
		m := s.members
		home := m.Home(hosting.PlacementKey(rec.Kind, rec.Subject))
		leaving = !slices.Contains(home, m.Self)
		for _, o := range home {
			if o != m.Self {
				peers = append(peers, m.Pods[o])
			}
		}
	}
	if old != nil {
		key := string(old.Subject)
		delete(s.leaving, key)
		for _, v := range old.Vaults {
			ns := vault.NamespaceID(v.Namespace)
			cs := slices.DeleteFunc(s.claims[ns], func(c claim) bool { return c.subject == key })
			if len(cs) == 0 {
				delete(s.claims, ns)
			} else {
				s.claims[ns] = cs
			}
		}
	}
	if rec == nil {
		return nil
	}
	key := string(rec.Subject)
	delete(s.leaving, key)
	if leaving {
		s.leaving[key] = rec
	}
	var added []vault.NamespaceID
	for _, v := range rec.Vaults {
		ns := vault.NamespaceID(v.Namespace)
		if len(s.claims[ns]) == 0 {
			added = append(added, ns)
		}
		// A new slice: placements handed out share the old one.
		cs := slices.DeleteFunc(slices.Clone(s.claims[ns]), func(c claim) bool { return c.subject == key })
		s.claims[ns] = append(cs, claim{subject: key, quotaBytes: v.QuotaBytes, entries: v.QuotaEntries, peers: peers})
	}
	return added
}

// placement is the self-service placement: every vault claimed, with the
// largest quota any claim gives it and the peers of every claim.
func (s *selfService) placement() Placement {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := Placement{Vaults: make([]vault.NamespaceID, 0, len(s.claims)),
		Peers:   make(map[vault.NamespaceID][]peer.AddrInfo, len(s.claims)),
		Options: make(map[vault.NamespaceID]admin.VaultOptions, len(s.claims))}
	for ns, cs := range s.claims {
		p.Vaults = append(p.Vaults, ns)
		var o admin.VaultOptions
		for _, c := range cs {
			o.MaxBytes, o.MaxEntries = max(o.MaxBytes, c.quotaBytes), max(o.MaxEntries, c.entries)
		}
		p.Options[ns] = o
		if len(cs) == 1 {
			p.Peers[ns] = cs[0].peers // shared, never modified
			continue
		}
		var peers []peer.AddrInfo
		for _, c := range cs {
			for _, info := range c.peers {
				peers = mergePeer(peers, info)
			}
		}
		p.Peers[ns] = peers
	}
	return p
}

// leavingRecords returns the records of the subjects this pod hands over.
func (s *selfService) leavingRecords() []*hosting.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*hosting.Record, 0, len(s.leaving))
	for _, rec := range s.leaving {
		out = append(out, rec)
	}
	return out
}
