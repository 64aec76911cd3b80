package node

import (
	"bytes"
	"maps"
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
	if n.cfg.Fleet != nil {
		if _, ok := n.cfg.Fleet.Members.IsMember(p); ok {
			return true
		}
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
	n.blobCounts.stored(ns, n.fetcher.stored(p, ns, items))
	n.replicas.stored(p, ns, n.isSeed(p, ns))
}

// syncHistory is what /status reports of each vault's sessions: when one
// last succeeded, and how many distinct peers synced it (bounded per
// vault by maxPeersPerVault, and in vaults by hosting).
type syncHistory struct {
	last   sync.Map // vault.NamespaceID -> time.Time
	device sync.Map // vault.NamespaceID -> time.Time, of sessions with devices (not seeds)
	peers  sync.Map // vault.NamespaceID -> *peerSet
}

// deviceSynced records a successful session of a device (not a seed) for ns.
func (h *syncHistory) deviceSynced(ns vault.NamespaceID, t time.Time) { h.device.Store(ns, t) }

// lastDeviceSync returns when a device last synced ns (zero: not since start).
func (h *syncHistory) lastDeviceSync(ns vault.NamespaceID) time.Time {
	if t, ok := h.device.Load(ns); ok {
		return t.(time.Time)
	}
	return time.Time{}
}

// synced records a successful session of p for ns at t.
func (h *syncHistory) synced(p peer.ID, ns vault.NamespaceID, t time.Time) {
	h.last.Store(ns, t)
	set, _ := h.peers.LoadOrStore(ns, &peerSet{set: map[peer.ID]struct{}{}})
	set.(*peerSet).add(p)
}

// lastSync returns when a session for ns last succeeded (zero: never).
func (h *syncHistory) lastSync(ns vault.NamespaceID) time.Time {
	if t, ok := h.last.Load(ns); ok {
		return t.(time.Time)
	}
	return time.Time{}
}

// peerCount returns how many distinct peers synced ns.
func (h *syncHistory) peerCount(ns vault.NamespaceID) int {
	if set, ok := h.peers.Load(ns); ok {
		return set.(*peerSet).len()
	}
	return 0
}

// syncedPeers returns the distinct peers that synced ns.
func (h *syncHistory) syncedPeers(ns vault.NamespaceID) []peer.ID {
	set, ok := h.peers.Load(ns)
	if !ok {
		return nil
	}
	ps := set.(*peerSet)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return slices.Collect(maps.Keys(ps.set))
}

// peerSet remembers the distinct peers that synced a vault (bounded).
type peerSet struct {
	mu  sync.Mutex
	set map[peer.ID]struct{}
}

const maxPeersPerVault = 1024

func (p *peerSet) add(id peer.ID) {
	p.mu.Lock()
	if len(p.set) < maxPeersPerVault {
		p.set[id] = struct{}{}
	}
	p.mu.Unlock()
}

func (p *peerSet) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.set)
}
