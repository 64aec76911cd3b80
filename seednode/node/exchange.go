package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	msmux "github.com/multiformats/go-multistream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// ExchangeProtocol is the replica digest protocol: two seeds compare, in
// one exchange, every (vault, fingerprint) pair they share (the vaults
// whose placement on each names the other), and learn which vaults differ.
// It is a digest exchange (seednode/fleet: fleet.Ask, fleet.Answer) over
// those pairs; the asker's key is a random secret of its process, so no
// device can choose fingerprints whose hashes cancel. The answerer keeps a
// digest of the shared vaults under the asker's key, updated as
// fingerprints change, so equal roots end the exchange with one round trip
// and no per-vault work. The asker syncs every differing vault; the
// answerer syncs only those the asker did not list (its placement does not
// name the answerer for them). A seed answers only its replica peers, and
// only about the vaults it shares with the asker.
//
// Of each pair of seeds, the one with the lower peer ID asks every
// replicateInterval; the other asks only when it was not asked for twice
// that, so steady state costs one round trip per pair of seeds per
// interval, whatever the number of vaults. A seed that does not speak the
// protocol, or that refuses (its placement names this seed for no vault),
// has its pairs synced every interval, one session each, as before the
// protocol existed.
const ExchangeProtocol = protocol.ID("/seedfleet/replica-digest/1.0.0")

const (
	// exchangeTimeout bounds a whole exchange.
	exchangeTimeout = 30 * time.Second
	// exchangeMemory is reserved per exchange stream: the largest frame,
	// read and written, and the buffers.
	exchangeMemory = 3 * fleet.MaxExchangeFrame
	// maxRefusals is how many refusals in a row (1 s, 2 s apart) make this
	// seed sync a peer's vaults one by one.
	maxRefusals = 3
)

// Outcomes of an exchange (the label of seedfleet_replica_exchanges_total).
const (
	outcomeEqual       = "equal"
	outcomeDiffer      = "differ"
	outcomeRefused     = "refused"     // the peer names this seed for no vault
	outcomeUnsupported = "unsupported" // the peer does not speak the protocol
	outcomeError       = "error"
)

// replicaMetrics count the replicator's work, with bounded labels only.
type replicaMetrics struct {
	exchanges  *prometheus.CounterVec
	differing  prometheus.Counter
	livePushes prometheus.Counter
	syncs      *prometheus.CounterVec
}

func newReplicaMetrics() *replicaMetrics {
	return &replicaMetrics{
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seedfleet_replica_exchanges_total",
			Help: "Replica digest exchanges, by role (ask, answer) and outcome (equal, differ, refused, unsupported, error)."},
			[]string{"role", "outcome"}),
		differing: prometheus.NewCounter(prometheus.CounterOpts{Name: "seedfleet_replica_vaults_differing_total",
			Help: "Vaults that replica digest exchanges found differing between this seed and a replica peer."}),
		livePushes: prometheus.NewCounter(prometheus.CounterOpts{Name: "seedfleet_replica_live_pushes_total",
			Help: "Changed vaults pushed to their replica peers at once (after a short debounce)."}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seedfleet_replica_syncs_total",
			Help: "Replica sync sessions this seed started, by reason (differ, live, retry, repair, nodigest) and result."},
			[]string{"reason", "result"}),
	}
}

func (m *replicaMetrics) register(reg prometheus.Registerer) error {
	return register(reg, m.exchanges, m.differing, m.livePushes, m.syncs)
}

// serve answers exchanges.
func (r *replicator) serve() { r.n.host.SetStreamHandler(ExchangeProtocol, r.handle) }

// exchangeAfter is how long after an exchange with p this pod asks again.
func (r *replicator) exchangeAfter(p peer.ID) time.Duration {
	if r.n.self < p {
		return r.interval
	}
	return 2 * r.interval
}

// ask starts an exchange with p in the background. r.mu is held.
func (r *replicator) ask(ctx context.Context, p *replicaPeer) {
	p.busy = true
	r.asking++
	// The peer's address may change under r.mu meanwhile (set): the
	// exchange dials what it was when it started.
	id, info := p.id, p.info
	r.n.wg.Add(1)
	go func() {
		defer r.n.wg.Done()
		outcome, err := r.askPeer(ctx, id, info)
		r.metrics.exchanges.WithLabelValues("ask", outcome).Inc()
		r.mu.Lock()
		r.asking--
		p.busy = false
		now := time.Now()
		switch {
		case ctx.Err() != nil:
		case outcome == outcomeRefused && p.refusals < maxRefusals-1:
			// A peer starting up refuses until its placement is read: ask
			// again soon, rather than sync every vault one by one.
			p.refusals++
			p.due = now.Add(replicaBackoff(p.refusals))
		case outcome == outcomeRefused || outcome == outcomeUnsupported:
			// Sync every pair itself, as before the protocol.
			p.failures, p.lastErr, p.due = 0, "", now.Add(r.interval)
			for ns := range r.peers {
				k := replicaKey{ns, p.id}
				if rep := r.replicas[k]; rep != nil && rep.failures == 0 {
					r.schedule(k, rep, now, reasonNoDigest)
				}
			}
		case err != nil:
			p.failures++
			p.lastErr = err.Error()
			p.due = now.Add(min(replicaBackoff(p.failures), r.interval))
		}
		r.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			r.n.log.Debug("replica digest exchange failed", "peer", id, "outcome", outcome, "err", err)
		}
		r.poke()
	}()
}

// askPeer runs one exchange with p as the asker.
func (r *replicator) askPeer(ctx context.Context, p peer.ID, info peer.AddrInfo) (string, error) {
	r.refresh()
	r.n.host.Peerstore().AddAddrs(p, info.Addrs, peerstore.TempAddrTTL)
	ctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
	defer cancel()
	s, err := r.n.host.NewStream(ctx, p, ExchangeProtocol)
	if errors.Is(err, msmux.ErrNotSupported[protocol.ID]{}) {
		return outcomeUnsupported, nil
	}
	if err != nil {
		return outcomeError, fmt.Errorf("replica digest exchange with %s: %w", p, err)
	}
	outcome, err := r.askOn(s, p)
	if err != nil {
		s.Reset()
		return outcome, fmt.Errorf("replica digest exchange with %s: %w", p, err)
	}
	return outcome, s.Close()
}

func (r *replicator) askOn(s network.Stream, p peer.ID) (string, error) {
	if err := s.Scope().ReserveMemory(exchangeMemory, network.ReservationPriorityMedium); err != nil {
		return outcomeError, err
	}
	defer s.Scope().ReleaseMemory(exchangeMemory)
	_ = s.SetDeadline(time.Now().Add(exchangeTimeout))
	r.mu.Lock()
	started := r.gen
	pp := r.pods[p]
	if pp == nil {
		r.mu.Unlock()
		return outcomeEqual, nil // no longer a replica peer
	}
	root := pp.mine.Root()
	r.mu.Unlock()
	res, err := fleet.Ask(s, r.key, root, r.side(p))
	switch {
	case err != nil:
		return outcomeError, err
	case res.Refused != "":
		return outcomeRefused, nil
	case r.settle(p, started, res.Mine, res.Theirs, true) == 0:
		return outcomeEqual, nil
	}
	return outcomeDiffer, nil
}

// side is this pod's view of the vaults it shares with p, for an exchange.
func (r *replicator) side(p peer.ID) fleet.ExchangeSide {
	return fleet.ExchangeSide{
		Diff: func(theirs []fleet.DigestBucket) []uint16 { return r.diffBuckets(p, theirs) },
		In:   func(buckets []uint16) []fleet.Pair { return r.sharedIn(p, buckets) },
		Keep: func(it fleet.Pair) bool { return r.isPeer(it.Key, p) },
	}
}

// handle answers an exchange. It counts in the node's wait group (added
// before the node's context is checked: a Close that began waits for it,
// one that ended is seen), as it uses the store.
func (r *replicator) handle(s network.Stream) {
	r.n.wg.Add(1)
	defer r.n.wg.Done()
	if r.n.ctx.Err() != nil {
		s.Reset()
		return
	}
	if err := s.Scope().ReserveMemory(exchangeMemory, network.ReservationPriorityMedium); err != nil {
		s.Reset()
		return
	}
	defer s.Scope().ReleaseMemory(exchangeMemory)
	outcome, err := r.answer(s)
	r.metrics.exchanges.WithLabelValues("answer", outcome).Inc()
	if err != nil {
		r.n.log.Debug("replica digest exchange not answered", "peer", s.Conn().RemotePeer(), "err", err)
		s.Reset()
		return
	}
	s.Close()
}

func (r *replicator) answer(s network.Stream) (string, error) {
	_ = s.SetDeadline(time.Now().Add(exchangeTimeout))
	p := s.Conn().RemotePeer()
	var started uint32
	side := r.side(p)
	side.Digest = func(key [32]byte) (root [32]byte, buckets []byte, refusal string) {
		r.mu.Lock()
		known := r.pods[p] != nil
		r.mu.Unlock()
		if !known {
			return root, nil, "this seed names you as a replica peer of none of its vaults: " +
				"place the vaults with this seed as a peer on both seeds, or sync them one by one"
		}
		r.refresh()
		root, buckets, started, known = r.theirDigest(p, key)
		if !known {
			return root, nil, "no longer a replica peer"
		}
		return root, buckets, ""
	}
	res, err := fleet.Answer(s, side)
	switch {
	case err != nil:
		return outcomeError, err
	case res.Refused != "":
		return outcomeRefused, nil
	case r.settle(p, started, res.Mine, res.Theirs, false) == 0:
		return outcomeEqual, nil
	}
	return outcomeDiffer, nil
}

// theirDigest returns the root and the buckets message of the digest of
// what this pod shares with p, under p's key: kept, or built now if p asks
// under a new key (it restarted), and the placement it reflects. ok is
// false if p is not a replica peer.
func (r *replicator) theirDigest(p peer.ID, key [32]byte) (root [32]byte, buckets []byte, gen uint32, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pp := r.pods[p]
	if pp == nil {
		return root, nil, 0, false
	}
	if pp.theirs == nil || pp.theirKey != key {
		pp.theirs, pp.theirKey = fleet.NewDigest(key), key
		for ns, infos := range r.peers {
			if containsPeer(infos, p) {
				pp.theirs.Add(ns, r.fps[ns])
			}
		}
	}
	return pp.theirs.Root(), fleet.AppendBuckets(nil, pp.theirs), r.gen, true
}

// diffBuckets lists the buckets of p's digest (under this pod's key) that
// differ from this pod's.
func (r *replicator) diffBuckets(p peer.ID, theirs []fleet.DigestBucket) []uint16 {
	r.mu.Lock()
	defer r.mu.Unlock()
	pp := r.pods[p]
	if pp == nil {
		return nil
	}
	return pp.mine.DiffBucketList(theirs)
}

// sharedIn lists the pairs this pod shares with p in the given buckets.
func (r *replicator) sharedIn(p peer.ID, buckets []uint16) []fleet.Pair {
	in := fleet.InBuckets(buckets)
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []fleet.Pair
	for ns, infos := range r.peers {
		if in(ns) && containsPeer(infos, p) {
			out = append(out, fleet.Pair{Key: ns, Value: r.fps[ns]})
		}
	}
	return out
}

// settle records an exchange with p that began under placement started: mine are this
// pod's pairs in the buckets that differed, theirs p's. It returns how many
// vaults differ (a vault empty here that p does not list does not). Of those, the asker syncs every one; the answerer only
// those the asker did not list. Every pair the exchange did not find
// differing is in sync as of now.
func (r *replicator) settle(p peer.ID, started uint32, mine []fleet.Pair, theirs map[[32]byte][32]byte, asker bool) int {
	now := time.Now()
	r.mu.Lock()
	pp := r.pods[p]
	if pp == nil {
		r.mu.Unlock()
		return 0
	}
	pp.confirmedGen, pp.confirmedAt = started, now
	pp.failures, pp.lastErr, pp.refusals = 0, "", 0
	pp.due = now.Add(r.exchangeAfter(p))
	for ns := range pp.differing {
		if rep := r.replicas[replicaKey{ns, p}]; rep != nil {
			rep.differs = false
		}
	}
	clear(pp.differing)
	differ := 0
	for _, it := range mine {
		fp, listed := theirs[it.Key]
		if listed && fp == it.Value {
			continue
		}
		k := replicaKey{it.Key, p}
		rep := r.replicas[k]
		if rep == nil {
			continue
		}
		rep.differs = true
		pp.differing[it.Key] = true
		if !listed && it.Value == (vault.Hash{}) {
			// Empty here and not placed there yet (a vault just admitted
			// reaches the pods one by one): not in sync with p, but this
			// pod has nothing to give, and once p places it the next
			// exchange compares.
			continue
		}
		differ++
		if (asker || !listed) && rep.failures == 0 { // a failing pair keeps its backoff
			r.schedule(k, rep, now, reasonDiffer)
		}
	}
	r.mu.Unlock()
	r.metrics.differing.Add(float64(differ))
	r.repairBlobsWith(p)
	r.poke()
	return differ
}

// repairBlobsWith fetches from p the missing blobs of the vaults the two
// share: a sync no longer runs every interval to do it. It looks for them
// at most every repairEvery (the look visits every counted vault).
func (r *replicator) repairBlobsWith(p peer.ID) {
	c := r.n.blobCounts
	r.mu.Lock()
	due := c != nil && time.Since(r.repairScan[p]) >= repairEvery
	if due {
		r.repairScan[p] = time.Now()
	}
	r.mu.Unlock()
	if !due {
		return
	}
	c.mu.Lock()
	var lacking []vault.NamespaceID
	for ns, bc := range c.counts {
		if bc.missing > 0 {
			lacking = append(lacking, ns)
		}
	}
	c.mu.Unlock()
	for _, ns := range lacking {
		if r.isPeer(ns, p) {
			r.n.repairBlobs(p, ns, r.interval)
		}
	}
}
