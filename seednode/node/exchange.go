package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	msmux "github.com/multiformats/go-multistream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/internal/wire"
	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// ExchangeProtocol is the replica digest protocol: two seeds compare, in
// one exchange, every (vault, fingerprint) pair they share (the vaults
// whose placement on each names the other), and learn which vaults differ.
//
// The asker sends the root of its digest (fleet.Digest, under its own key:
// a random secret of its process, so no device can choose fingerprints
// whose hashes cancel). The answerer keeps a digest of the same vaults
// under that key, updated as fingerprints change; equal roots end the
// exchange with one round trip and no per-vault work. Otherwise the
// answerer sends its 4,096 buckets, the asker names the buckets that
// differ and lists its pairs in them, and the answerer lists its own: both
// sides now know the differing vaults. The asker syncs them; the answerer
// syncs only those the asker did not list (its placement does not name
// the answerer for them). A seed answers only its replica peers, and only
// about the vaults it shares with the asker.
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
	exchangeMemory = 3 * maxExchangeFrame
	// maxExchangeVaults bounds the pairs one side reads in one exchange.
	maxExchangeVaults = 1 << 24
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
	r.n.wg.Add(1)
	go func() {
		defer r.n.wg.Done()
		outcome, err := r.askPeer(ctx, p.id, p.info)
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
			r.n.log.Debug("replica digest exchange failed", "peer", p.id, "outcome", outcome, "err", err)
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
	rd, w := bufio.NewReader(s), bufio.NewWriter(s)
	if err := writeMsg(w, appendHello(nil, r.key, root)); err != nil {
		return outcomeError, err
	}
	m, err := readMsg(rd)
	if err != nil {
		return outcomeError, err
	}
	switch m.kind {
	case msgEqual:
		r.settle(p, started, nil, nil, true)
		return outcomeEqual, nil
	case msgRefused:
		return outcomeRefused, nil
	case msgBuckets:
	default:
		return outcomeError, fmt.Errorf("%w: message of kind %d after hello", ErrExchangeProtocol, m.kind)
	}
	asked := r.diffBuckets(p, m.buckets)
	if len(asked) == 0 { // equal since the hello
		r.settle(p, started, nil, nil, true)
		return outcomeEqual, s.CloseWrite()
	}
	mine := r.sharedIn(p, asked)
	if err := writeMsg(w, appendAsk(nil, asked)); err != nil {
		return outcomeError, err
	}
	if err := writeItems(w, mine); err != nil {
		return outcomeError, err
	}
	theirs, err := r.readItems(rd, p, asked)
	if err != nil {
		return outcomeError, err
	}
	if r.settle(p, started, mine, theirs, true) == 0 {
		return outcomeEqual, nil
	}
	return outcomeDiffer, nil
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
	rd, w := bufio.NewReader(s), bufio.NewWriter(s)
	hello, err := readMsg(rd)
	if err == nil && hello.kind != msgHello {
		err = fmt.Errorf("%w: message of kind %d first, want hello", ErrExchangeProtocol, hello.kind)
	}
	if err != nil {
		return outcomeError, err
	}
	r.mu.Lock()
	known := r.pods[p] != nil
	r.mu.Unlock()
	if !known {
		err := writeMsg(w, appendRefused(nil, "this seed names you as a replica peer of none of its vaults: "+
			"place the vaults with this seed as a peer on both seeds, or sync them one by one"))
		return outcomeRefused, err
	}
	r.refresh()
	root, buckets, started, ok := r.theirDigest(p, hello.key)
	if !ok {
		return outcomeRefused, writeMsg(w, appendRefused(nil, "no longer a replica peer"))
	}
	if root == hello.root {
		r.settle(p, started, nil, nil, false)
		return outcomeEqual, writeMsg(w, []byte{msgEqual})
	}
	if err := writeMsg(w, buckets); err != nil {
		return outcomeError, err
	}
	ask, err := readMsg(rd)
	if errors.Is(err, io.EOF) { // the asker found nothing differing
		r.settle(p, started, nil, nil, false)
		return outcomeEqual, nil
	}
	if err == nil && ask.kind != msgAsk {
		err = fmt.Errorf("%w: message of kind %d after buckets, want ask", ErrExchangeProtocol, ask.kind)
	}
	if err != nil {
		return outcomeError, err
	}
	theirs, err := r.readItems(rd, p, ask.ask)
	if err != nil {
		return outcomeError, err
	}
	mine := r.sharedIn(p, ask.ask)
	if err := writeItems(w, mine); err != nil {
		return outcomeError, err
	}
	if r.settle(p, started, mine, theirs, false) == 0 {
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
	return pp.theirs.Root(), appendBuckets(nil, pp.theirs), r.gen, true
}

// diffBuckets lists the buckets of p's digest (under this pod's key) that
// differ from this pod's.
func (r *replicator) diffBuckets(p peer.ID, theirs []digestBucket) []uint16 {
	r.mu.Lock()
	defer r.mu.Unlock()
	pp := r.pods[p]
	if pp == nil {
		return nil
	}
	var out []uint16
	for i, b := range theirs {
		if h, c := pp.mine.Bucket(i); h != b.hash || c != b.count {
			out = append(out, uint16(i))
		}
	}
	return out
}

// bucketSet is a set of digest buckets.
type bucketSet [fleet.DigestBuckets]bool

func newBucketSet(list []uint16) *bucketSet {
	var s bucketSet
	for _, b := range list {
		s[b] = true
	}
	return &s
}

// sharedIn lists the pairs this pod shares with p in the given buckets.
func (r *replicator) sharedIn(p peer.ID, buckets []uint16) []vaultFP {
	in := newBucketSet(buckets)
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []vaultFP
	for ns, infos := range r.peers {
		if in[fleet.BucketOf(ns)] && containsPeer(infos, p) {
			out = append(out, vaultFP{ns: ns, fp: r.fps[ns]})
		}
	}
	return out
}

// readItems reads p's pairs up to the end message: each must fall in an
// asked bucket. It keeps those of vaults this pod shares with p (the others
// are none of its business), so what it holds is bounded by its own set.
func (r *replicator) readItems(rd *bufio.Reader, p peer.ID, buckets []uint16) (map[vault.NamespaceID][32]byte, error) {
	in := newBucketSet(buckets)
	out := map[vault.NamespaceID][32]byte{}
	read := 0
	for {
		m, err := readMsg(rd)
		if err != nil {
			return nil, err
		}
		switch m.kind {
		case msgEnd:
			return out, nil
		case msgItems:
		default:
			return nil, fmt.Errorf("%w: message of kind %d among items", ErrExchangeProtocol, m.kind)
		}
		if read += len(m.items); read > maxExchangeVaults {
			return nil, fmt.Errorf("%w: more than %d vaults listed", ErrExchangeProtocol, maxExchangeVaults)
		}
		r.mu.Lock()
		for _, it := range m.items {
			if !in[fleet.BucketOf(it.ns)] {
				r.mu.Unlock()
				return nil, fmt.Errorf("%w: vault %s listed outside the asked buckets", ErrExchangeProtocol, vault.NamespaceID(it.ns).Short())
			}
			if containsPeer(r.peers[it.ns], p) {
				out[it.ns] = it.fp
			}
		}
		r.mu.Unlock()
	}
}

// settle records an exchange with p that began under placement started: mine are this
// pod's pairs in the buckets that differed, theirs p's. It returns how many
// vaults differ. Of those, the asker syncs every one; the answerer only
// those the asker did not list. Every pair the exchange did not find
// differing is in sync as of now.
func (r *replicator) settle(p peer.ID, started uint32, mine []vaultFP, theirs map[vault.NamespaceID][32]byte, asker bool) int {
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
		fp, listed := theirs[it.ns]
		if listed && fp == it.fp {
			continue
		}
		k := replicaKey{it.ns, p}
		rep := r.replicas[k]
		if rep == nil {
			continue
		}
		differ++
		rep.differs = true
		pp.differing[it.ns] = true
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

func readMsg(rd *bufio.Reader) (exchangeMsg, error) {
	body, err := wire.ReadFrame(rd, maxExchangeFrame, ErrExchangeProtocol)
	if err != nil {
		return exchangeMsg{}, err
	}
	return decodeExchangeMsg(body)
}

func writeMsg(w *bufio.Writer, body []byte) error {
	if err := wire.WriteFrame(w, body); err != nil {
		return err
	}
	return w.Flush()
}

// writeItems sends pairs in frames of at most maxExchangeItems, then end.
func writeItems(w *bufio.Writer, items []vaultFP) error {
	for len(items) > 0 {
		n := min(len(items), maxExchangeItems)
		if err := wire.WriteFrame(w, appendItems(nil, items[:n])); err != nil {
			return err
		}
		items = items[n:]
	}
	return writeMsg(w, []byte{msgEnd})
}
