package hosting

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	msmux "github.com/multiformats/go-multistream"

	"github.com/seedfleet/seedfleet/internal/wire"
	"github.com/seedfleet/seedfleet/seednode/fleet"
)

// RecordProtocol is the record digest exchange: anti-entropy for the
// hosting records between the pods of a fleet, so that a record a batch
// never delivered (the pod was down or restarting), a release or a quota
// change made while a pod was away, or a whole store lost with its volume,
// reaches every home pod without a new request.
//
// Each pod keeps, per peer pod, a keyed set digest (fleet.Digest) of the
// (subject, version) pairs of the records it holds whose home pods include
// both: the version (Record.Version) is the subject kind and the time of
// the newest request applied, which the subject signed, so home pods that
// applied the same requests agree on it. The digests are updated on every
// record change (Records.OnChange), one hash each. Two pods compare them
// in a digest exchange (fleet.Ask, fleet.Answer): equal roots cost one
// round trip; otherwise the differing buckets' pairs are listed, and each
// side sends, through the record batches (itemRecord, fanout.go), the
// records the other lacks or holds older. The receiver stores a record
// only if it is a home pod of the subject and holds nothing newer
// (Records.Copy).
//
// Rules:
//   - A release of every vault leaves a tombstone (Record.Released) with the
//     release's request time, newer than any record it replaces, so a pod
//     that was away applies the release (and drops the vaults' data) and
//     never brings the old record back. A tombstone is purged
//     ReleasedLifetime after the release; a pod away longer than that must
//     start on an empty records store.
//   - Idle expiry is each pod's own decision and keeps the version: the
//     exchange neither spreads it nor undoes it.
//   - Two records with the same version are not compared further (their
//     admission times differ by the pods' clocks).
//
// Schedule: of each pair of pods, the one with the lower peer ID asks every
// interval (jittered by a tenth); the other asks when it was not asked for
// twice that. Every pod asks each peer soon after it starts and soon after
// a peer connects (it may have restarted). Only the fleet's listed pods may
// ask (see the package doc, "Trust between pods"); an exchange holds at
// most three frames of fleet.MaxExchangeFrame.
const RecordProtocol = protocol.ID("/seedfleet/record-digest/1.0.0")

const (
	// DefaultRecordSyncInterval is how often a pod compares records with
	// each peer pod (WithRecordSync).
	DefaultRecordSyncInterval = 30 * time.Second
	// recordSyncSoon is how long after start, or after a peer connects,
	// the pod compares records with it.
	recordSyncSoon = time.Second
	// recordExchangeTimeout bounds one exchange.
	recordExchangeTimeout = 30 * time.Second
	// recordExchangeMemory is reserved per exchange stream.
	recordExchangeMemory = 3 * fleet.MaxExchangeFrame
	// maxRecordAsks and maxRecordAnswers bound the exchanges a pod asks
	// and answers at once; an asker turned away asks again later.
	maxRecordAsks    = 2
	maxRecordAnswers = 8
)

// heldRecord is what the record sync keeps of one record held here: its
// version and the other home pods (ordinals) that share it.
type heldRecord struct {
	version [32]byte
	peers   []int
}

// recordPeer is what the record sync keeps per peer pod.
type recordPeer struct {
	info peer.AddrInfo
	// mine is the shared set under this pod's key; theirs under the
	// peer's key, built when the peer first asks.
	mine     *fleet.Digest
	theirs   *fleet.Digest
	theirKey [32]byte
	due      time.Time // of this pod's next exchange with the peer
	busy     bool
}

// update moves a subject's pair in both digests: had and has say whether
// the peer shared it before and after, old and new its versions.
func (p *recordPeer) update(subject, old, new [32]byte, had, has bool) {
	for _, d := range []*fleet.Digest{p.mine, p.theirs} {
		switch {
		case d == nil:
		case had && has:
			d.Change(subject, old, new)
		case had:
			d.Remove(subject, old)
		case has:
			d.Add(subject, new)
		}
	}
}

// recordSync is the record exchange of one pod.
type recordSync struct {
	s        *Service
	interval time.Duration
	key      [32]byte
	wake     chan struct{}
	answers  chan struct{} // exchanges answered at once

	mu      sync.Mutex
	members fleet.Members
	held    map[[32]byte]heldRecord
	peers   map[int]*recordPeer // by ordinal
}

// newRecordSync indexes every record held and starts the exchange. It
// runs before the service answers anything, so no record changes meanwhile.
func newRecordSync(s *Service, interval time.Duration) (*recordSync, error) {
	rs := newRecordIndex(s.cfg.members(), interval)
	rs.s = s
	records := s.adm.records
	if err := records.Each(func(rec *Record) bool {
		rs.changed(rec.Subject, nil, rec)
		return true
	}); err != nil {
		return nil, fmt.Errorf("hosting records unreadable: %w", err)
	}
	records.OnChange(rs.changed)
	return rs, nil
}

// newRecordIndex returns a record sync for members with nothing indexed,
// every peer due soon.
func newRecordIndex(m fleet.Members, interval time.Duration) *recordSync {
	rs := &recordSync{interval: interval, wake: make(chan struct{}, 1),
		answers: make(chan struct{}, maxRecordAnswers), held: map[[32]byte]heldRecord{}}
	rand.Read(rs.key[:])
	rs.setPeers(m)
	return rs
}

// setPeers makes m the membership, with nothing indexed: a peer pod that
// keeps its ordinal keeps its schedule; every other is due soon. rs.mu is
// held (or rs not yet shared).
func (rs *recordSync) setPeers(m fleet.Members) {
	soon := time.Now().Add(recordSyncSoon)
	peers := make(map[int]*recordPeer, len(m.Pods))
	for o, info := range m.Pods {
		if o == m.Self {
			continue
		}
		// The same peer keeps its recordPeer: an exchange in flight ends on it.
		p := rs.peers[o]
		if p == nil || p.info.ID != info.ID {
			p = &recordPeer{due: soon}
		}
		p.info, p.mine, p.theirs = info, fleet.NewDigest(rs.key), nil
		if p.due.IsZero() || p.due.After(soon) {
			p.due = soon
		}
		peers[o] = p
	}
	rs.members, rs.peers, rs.held = m, peers, map[[32]byte]heldRecord{}
}

// setMembers indexes every record held anew under the membership m. It
// holds the index while it reads the records, so a record that changes
// meanwhile is indexed again after it (changed is idempotent).
func (rs *recordSync) setMembers(m fleet.Members) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.setPeers(m)
	if err := rs.s.adm.records.Each(func(rec *Record) bool {
		rs.index(rec.Subject, rec)
		return true
	}); err != nil {
		// Records that cannot be read cannot be sent either: the exchange
		// goes on with those indexed.
		rs.s.cfg.log.Error("hosting: records not indexed for the new membership", "err", err)
	}
	rs.poke()
}

// peerOf returns id's ordinal and recordPeer if it is a peer pod (a member
// other than this pod); rs.mu is held.
func (rs *recordSync) peerOf(id peer.ID) (int, *recordPeer) {
	o, ok := rs.members.IsMember(id)
	if !ok || o == rs.members.Self {
		return -1, nil
	}
	return o, rs.peers[o]
}

// homePeers lists the other home pods of a subject, or none if this pod is
// not one of them. rs.mu is held.
func (rs *recordSync) homePeers(kind SubjectKind, subject ed25519.PublicKey) []int {
	m := rs.members
	home := m.Home(PlacementKey(kind, subject))
	if !slices.Contains(home, m.Self) {
		return nil
	}
	return slices.DeleteFunc(home, func(o int) bool { return o == m.Self })
}

// changed is the records' OnChange: the subject's pair moves in the
// digests of the peers it is shared with. It reads what it held before
// from its own index, not from old, so indexing a record twice is harmless.
func (rs *recordSync) changed(subject ed25519.PublicKey, _, rec *Record) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.index(subject, rec)
}

// index is changed with rs.mu held.
func (rs *recordSync) index(subject ed25519.PublicKey, rec *Record) {
	var next heldRecord
	if rec != nil {
		next = heldRecord{version: rec.Version(), peers: rs.homePeers(rec.Kind, rec.Subject)}
	}
	key := [32]byte(subject)
	prev, had := rs.held[key]
	if len(next.peers) == 0 {
		delete(rs.held, key)
	} else {
		rs.held[key] = next
	}
	for o, p := range rs.peers {
		p.update(key, prev.version, next.version, had && slices.Contains(prev.peers, o), slices.Contains(next.peers, o))
	}
}

// side is this pod's view of the records it shares with pod o, p.
func (rs *recordSync) side(o int, p *recordPeer) fleet.ExchangeSide {
	return fleet.ExchangeSide{
		Diff: func(theirs []fleet.DigestBucket) []uint16 {
			rs.mu.Lock()
			defer rs.mu.Unlock()
			return p.mine.DiffBucketList(theirs)
		},
		Digest: func(key [32]byte) ([32]byte, []byte, string) { return rs.theirDigest(o, p, key) },
		In:     func(buckets []uint16) []fleet.Pair { return rs.sharedIn(o, buckets) },
		Keep:   func(it fleet.Pair) bool { return rs.shares(o, it) },
	}
}

// theirDigest is the set shared with pod o under o's key: kept, or built
// now if o asks under a new key (it restarted) or the membership changed.
func (rs *recordSync) theirDigest(o int, p *recordPeer, key [32]byte) ([32]byte, []byte, string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if p.theirs == nil || p.theirKey != key {
		p.theirs, p.theirKey = fleet.NewDigest(key), key
		for subject, h := range rs.held {
			if slices.Contains(h.peers, o) {
				p.theirs.Add(subject, h.version)
			}
		}
	}
	return p.theirs.Root(), fleet.AppendBuckets(nil, p.theirs), ""
}

// sharedIn lists the records shared with pod o in the buckets.
func (rs *recordSync) sharedIn(o int, buckets []uint16) []fleet.Pair {
	in := fleet.InBuckets(buckets)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var out []fleet.Pair
	for subject, h := range rs.held {
		if in(subject) && slices.Contains(h.peers, o) {
			out = append(out, fleet.Pair{Key: subject, Value: h.version})
		}
	}
	return out
}

// shares reports whether a subject pod o listed has both pods among its
// home pods: what this pod should hold too, whether it does or not.
func (rs *recordSync) shares(o int, it fleet.Pair) bool {
	kind := SubjectKind(it.Value[0])
	if kind != SubjectAgent && kind != SubjectVault {
		return false
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return slices.Contains(rs.homePeers(kind, ed25519.PublicKey(it.Key[:])), o)
}

// versionTime is the request time a version carries, in microseconds.
func versionTime(v [32]byte) uint64 { return binary.BigEndian.Uint64(v[1:9]) }

// repair sends the pod at p the records this pod holds that it lacks or
// holds older, as an exchange found them, and returns how many it sent.
func (rs *recordSync) repair(ctx context.Context, p peer.AddrInfo, res fleet.ExchangeResult) int {
	sent := 0
	for _, it := range res.Mine {
		if theirs, ok := res.Theirs[it.Key]; ok && versionTime(theirs) >= versionTime(it.Value) {
			continue
		}
		rec, err := rs.s.adm.records.Get(ed25519.PublicKey(it.Key[:]))
		if err != nil || rec == nil || rec.purgeable(time.Now()) {
			continue
		}
		item := batchItem{typ: itemRecord, body: wire.AppendLenBytes(nil, rec.encode())}
		if err := rs.s.enqueue(ctx, p, item); err != nil {
			break
		}
		sent++
	}
	rs.s.m.recordRepairs.WithLabelValues("sent").Add(float64(sent))
	return sent
}

// exchangeAfter is how long after an exchange with pod p this pod asks
// again: the interval if it is the pair's asker, else twice that, with a
// tenth of jitter so that the pairs of a fleet do not ask in step. rs.mu
// is held.
func (rs *recordSync) exchangeAfter(p *recordPeer) time.Duration {
	d := rs.interval
	if p.info.ID < rs.members.Pods[rs.members.Self].ID {
		d *= 2
	}
	return d + time.Duration(mrand.Int64N(int64(rs.interval/10)+1))
}

func (rs *recordSync) poke() {
	select {
	case rs.wake <- struct{}{}:
	default:
	}
}

// run asks the peer pods that are due until the service closes.
func (rs *recordSync) run() {
	defer rs.s.life.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-rs.s.ctx.Done():
			return
		case <-t.C:
		case <-rs.wake:
		}
		t.Reset(rs.startDue())
	}
}

// startDue starts the exchanges that are due and returns how long until
// the next one is.
func (rs *recordSync) startDue() time.Duration {
	now := time.Now()
	next := rs.interval
	rs.mu.Lock()
	defer rs.mu.Unlock()
	running := 0
	for _, p := range rs.peers {
		if p.busy {
			running++
		}
	}
	for o, p := range rs.peers {
		switch {
		case p.busy:
		case p.due.After(now):
			next = min(next, p.due.Sub(now))
		case running < maxRecordAsks && rs.s.life.Enter():
			p.busy = true
			running++
			go rs.ask(o, p)
		default:
			next = min(next, 100*time.Millisecond)
		}
	}
	return next
}

// ask runs one exchange with pod o (p) as the asker, then sends what o
// lacks; the next exchange with o waits for that.
func (rs *recordSync) ask(o int, p *recordPeer) {
	defer rs.s.life.Done()
	rs.mu.Lock()
	info := p.info
	rs.mu.Unlock()
	outcome, res, err := rs.askPeer(o, p, info)
	rs.s.m.recordExchanges.WithLabelValues("ask", outcome).Inc()
	if err != nil {
		rs.s.cfg.log.Debug("hosting: record exchange failed", "pod", info.ID, "outcome", outcome, "err", err)
	} else {
		rs.repair(rs.s.ctx, info, res)
	}
	// A pod that is down is asked again at the next interval, or as soon
	// as it connects.
	rs.mu.Lock()
	p.busy = false
	p.due = time.Now().Add(rs.exchangeAfter(p))
	rs.mu.Unlock()
	rs.poke()
}

// askPeer opens a stream to pod o (p, at info) and runs the exchange on it.
func (rs *recordSync) askPeer(o int, p *recordPeer, info peer.AddrInfo) (string, fleet.ExchangeResult, error) {
	h := rs.s.host
	if len(info.Addrs) > 0 {
		h.Peerstore().AddAddrs(info.ID, info.Addrs, time.Hour)
	}
	ctx, cancel := context.WithTimeout(rs.s.ctx, recordExchangeTimeout)
	defer cancel()
	st, err := h.NewStream(ctx, info.ID, RecordProtocol)
	if errors.Is(err, msmux.ErrNotSupported[protocol.ID]{}) {
		return "unsupported", fleet.ExchangeResult{}, nil
	}
	if err != nil {
		return "error", fleet.ExchangeResult{}, err
	}
	defer st.Close()
	if err := st.Scope().ReserveMemory(recordExchangeMemory, network.ReservationPriorityMedium); err != nil {
		_ = st.Reset()
		return "error", fleet.ExchangeResult{}, err
	}
	defer st.Scope().ReleaseMemory(recordExchangeMemory)
	_ = st.SetDeadline(time.Now().Add(recordExchangeTimeout))
	rs.mu.Lock()
	root := p.mine.Root()
	rs.mu.Unlock()
	res, err := fleet.Ask(st, rs.key, root, rs.side(o, p))
	if err != nil {
		_ = st.Reset()
	}
	return exchangeOutcome(res, err), res, err
}

// handle answers an exchange from a pod of the fleet.
func (rs *recordSync) handle(st network.Stream) {
	rs.mu.Lock()
	o, p := rs.peerOf(st.Conn().RemotePeer())
	var info peer.AddrInfo
	if p != nil {
		info = p.info
	}
	rs.mu.Unlock()
	if p == nil || !rs.s.life.Enter() {
		_ = st.Reset()
		return
	}
	defer rs.s.life.Done()
	select {
	case rs.answers <- struct{}{}:
		defer func() { <-rs.answers }()
	default:
		_ = st.Reset() // the asker tries again at its next interval
		return
	}
	if err := st.Scope().ReserveMemory(recordExchangeMemory, network.ReservationPriorityMedium); err != nil {
		_ = st.Reset()
		return
	}
	defer st.Scope().ReleaseMemory(recordExchangeMemory)
	_ = st.SetDeadline(time.Now().Add(recordExchangeTimeout))
	res, err := fleet.Answer(st, rs.side(o, p))
	rs.s.m.recordExchanges.WithLabelValues("answer", exchangeOutcome(res, err)).Inc()
	if err != nil {
		_ = st.Reset()
		rs.s.cfg.log.Debug("hosting: record exchange not answered", "pod", st.Conn().RemotePeer(), "err", err)
		return
	}
	_ = st.Close()
	rs.repair(rs.s.ctx, info, res)
	rs.mu.Lock()
	p.due = time.Now().Add(rs.exchangeAfter(p))
	rs.mu.Unlock()
}

func exchangeOutcome(res fleet.ExchangeResult, err error) string {
	switch {
	case err != nil:
		return "error"
	case res.Refused != "":
		return "refused"
	case len(res.Mine) == 0 && len(res.Theirs) == 0:
		return "equal"
	}
	return "differ"
}

// connected asks a peer pod that connects (it may have restarted, and
// lack what it missed) soon.
func (rs *recordSync) connected(id peer.ID) {
	soon := time.Now().Add(recordSyncSoon)
	rs.mu.Lock()
	_, p := rs.peerOf(id)
	if p != nil && p.due.After(soon) {
		p.due = soon
	}
	rs.mu.Unlock()
	if p != nil {
		rs.poke()
	}
}
