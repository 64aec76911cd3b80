package node

import (
	"container/heap"
	"context"
	"crypto/rand"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

const (
	// maxReplicaSyncs bounds the replica syncs running at once for
	// differences the exchange found, retries and repairs; maxLiveSyncs
	// bounds, apart, those pushing a vault that just changed, so a backlog
	// (a new pod filling) never delays a device's write.
	maxReplicaSyncs = 4
	maxLiveSyncs    = 4
	// replicaSyncTimeout ends a replica sync that takes longer (a silent
	// peer is cut off sooner, by the vault service's idle timeout).
	replicaSyncTimeout = 10 * time.Minute
	// A failing (vault, peer) pair or exchange is retried after 1 s, then
	// 2 s, 4 s, …, at most replicaBackoffMax apart.
	replicaBackoffMin = time.Second
	replicaBackoffMax = 2 * time.Minute
	// liveDebounce is how long a vault that changed waits before its
	// replica peers are synced: a burst of writes (a device's sync, a
	// batch) becomes one session per peer. Measured, it adds less than the
	// session itself to a write's trip to a device live on another pod.
	liveDebounce = 20 * time.Millisecond
	// maxExchanges bounds the exchanges this pod asks at once.
	maxExchanges = 2
)

// replicaKey names one replica pair: a hosted vault and a peer hosting it too.
type replicaKey struct {
	ns   vault.NamespaceID
	peer peer.ID
}

// syncReason is why a pair's sync was scheduled (the label of
// seedfleet_replica_syncs_total).
type syncReason uint8

const (
	reasonNone     syncReason = iota
	reasonDiffer              // an exchange found its fingerprints differ
	reasonLive                // the vault changed here
	reasonRetry               // its previous sync failed
	reasonRepair              // integrity asked for a refill
	reasonNoDigest            // the peer does not exchange digests with this pod
)

func (r syncReason) String() string {
	return [...]string{"none", "differ", "live", "retry", "repair", "nodigest"}[r]
}

// replica is the replication state of one pair. It is kept small: a pod
// holds one per vault and replica peer.
type replica struct {
	addrs    []ma.Multiaddr     // never changed: new addresses make a new replica
	due      time.Time          // queued: the next sync starts at or after this (zero: idle)
	lastSync time.Time          // of the latest successful sync
	lastErr  string             // of the latest sync, if it failed
	cancel   context.CancelFunc // set while a sync runs
	failures int32              // consecutive failed syncs
	gen      uint32             // the placement that brought it (an exchange begun earlier says nothing of it)
	reason   syncReason         // of the queued sync
	again    syncReason         // to sync again once the running sync ends
	inSync   bool               // the latest sync succeeded
	differs  bool               // the latest exchange found it differing, not synced since
}

// replicaPeer is what this pod keeps per replica peer (one per peer, not
// per vault): the digests of the vaults the two share and the exchange's
// schedule.
type replicaPeer struct {
	id     peer.ID
	info   peer.AddrInfo // addresses as a placement names them
	shared int           // vaults whose placement names the peer
	// mine is the shared set under this pod's key (as asker); theirs under
	// the peer's key (as answerer), built when the peer first asks.
	mine     *fleet.Digest
	theirs   *fleet.Digest
	theirKey [32]byte
	due      time.Time // of this pod's next exchange with the peer
	busy     bool      // this pod's exchange with the peer runs
	failures int       // exchanges in a row that failed
	refusals int       // exchanges in a row the peer refused
	lastErr  string
	// The latest exchange that ended well began under placement
	// confirmedGen and ended at confirmedAt: every pair it did not find
	// differing (and that existed when it began) was in sync then.
	confirmedGen uint32
	confirmedAt  time.Time
	differing    map[vault.NamespaceID]bool // as the latest exchange found
}

func (p *replicaPeer) add(ns vault.NamespaceID, fp [32]byte) {
	p.shared++
	p.mine.Add(ns, fp)
	if p.theirs != nil {
		p.theirs.Add(ns, fp)
	}
}

func (p *replicaPeer) remove(ns vault.NamespaceID, fp [32]byte) {
	p.shared--
	p.mine.Remove(ns, fp)
	if p.theirs != nil {
		p.theirs.Remove(ns, fp)
	}
	delete(p.differing, ns)
}

func (p *replicaPeer) change(ns vault.NamespaceID, old, new [32]byte) {
	p.mine.Change(ns, old, new)
	if p.theirs != nil {
		p.theirs.Change(ns, old, new)
	}
}

// push is a vault that changed, waiting out liveDebounce.
type push struct {
	at   time.Time
	skip peer.ID // the replica peer the change came from (it has it); "" for none
}

// replicator keeps each hosted vault in sync, as the initiator, with the
// replica peers its placement names. It does not sync idle vaults: once per
// interval it compares, with each replica peer, the digests of everything
// the two share (exchange.go) and syncs only the vaults that differ; a
// vault that changes here is synced with its peers at once (after
// liveDebounce). Failing pairs back off exponentially. Entries a sync
// stores feed the blob fetcher through the vault service's hooks, as for
// any session.
type replicator struct {
	n        *Node
	interval time.Duration
	key      [32]byte // this pod's digest key: random, so no device can aim at it
	wake     chan struct{}
	metrics  *replicaMetrics

	refreshMu sync.Mutex // one fingerprint refresh at a time

	mu       sync.Mutex
	peers    map[vault.NamespaceID][]peer.AddrInfo // as placed, in order; replaced, never modified
	gen      uint32                                // counts placements
	replicas map[replicaKey]*replica
	pods     map[peer.ID]*replicaPeer
	fps      map[vault.NamespaceID][32]byte // set fingerprints of the vaults in peers
	dirty    map[vault.NamespaceID]bool     // changed since read into fps
	pushes   map[vault.NamespaceID]push
	// repairScan is when the vaults lacking blobs were last looked up for
	// an exchange with each peer.
	repairScan map[peer.ID]time.Time
	queue      replicaQueue // pairs due, by time
	liveQueue  []replicaKey // pairs to push, first come first served
	running    int
	live       int
	asking     int
}

func newReplicator(n *Node, interval time.Duration) *replicator {
	r := &replicator{n: n, interval: interval, wake: make(chan struct{}, 1), metrics: newReplicaMetrics(),
		peers: map[vault.NamespaceID][]peer.AddrInfo{}, replicas: map[replicaKey]*replica{},
		pods: map[peer.ID]*replicaPeer{}, fps: map[vault.NamespaceID][32]byte{},
		dirty: map[vault.NamespaceID]bool{}, pushes: map[vault.NamespaceID]push{}, repairScan: map[peer.ID]time.Time{}}
	rand.Read(r.key[:])
	return r
}

func (r *replicator) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// exchangeSoon makes every peer due for an exchange within
// exchangeSoonJitter, from this seed whether or not it is the pair's
// asker: after the fleet's membership changed, many vaults have new
// replica peers, and waiting an interval for the other side of each pair
// would delay moving them.
func (r *replicator) exchangeSoon() {
	r.mu.Lock()
	for _, p := range r.pods {
		if due := time.Now().Add(mrand.N(exchangeSoonJitter)); due.Before(p.due) {
			p.due = due
		}
	}
	r.mu.Unlock()
	r.poke()
}

// exchangeSoonJitter spreads the exchanges exchangeSoon asks for.
const exchangeSoonJitter = 500 * time.Millisecond

// set replaces the replica peers. Pairs whose addresses are unchanged keep
// their state; the digests gain and lose the pairs that came and went, and
// a peer with new pairs is asked for an exchange at once (which syncs the
// new pairs that differ). Syncs of pairs that are gone are canceled.
func (r *replicator) set(peers map[vault.NamespaceID][]peer.AddrInfo) {
	fresh := r.readFingerprints(peers)
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gen++
	next := make(map[replicaKey]*replica, len(r.replicas))
	for ns, infos := range peers {
		if _, ok := r.fps[ns]; !ok {
			fp, read := fresh[ns]
			r.fps[ns] = fp.fp
			if !read || !fp.ok {
				r.dirty[ns] = true // placed meanwhile, or unreadable: read again before the next exchange
			}
		}
		fp := r.fps[ns]
		for _, info := range infos {
			k := replicaKey{ns, info.ID}
			old := r.replicas[k]
			if old != nil && slices.EqualFunc(old.addrs, info.Addrs, ma.Multiaddr.Equal) {
				next[k] = old
				continue
			}
			next[k] = &replica{addrs: info.Addrs, gen: r.gen}
			p := r.pods[info.ID]
			if p == nil {
				p = &replicaPeer{id: info.ID, mine: fleet.NewDigest(r.key), differing: map[vault.NamespaceID]bool{}, due: now}
				r.pods[info.ID] = p
			}
			if old == nil {
				p.add(ns, fp)
			}
			// An exchange soon covers the new pair: at once from the seed
			// that asks, an interval later from the other (unless asked
			// meanwhile), so both seldom ask at once.
			p.info = info
			if due := now.Add(r.exchangeAfter(info.ID) - r.interval); due.Before(p.due) {
				p.due = due
			}
		}
	}
	for k, old := range r.replicas {
		if next[k] != old && old.cancel != nil {
			old.cancel()
		}
		if next[k] == nil {
			r.pods[k.peer].remove(k.ns, r.fps[k.ns])
		}
	}
	for id, p := range r.pods {
		if p.shared == 0 {
			delete(r.pods, id)
			delete(r.repairScan, id)
		}
	}
	for ns := range r.fps {
		if _, ok := peers[ns]; !ok {
			delete(r.fps, ns)
			delete(r.dirty, ns)
		}
	}
	r.peers, r.replicas = peers, next
	r.poke()
}

// readFingerprints reads the fingerprints of the vaults in peers that are
// not cached yet (outside r.mu: a new placement may bring many).
func (r *replicator) readFingerprints(peers map[vault.NamespaceID][]peer.AddrInfo) map[vault.NamespaceID]readFP {
	r.mu.Lock()
	var missing []vault.NamespaceID
	for ns := range peers {
		if _, ok := r.fps[ns]; !ok {
			missing = append(missing, ns)
		}
	}
	r.mu.Unlock()
	out := make(map[vault.NamespaceID]readFP, len(missing))
	for _, ns := range missing {
		fp, ok := r.fingerprint(ns)
		out[ns] = readFP{fp, ok}
	}
	return out
}

// readFP is a fingerprint read from the store, and whether it could be.
type readFP struct {
	fp [32]byte
	ok bool
}

// fingerprint reads ns's set fingerprint. A vault that cannot be read (or
// before the store opened) gets an all-ones fingerprint, which differs from
// a readable vault's: it is synced, and read again.
func (r *replicator) fingerprint(ns vault.NamespaceID) ([32]byte, bool) {
	unreadable := [32]byte{0: 0xff, 31: 0xff}
	if r.n.store == nil {
		return unreadable, false
	}
	st, err := r.n.store.Stats(ns)
	if err != nil {
		return unreadable, false
	}
	return st.Fingerprint, true
}

// changed is the store's OnChange: ns's fingerprint is re-read before the
// next exchange. It runs under the store's vault lock, so it only marks.
func (r *replicator) changed(ns vault.NamespaceID) {
	r.mu.Lock()
	r.dirty[ns] = true
	r.mu.Unlock()
}

// refresh re-reads the fingerprints of the vaults that changed and updates
// the digests that hold them.
func (r *replicator) refresh() {
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	r.mu.Lock()
	var list []vault.NamespaceID
	for ns := range r.dirty {
		if _, ok := r.fps[ns]; ok {
			list = append(list, ns)
			delete(r.dirty, ns)
		}
	}
	if len(r.dirty) == 0 {
		r.dirty = map[vault.NamespaceID]bool{} // a map never shrinks: drop a large empty one
	}
	r.mu.Unlock()
	if len(list) == 0 {
		return
	}
	fresh := make([][32]byte, len(list))
	for i, ns := range list {
		var ok bool
		if fresh[i], ok = r.fingerprint(ns); !ok {
			r.changed(ns)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, ns := range list {
		old, ok := r.fps[ns]
		if !ok || old == fresh[i] {
			continue
		}
		r.fps[ns] = fresh[i]
		for _, info := range r.peers[ns] {
			r.pods[info.ID].change(ns, old, fresh[i])
		}
	}
}

// stored is told of entries a session stored in ns, from peer p: the
// vault's replica peers are synced after liveDebounce. Entries that came
// from a seed are not passed on: the pod where they were written pushes to
// every replica peer itself, and the exchange catches what a push missed.
func (r *replicator) stored(p peer.ID, ns vault.NamespaceID, fromSeed bool) {
	if fromSeed {
		return
	}
	r.mu.Lock()
	if len(r.peers[ns]) == 0 {
		r.mu.Unlock()
		return
	}
	if _, ok := r.pushes[ns]; !ok {
		r.pushes[ns] = push{at: time.Now().Add(liveDebounce)}
	}
	r.mu.Unlock()
	r.poke()
}

// syncNow makes every pair of ns due at once (a repaired vault refills).
func (r *replicator) syncNow(ns vault.NamespaceID) {
	now := time.Now()
	r.mu.Lock()
	for _, info := range r.peers[ns] {
		if rep := r.replicas[replicaKey{ns, info.ID}]; rep != nil {
			r.schedule(replicaKey{ns, info.ID}, rep, now, reasonRepair)
		}
	}
	r.mu.Unlock()
	r.poke()
}

// schedule queues the pair's sync at t, unless one is queued sooner; a pair
// whose sync runs syncs again when it ends. r.mu is held.
func (r *replicator) schedule(k replicaKey, rep *replica, t time.Time, reason syncReason) {
	switch {
	case rep.cancel != nil:
		rep.again = reason
	case reason == reasonLive:
		if rep.reason != reasonLive || rep.due.IsZero() {
			rep.due, rep.reason = t, reasonLive
			r.liveQueue = append(r.liveQueue, k)
		}
	case rep.due.IsZero() || t.Before(rep.due):
		rep.due, rep.reason = t, reason
		heap.Push(&r.queue, queued{at: t, k: k, rep: rep})
	}
}

// placed returns the replica peers as last set (callers must not modify them).
func (r *replicator) placed() map[vault.NamespaceID][]peer.AddrInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peers
}

// syncedAt is when pair k was last known in sync: its latest successful
// sync, or the latest exchange with its peer that found it equal. r.mu is held.
func (r *replicator) syncedAt(k replicaKey, rep *replica) time.Time {
	t := time.Time{}
	if rep.inSync {
		t = rep.lastSync
	}
	if p := r.pods[k.peer]; p != nil && !rep.differs && rep.due.IsZero() && rep.cancel == nil &&
		rep.gen <= p.confirmedGen && p.confirmedAt.After(t) {
		t = p.confirmedAt
	}
	return t
}

// syncedPeers counts the replica peers of ns known in sync within the last window.
func (r *replicator) syncedPeers(ns vault.NamespaceID, window time.Duration) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, info := range r.peers[ns] {
		k := replicaKey{ns, info.ID}
		if rep := r.replicas[k]; rep != nil && time.Since(r.syncedAt(k, rep)) < window {
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
		k := replicaKey{ns, info.ID}
		rep := r.replicas[k]
		if rep == nil {
			continue
		}
		st := admin.ReplicaStatus{Peer: info.ID.String(), LastSync: r.syncedAt(k, rep), LastError: rep.lastErr}
		if p := r.pods[info.ID]; st.LastError == "" && p != nil && p.failures > 0 {
			st.LastError = p.lastErr
		}
		out = append(out, st)
	}
	return out
}

// run starts due exchanges and syncs until ctx ends; it wakes when
// something becomes due, when the placement changes and when work ends.
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

// startDue starts what is due (live pushes first, then exchanges, then
// queued syncs, each within its bound) and returns how long until the next
// thing is due.
func (r *replicator) startDue(ctx context.Context) time.Duration {
	now := time.Now()
	wait := r.interval
	r.mu.Lock()
	defer r.mu.Unlock()
	if ctx.Err() != nil {
		return wait
	}
	for ns, p := range r.pushes {
		if d := p.at.Sub(now); d > 0 {
			wait = min(wait, d)
			continue
		}
		delete(r.pushes, ns)
		r.metrics.livePushes.Inc()
		for _, info := range r.peers[ns] {
			k := replicaKey{ns, info.ID}
			if rep := r.replicas[k]; rep != nil && info.ID != p.skip {
				r.schedule(k, rep, now, reasonLive)
			}
		}
	}
	for len(r.liveQueue) > 0 && r.live < maxLiveSyncs {
		k := r.liveQueue[0]
		r.liveQueue = r.liveQueue[1:]
		if rep := r.replicas[k]; rep != nil && rep.reason == reasonLive && !rep.due.IsZero() && rep.cancel == nil {
			r.start(ctx, k, rep)
		}
	}
	for _, p := range r.pods {
		if p.busy {
			continue
		}
		if d := p.due.Sub(now); d > 0 {
			wait = min(wait, d)
			continue
		}
		if r.asking < maxExchanges {
			r.ask(ctx, p)
		}
	}
	for r.queue.Len() > 0 && r.running < maxReplicaSyncs {
		q := r.queue[0]
		if d := q.at.Sub(now); d > 0 {
			wait = min(wait, d)
			break
		}
		heap.Pop(&r.queue)
		if r.replicas[q.k] == q.rep && q.rep.due.Equal(q.at) && q.rep.reason != reasonLive && q.rep.cancel == nil {
			r.start(ctx, q.k, q.rep)
		}
	}
	return wait
}

// start runs one sync of the pair in the background. r.mu is held.
func (r *replicator) start(ctx context.Context, k replicaKey, rep *replica) {
	sctx, cancel := context.WithTimeout(ctx, replicaSyncTimeout)
	reason, isLive := rep.reason, rep.reason == reasonLive
	rep.cancel, rep.due, rep.reason = cancel, time.Time{}, reasonNone
	if isLive {
		r.live++
	} else {
		r.running++
	}
	r.n.wg.Add(1)
	go func() {
		defer r.n.wg.Done()
		defer cancel()
		// Added for a while before each sync, so the addresses of a peer
		// dropped from the placement are soon forgotten.
		r.n.host.Peerstore().AddAddrs(k.peer, rep.addrs, peerstore.TempAddrTTL)
		st, err := r.n.sync.Sync(sctx, k.peer, k.ns, vault.SyncOptions{})
		r.finish(ctx, k, rep, isLive, reason, st, err)
	}()
}

// finish records a sync's outcome: a failed pair is retried with backoff,
// one that changed meanwhile syncs again. Syncs of pairs no longer placed,
// or ended by shutdown, leave no trace.
func (r *replicator) finish(ctx context.Context, k replicaKey, rep *replica, isLive bool, reason syncReason, st vault.SyncStats, err error) {
	defer r.poke()
	result := "ok"
	if err != nil {
		result = "error"
	}
	r.metrics.syncs.WithLabelValues(reason.String(), result).Inc()
	r.mu.Lock()
	if isLive {
		r.live--
	} else {
		r.running--
	}
	rep.cancel = nil
	again := rep.again
	rep.again = reasonNone
	if r.replicas[k] != rep || ctx.Err() != nil {
		r.mu.Unlock()
		return
	}
	now := time.Now()
	wasInSync := rep.inSync
	if err == nil {
		rep.inSync, rep.failures, rep.lastSync, rep.lastErr, rep.differs = true, 0, now, "", false
	} else {
		rep.inSync, rep.lastErr = false, err.Error()
		rep.failures++
		r.schedule(k, rep, now.Add(replicaBackoff(int(rep.failures))), reasonRetry)
	}
	if again != reasonNone {
		r.schedule(k, rep, now, again)
	}
	failures, retry := rep.failures, rep.due.Sub(now)
	r.mu.Unlock()

	log := r.n.log.With("vault", k.ns.Short(), "peer", k.peer)
	switch {
	case err == nil && !wasInSync:
		log.Info("replica in sync with peer", "received", st.ItemsReceived, "sent", st.ItemsSent,
			"refused", st.Refused, "peerRefused", st.PeerRefused)
	case err == nil:
		log.Debug("replica synced", "received", st.ItemsReceived, "sent", st.ItemsSent, "took", st.Duration, "why", reason.String())
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

// queued is a pair in the queue, at the time it was queued for; an entry
// whose pair was since queued for another time, started or dropped is
// skipped when it comes up.
type queued struct {
	at  time.Time
	k   replicaKey
	rep *replica
}

// replicaQueue is a min-heap of queued pairs by time (container/heap).
type replicaQueue []queued

func (q replicaQueue) Len() int           { return len(q) }
func (q replicaQueue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q replicaQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *replicaQueue) Push(x any)        { *q = append(*q, x.(queued)) }
func (q *replicaQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}
