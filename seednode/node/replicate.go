package node

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

const (
	// maxReplicaSyncs bounds the replica syncs running at once.
	maxReplicaSyncs = 4
	// replicaSyncTimeout ends a replica sync that takes longer (a silent
	// peer is cut off sooner, by the vault service's idle timeout).
	replicaSyncTimeout = 10 * time.Minute
	// A failing (vault, peer) pair is retried after 1 s, then 2 s, 4 s, …,
	// at most replicaBackoffMax apart.
	replicaBackoffMin = time.Second
	replicaBackoffMax = 2 * time.Minute
)

// replicaKey names one replica pair: a hosted vault and a peer hosting it too.
type replicaKey struct {
	ns   vault.NamespaceID
	peer peer.ID
}

// replica is the replication state of one pair.
type replica struct {
	info     peer.AddrInfo      // never changed: new addresses make a new replica
	due      time.Time          // the next sync starts at or after this
	cancel   context.CancelFunc // set while a sync runs
	failures int                // consecutive failed syncs
	inSync   bool               // the latest sync succeeded
	lastSync time.Time          // of the latest successful sync
	lastErr  string             // of the latest sync, if it failed
}

// replicator syncs each hosted vault, as the initiator, with the replica
// peers its placement names: right after a pair appears (or its addresses
// change), then every interval, backing off exponentially while a pair
// fails; at most maxReplicaSyncs at once. Entries a sync stores feed the
// blob fetcher through the vault service's hooks, as for any session.
type replicator struct {
	n        *Node
	interval time.Duration
	wake     chan struct{}

	mu       sync.Mutex
	peers    map[vault.NamespaceID][]peer.AddrInfo // as placed, in order; replaced, never modified
	replicas map[replicaKey]*replica
	running  int
}

func newReplicator(n *Node, interval time.Duration) *replicator {
	return &replicator{n: n, interval: interval, wake: make(chan struct{}, 1),
		peers: map[vault.NamespaceID][]peer.AddrInfo{}, replicas: map[replicaKey]*replica{}}
}

func (r *replicator) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// set replaces the replica peers. Pairs that are new, or whose addresses
// changed, are synced at once; the others keep their schedule and state.
// Syncs of pairs that are gone are canceled.
func (r *replicator) set(peers map[vault.NamespaceID][]peer.AddrInfo) {
	now := time.Now()
	next := make(map[replicaKey]*replica)
	r.mu.Lock()
	for ns, infos := range peers {
		for _, info := range infos {
			k := replicaKey{ns, info.ID}
			if old := r.replicas[k]; old != nil && slices.EqualFunc(old.info.Addrs, info.Addrs, ma.Multiaddr.Equal) {
				next[k] = old
				continue
			}
			next[k] = &replica{info: info, due: now}
		}
	}
	for k, old := range r.replicas {
		if next[k] != old && old.cancel != nil {
			old.cancel()
		}
	}
	r.peers, r.replicas = peers, next
	r.mu.Unlock()
	r.poke()
}

// syncNow makes every pair of ns due at once (a repaired vault refills).
func (r *replicator) syncNow(ns vault.NamespaceID) {
	now := time.Now()
	r.mu.Lock()
	for k, rep := range r.replicas {
		if k.ns == ns {
			rep.due = now
		}
	}
	r.mu.Unlock()
	r.poke()
}

// placed returns the replica peers as last set (callers must not modify them).
func (r *replicator) placed() map[vault.NamespaceID][]peer.AddrInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peers
}

// syncedPeers counts the replica peers of ns whose latest sync succeeded
// within the last window.
func (r *replicator) syncedPeers(ns vault.NamespaceID, window time.Duration) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, info := range r.peers[ns] {
		if rep := r.replicas[replicaKey{ns, info.ID}]; rep != nil && rep.inSync && time.Since(rep.lastSync) < window {
			n++
		}
	}
	return n
}

// isPeer reports whether p is one of ns's replica peers.
func (r *replicator) isPeer(ns vault.NamespaceID, p peer.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.peers[ns], func(info peer.AddrInfo) bool { return info.ID == p })
}

// status reports the pairs of ns, in the placed order.
func (r *replicator) status(ns vault.NamespaceID) []admin.ReplicaStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []admin.ReplicaStatus
	for _, info := range r.peers[ns] {
		rep := r.replicas[replicaKey{ns, info.ID}]
		if rep == nil {
			continue
		}
		out = append(out, admin.ReplicaStatus{Peer: info.ID.String(), LastSync: rep.lastSync, LastError: rep.lastErr})
	}
	return out
}

// run starts due syncs until ctx ends; it wakes when a pair becomes due,
// when the placement changes and when a sync ends.
func (r *replicator) run(ctx context.Context) {
	defer r.n.wg.Done()
	t := time.NewTimer(r.interval)
	defer t.Stop()
	for {
		t.Reset(r.startDue(ctx))
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-t.C:
		}
	}
}

// startDue starts the syncs that are due, within maxReplicaSyncs, and
// returns how long until the next idle pair is due.
func (r *replicator) startDue(ctx context.Context) time.Duration {
	now := time.Now()
	wait := r.interval
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, rep := range r.replicas {
		if rep.cancel != nil || ctx.Err() != nil {
			continue
		}
		if d := rep.due.Sub(now); d > 0 {
			wait = min(wait, d)
			continue
		}
		if r.running < maxReplicaSyncs { // else the next sync to end wakes run
			r.start(ctx, k, rep)
		}
	}
	return wait
}

// start runs one sync of the pair in the background. r.mu is held.
func (r *replicator) start(ctx context.Context, k replicaKey, rep *replica) {
	sctx, cancel := context.WithTimeout(ctx, replicaSyncTimeout)
	rep.cancel = cancel
	r.running++
	r.n.wg.Add(1)
	go func() {
		defer r.n.wg.Done()
		defer cancel()
		// Added for a while before each sync, so the addresses of a peer
		// dropped from the placement are soon forgotten.
		r.n.host.Peerstore().AddAddrs(k.peer, rep.info.Addrs, peerstore.TempAddrTTL)
		st, err := r.n.sync.Sync(sctx, k.peer, k.ns, vault.SyncOptions{})
		r.finish(ctx, k, rep, st, err)
	}()
}

// finish records a sync's outcome and schedules the pair's next one. Syncs
// of pairs no longer placed, or ended by shutdown, leave no trace.
func (r *replicator) finish(ctx context.Context, k replicaKey, rep *replica, st vault.SyncStats, err error) {
	defer r.poke()
	r.mu.Lock()
	r.running--
	rep.cancel = nil
	if r.replicas[k] != rep || ctx.Err() != nil {
		r.mu.Unlock()
		return
	}
	now := time.Now()
	wasInSync := rep.inSync
	if err == nil {
		rep.inSync, rep.failures, rep.lastSync, rep.lastErr = true, 0, now, ""
		rep.due = now.Add(r.interval)
	} else {
		rep.inSync, rep.lastErr = false, err.Error()
		rep.failures++
		rep.due = now.Add(replicaBackoff(rep.failures))
	}
	failures, retry := rep.failures, rep.due.Sub(now)
	r.mu.Unlock()

	log := r.n.log.With("vault", k.ns.Short(), "peer", k.peer)
	switch {
	case err == nil && !wasInSync:
		log.Info("replica in sync with peer", "received", st.ItemsReceived, "sent", st.ItemsSent,
			"refused", st.Refused, "peerRefused", st.PeerRefused)
	case err == nil:
		log.Debug("replica synced", "received", st.ItemsReceived, "sent", st.ItemsSent, "took", st.Duration)
	case failures == 1:
		log.Info("replica sync failing; retrying with backoff", "retryIn", retry, "err", err)
	default:
		log.Debug("replica sync failed again", "failures", failures, "retryIn", retry, "err", err)
	}
	if err == nil {
		r.n.repairBlobs(k.peer, k.ns, r.interval)
	}
}

// replicaBackoff is the wait after the given number of consecutive failures.
func replicaBackoff(failures int) time.Duration {
	return min(replicaBackoffMin<<min(failures-1, 16), replicaBackoffMax)
}
