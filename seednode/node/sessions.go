package node

import (
	"bytes"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// sessionEnded is the vault service's session-end hook: it feeds the
// metrics, the sync history, integrity and the blob fetcher (its repair
// scan).
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
		n.history.synced(p, ns, time.Now())
		if !n.isSeed(p, ns) {
			n.history.deviceSynced(ns, time.Now())
		}
	}
	n.integrity.sessionEnded(p, ns, err)
	n.fetcher.sessionEnded(p, ns, st, err)
}

// isSeed reports whether p is a seed that syncs ns with this one: one of its
// replica peers or a pod of this seed's fleet. Their sessions keep replicas
// alike; they are not a device using the vault.
func (n *Node) isSeed(p peer.ID, ns vault.NamespaceID) bool {
	if _, ok := n.fleetMembers().IsMember(p); ok {
		return true
	}
	return n.replicas.isPeer(ns, p)
}

// stored is the vault service's stored hook. It feeds the relay ACL
// (authors of hosted vaults are the agents' devices: the store let only
// authorized ones in; NoRelay vaults add none) and the blob fetcher. A new
// agent document may revoke keys, so it triggers a refresh of the
// allow-list and the agent index (and a collection: revocation can purge
// entries).
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
	deletes := slices.ContainsFunc(items, func(it vault.Item) bool { return it.Entry.IsTombstone() })
	n.blobCounts.stored(ns, n.fetcher.stored(p, ns, items), deletes)
	n.replicas.stored(p, ns, n.isSeed(p, ns))
}

// syncHistory is what /status reports of each vault's sessions: when one
// last succeeded (with a device, and with anyone), and which distinct peers
// synced it (bounded per vault by maxPeersPerVault, and in vaults by
// hosting). It is one map of small records: three sync.Maps and a map of
// peers per vault took ~1 KiB for every vault ever synced, which a seed of
// a public fleet's 100,000 vaults cannot keep.
type syncHistory struct {
	mu     sync.RWMutex
	vaults map[vault.NamespaceID]*vaultHistory
}

// vaultHistory is one vault's: times in Unix nanoseconds (0: never), and the
// peers in a slice while they are few.
type vaultHistory struct {
	last, device int64
	peers        []peer.ID
	set          map[peer.ID]struct{} // the peers, once more than smallPeerSet
}

const (
	maxPeersPerVault = 1024
	smallPeerSet     = 16
)

// get returns ns's record, creating it if create is set (else nil if none).
// The caller holds mu (for writing, with create).
func (h *syncHistory) get(ns vault.NamespaceID, create bool) *vaultHistory {
	v := h.vaults[ns]
	if v == nil && create {
		if h.vaults == nil {
			h.vaults = make(map[vault.NamespaceID]*vaultHistory)
		}
		v = &vaultHistory{}
		h.vaults[ns] = v
	}
	return v
}

// deviceSynced records a successful session of a device (not a seed) for ns.
func (h *syncHistory) deviceSynced(ns vault.NamespaceID, t time.Time) {
	h.mu.Lock()
	h.get(ns, true).device = t.UnixNano()
	h.mu.Unlock()
}

// lastDeviceSync returns when a device last synced ns (zero: not since start).
func (h *syncHistory) lastDeviceSync(ns vault.NamespaceID) time.Time {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if v := h.get(ns, false); v != nil && v.device != 0 {
		return time.Unix(0, v.device)
	}
	return time.Time{}
}

// synced records a successful session of p for ns at t.
func (h *syncHistory) synced(p peer.ID, ns vault.NamespaceID, t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := h.get(ns, true)
	v.last = t.UnixNano()
	v.add(p)
}

// lastSync returns when a session for ns last succeeded (zero: never).
func (h *syncHistory) lastSync(ns vault.NamespaceID) time.Time {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if v := h.get(ns, false); v != nil && v.last != 0 {
		return time.Unix(0, v.last)
	}
	return time.Time{}
}

// peerCount returns how many distinct peers synced ns.
func (h *syncHistory) peerCount(ns vault.NamespaceID) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if v := h.get(ns, false); v != nil {
		return len(v.peers)
	}
	return 0
}

// syncedPeers returns the distinct peers that synced ns.
func (h *syncHistory) syncedPeers(ns vault.NamespaceID) []peer.ID {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if v := h.get(ns, false); v != nil {
		return slices.Clone(v.peers)
	}
	return nil
}

// add remembers p (up to maxPeersPerVault peers).
func (v *vaultHistory) add(p peer.ID) {
	if v.set != nil {
		if _, ok := v.set[p]; ok {
			return
		}
	} else if slices.Contains(v.peers, p) {
		return
	}
	if len(v.peers) >= maxPeersPerVault {
		return
	}
	v.peers = append(v.peers, p)
	if v.set == nil && len(v.peers) > smallPeerSet {
		v.set = make(map[peer.ID]struct{}, 2*len(v.peers))
		for _, q := range v.peers {
			v.set[q] = struct{}{}
		}
	} else if v.set != nil {
		v.set[p] = struct{}{}
	}
}
