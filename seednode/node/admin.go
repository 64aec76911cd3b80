package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/blobs"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// DefaultAdminListen is the admin API's default address: loopback, like the
// libp2p listener; pods expose it to the kubelet and the operator.
const DefaultAdminListen = "127.0.0.1:7401"

// Version is reported by /status (set at build time).
var Version = "dev"

// adminSource serves the admin API from the node.
type adminSource struct{ n *Node }

func (a adminSource) Ready(context.Context) error { return a.n.Ready() }

func (a adminSource) HostedVaults() []string {
	list := a.n.hosted.List()
	out := make([]string, len(list))
	for i, ns := range list {
		out[i] = ns.String()
	}
	return out
}

func (a adminSource) SetHostedVaults(_ context.Context, ids []string) error {
	list := make([]vault.NamespaceID, 0, len(ids))
	for i, s := range ids {
		ns, err := vault.ParseNamespaceID(s)
		if err != nil {
			return fmt.Errorf("vaults[%d]: %w", i, err)
		}
		list = append(list, ns)
	}
	a.n.SetHostedVaults(list)
	return nil
}

func (a adminSource) Status(ctx context.Context) (admin.Status, error) {
	n := a.n
	st := admin.Status{PeerID: n.host.ID().String(), Version: Version, StartedAt: n.started}
	for _, m := range n.Addrs() {
		st.Addrs = append(st.Addrs, m.String())
	}
	if n.dht != nil {
		st.DHT = admin.DHTStatus{Mode: "server", RoutingTableSize: n.dht.RoutingTable().Size(),
			ReprovideLagSeconds: n.provider.Lag().Seconds()}
		if n.cfg.DHT.Mode == "client" {
			st.DHT.Mode = "client"
		}
	}
	if n.acl != nil {
		st.Relay = admin.RelayStatus{Mode: string(n.cfg.Relay.Mode), AllowedPeers: n.acl.AllowedCount()}
		if st.Relay.Mode == "" {
			st.Relay.Mode = "agents"
		}
	}
	for _, ns := range n.hosted.List() {
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		s, err := n.store.Stats(ns)
		if err != nil {
			return st, err
		}
		vs := admin.VaultStatus{Namespace: ns.String(), Entries: s.Entries, Bytes: s.Bytes}
		if t, ok := n.metrics.lastSync.Load(ns); ok {
			vs.LastSync = t.(time.Time)
		}
		if c, ok := n.blobCounts.Load(ns); ok {
			bc := c.(blobCount)
			vs.BlobsComplete, vs.BlobsMissing = bc.complete, bc.missing
		}
		if set, ok := n.metrics.syncPeers.Load(ns); ok {
			vs.Peers = set.(*peerSet).len()
		}
		st.Vaults = append(st.Vaults, vs)
	}
	return st, nil
}

// blobCount is computed by the collection pass, not per request.
type blobCount struct{ complete, missing int }

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

// countBlobs records, per hosted vault, how many referenced blobs are here.
func (n *Node) countBlobs(ns vault.NamespaceID) {
	var bc blobCount
	_ = n.store.ForEach(ns, func(e *vault.SignedEntry) error {
		if !vault.IsBlobRef(&e.Entry) {
			return nil
		}
		if st, err := n.blobs.Stat(e.Hash); err == nil && st.State == blobs.Complete {
			bc.complete++
		} else {
			bc.missing++
		}
		return nil
	})
	n.blobCounts.Store(ns, bc)
}
