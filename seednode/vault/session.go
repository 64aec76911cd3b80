package vault

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/internal/wire"
)

// idListThreshold: a differing node with at most this many items is settled
// by exchanging item IDs instead of splitting it further. openingLeafSize is
// the expected node size the opening depth aims for; the gap between the two
// absorbs the spread of item counts across nodes, so an unlucky node does
// not cost an extra round trip.
const (
	idListThreshold = 64
	openingLeafSize = 32
)

// maxTurnQuestionBytes bounds the questions one turn may carry; a sender
// defers the rest to its next turn, so memory grows with the difference
// between replicas, never with their size.
const (
	maxTurnQuestionBytes = 512 << 10
	maxIncomingQuestions = 4 * maxTurnQuestionBytes
	// The same for the number of question records (a decoded record is
	// larger than its few wire bytes).
	maxTurnQuestions     = 16 << 10
	maxIncomingQuestionN = 4 * maxTurnQuestions
	// maxTurns bounds a reconciliation: an honest one needs a few turns per
	// trie level plus one per 512 KiB of deferred questions.
	maxTurns = 1024
)

// SyncOptions tune one session.
type SyncOptions struct {
	// Live keeps the session open after reconciliation: entries stored on
	// either side afterwards are pushed to the other.
	Live bool
	// Progress, if set, is called from the session goroutine as items move
	// (at most every 100 ms, and once at the end of each phase).
	Progress func(Progress)
}

// Progress reports a session in flight.
type Progress struct {
	Phase         string // "reconciling", "live", "done"
	ItemsSent     int
	ItemsReceived int
	BytesSent     int64
	BytesReceived int64
	RoundTrips    int
}

// SyncStats is what a session did.
type SyncStats struct {
	Namespace NamespaceID
	Peer      peer.ID
	// RoundTrips counts the turns this side sent that the peer answered.
	RoundTrips    int
	BytesSent     int64
	BytesReceived int64
	ItemsSent     int
	ItemsReceived int
	// BlobRefsSent counts sent entries whose value is a blob (larger than
	// MaxInlineValue): the peer may now fetch those blobs from us.
	BlobRefsSent int
	// Stored, Stale and Refused describe the items received.
	Stored, Stale, Refused int
	FirstRefusal           string
	// Purged counts entries this side deleted because an agent document it
	// received revoked their author before they were written.
	Purged int
	// Deleted counts entries this side removed because a tombstone it
	// received deletes them.
	Deleted int
	// PeerRefused counts items the peer told us it refused, and why.
	PeerRefused int
	PeerRefusal string
	// PeerLacksBlobs is how many blobs of the vault's entries the peer said
	// it lacks: it fetches them after the session, from us among others.
	PeerLacksBlobs int
	Duration       time.Duration
	// SignatureChecks is how many Ed25519 verifications the items needed.
	SignatureChecks uint64
}

type qKind uint8

const (
	qSplit qKind = iota + 1
	qIDList
	qWant
	qWantAll
)

// question is a record that asks the peer something about a node.
type question struct {
	kind qKind
	node Node
	fps  [fanout]wireFP // qSplit
	ids  []itemID       // qIDList, qWant
}

func (q *question) frame() (byte, []byte) {
	b := appendNode(make([]byte, 0, 3+len(q.fps)*wireFPLen+len(q.ids)*8), q.node)
	switch q.kind {
	case qSplit:
		for i := range q.fps {
			b = append(b, q.fps[i][:]...)
		}
		return frameSplit, b
	case qIDList:
		return frameIDList, appendIDs(b, q.ids)
	case qWant:
		return frameWant, appendIDs(b, q.ids)
	default:
		return frameWantAll, b
	}
}

type session struct {
	svc       *Service
	st        *Store
	ns        NamespaceID
	stream    network.Stream
	fr        frameReader
	fw        frameWriter
	fp        fpHasher
	emptyFP   wireFP
	initiator bool
	opts      SyncOptions
	origin    Origin
	idle      time.Duration
	ing       *ingester

	stats    SyncStats
	lastProg time.Time
	start    time.Time

	sendRows map[authorRef]int
	recvRows []authorRef
	outQ     []question
	inQ      []question
	items    []Item // reused encode/decode buffer

	outItems  []byte // items frame being filled
	outCount  int
	turns     int
	live      bool // reconciliation is over
	sentError bool // the peer was told why the session ends
	// sendBudget caps the entries one reconciliation sends: a peer asking
	// for the same ranges again and again gets cut off, not amplified.
	sendBudget   int
	turnHadItems bool
	refusalsSent int
	docSent      bool
	// tellLacking: the peer understands frameLacksBlobs, and this side has
	// not told it yet.
	tellLacking bool
	// withholdTombstones: the peer's hello did not say it reads tombstones
	// (only the initiator sends a hello, so only its side is known).
	withholdTombstones bool
	peerDoc            Hash // fingerprint of the agent document the peer sent, not sent back

	// reconciled, if set, is called once reconciliation succeeds (the
	// serving side marks the peer known).
	reconciled func()
	// memory is what the session holds reserved in its stream's scope (its
	// starter releases it); live mode gives most of it back.
	memory int
	// rbuf is fr.r while it is the pool's (freeBuffers returns it and fw.w).
	rbuf *bufio.Reader

	writeMu sync.Mutex // live mode: the reader answers pings while the writer pushes
	peerRef struct {
		count  int
		reason string
	}
}

func newSession(svc *Service, s network.Stream, r *bufio.Reader, ns NamespaceID, salt []byte, initiator bool, opts SyncOptions) *session {
	ss := &session{
		svc: svc, st: svc.store, ns: ns, stream: s, initiator: initiator, opts: opts,
		origin: NewOrigin(), idle: svc.idleTimeout, start: time.Now(),
		sendRows: make(map[authorRef]int),
		fp:       newFPHasher(salt),
	}
	ss.emptyFP = ss.fp.wire(&Aggregate{})
	ss.fr.r, ss.rbuf = r, r
	ss.fw.w = getWriter(s)
	ss.stats.Namespace = ns
	ss.stats.Peer = s.Conn().RemotePeer()
	ss.ing = newIngester(svc.store, svc.verifier, svc.store.limits(ns), ss.origin)
	if hook := svc.onStored; hook != nil {
		remote := ss.stats.Peer
		ss.ing.onStored = func(items []Item) { hook(remote, ns, items) }
	}
	return ss
}

// release stops the session's workers. After a failure, entries received in
// the unfinished turn and not yet stored are dropped: that turn was never
// acknowledged, and a reconnect reconciles them again.
func (s *session) release(failed bool) {
	if failed {
		s.ing.discard()
	}
	s.ing.close()
}

// freeBuffers returns the session's pooled stream buffers; the session
// does no more I/O through them.
func (s *session) freeBuffers() {
	if s.rbuf == nil {
		return
	}
	s.rbuf.Reset(nil)
	readerPool.Put(s.rbuf)
	s.fw.w.Reset(nil)
	writerPool.Put(s.fw.w)
	s.rbuf, s.fr.r, s.fw.w = nil, nil, nil
}

// run reconciles, then stays live if asked. The caller has exchanged hellos.
func (s *session) run(ctx context.Context) (SyncStats, error) {
	sub, err := s.settle()
	if sub == nil {
		return s.stats, err
	}
	err = s.stayLive(ctx, sub)
	return s.stats, err
}

// settle reconciles. A live session that succeeded enters live mode and
// gets the subscription that stayLive pushes from; otherwise the session is
// over (sub is nil).
func (s *session) settle() (sub *Subscription, err error) {
	if s.opts.Live {
		// Subscribe before reconciling so nothing written meanwhile is missed.
		sub = s.st.Subscribe(s.ns, s.origin)
	}
	err = s.reconcile()
	if err == nil && s.reconciled != nil {
		s.reconciled()
	}
	s.finishStats()
	if s.svc.onSessionEnd != nil {
		s.svc.onSessionEnd(s.stats.Peer, s.ns, s.stats, err)
	}
	s.progress("done", true)
	if err != nil || sub == nil {
		if sub != nil {
			sub.Close()
		}
		return nil, err
	}
	s.live = true
	s.enterLive()
	return sub, nil
}

// stayLive runs a settled session's live mode until ctx ends or the stream
// fails; it closes sub.
func (s *session) stayLive(ctx context.Context, sub *Subscription) error {
	defer sub.Close()
	defer s.svc.unprotect(s.stats.Peer)
	err := s.liveLoop(ctx, sub)
	s.finishStats()
	return err
}

func (s *session) finishStats() {
	t := s.ing.totals()
	s.stats.Stored, s.stats.Stale, s.stats.Refused, s.stats.Purged = t.Stored, t.Stale, t.Refused, t.Purged
	s.stats.Deleted = t.Deleted
	if t.FirstRefusal != nil {
		s.stats.FirstRefusal = t.FirstRefusal.Error()
	}
	s.stats.BytesSent, s.stats.BytesReceived = s.fw.n, s.fr.n
	s.stats.ItemsReceived = int(s.ing.received.Load())
	s.stats.PeerRefused, s.stats.PeerRefusal = s.peerRef.count, s.peerRef.reason
	s.stats.Duration = time.Since(s.start)
}

func (s *session) progress(phase string, force bool) {
	if s.opts.Progress == nil {
		return
	}
	now := time.Now()
	if !force && now.Sub(s.lastProg) < 100*time.Millisecond {
		return
	}
	s.lastProg = now
	s.opts.Progress(Progress{
		Phase: phase, ItemsSent: s.stats.ItemsSent, ItemsReceived: int(s.ing.received.Load()),
		BytesSent: s.fw.n, BytesReceived: s.fr.n, RoundTrips: s.stats.RoundTrips,
	})
}

// reconcile runs turns until one side has nothing more to say.
func (s *session) reconcile() error {
	root, err := s.st.nodeAggregate(s.ns, Root)
	if err != nil {
		return err
	}
	s.sendBudget = int(min(root.Count, 1<<40))*2 + 1024
	if s.initiator {
		if err := s.sendAgentDoc(); err != nil {
			return err
		}
		if err := s.openingQuestions(); err != nil {
			return err
		}
		empty, err := s.sendTurn()
		if err != nil || empty {
			return err
		}
	}
	for {
		gotSomething, err := s.readTurn()
		if err != nil {
			return err
		}
		if s.initiator {
			s.stats.RoundTrips++
		}
		if !gotSomething && len(s.outQ) == 0 {
			return nil
		}
		if s.turns++; s.turns > maxTurns {
			return s.abort(fmt.Errorf("%w: reconciliation did not finish in %d turns", ErrProtocol, maxTurns))
		}
		if err := s.sendAgentDoc(); err != nil {
			return err
		}
		if err := s.answerAll(); err != nil {
			return err
		}
		if err := s.sendLacking(); err != nil {
			return err
		}
		empty, err := s.sendTurn()
		if err != nil || empty {
			return err
		}
	}
}

// sendAgentDoc sends the vault's agent document once, at the start of this
// side's first turn: the peer checks every other entry of the vault against
// it, so it must not wait for its place in the reconciliation order.
func (s *session) sendAgentDoc() error {
	if s.docSent {
		return nil
	}
	s.docSent = true
	items, err := s.st.Get(s.ns, AgentDocKey)
	if err != nil {
		return err
	}
	for _, it := range items {
		if it.Entry.Fingerprint() == s.peerDoc {
			continue
		}
		if err := s.queueItem(it); err != nil {
			return err
		}
	}
	return s.flushItems()
}

// openingQuestions picks the depth of the first fingerprints from the
// initiator's size so that, for replicas of similar size, differing nodes
// reach ID lists by the fourth message: a sync of a few changes takes three
// round trips whatever the vault size.
func (s *session) openingQuestions() error {
	root, err := s.st.nodeAggregate(s.ns, Root)
	if err != nil {
		return err
	}
	if root.Count == 0 {
		s.outQ = append(s.outQ, question{kind: qWantAll, node: Root})
		return nil
	}
	leafDepth := 0
	for n := root.Count; n > openingLeafSize && leafDepth < maxDepth; n /= fanout {
		leafDepth++
	}
	if leafDepth == 0 {
		return s.ask(Root, root.Count)
	}
	splitDepth := max(0, leafDepth-3)
	return s.splitAll(Root, splitDepth)
}

// splitAll queues a split question for every node at depth under n.
func (s *session) splitAll(n Node, depth int) error {
	if int(n.Depth) == depth {
		q := question{kind: qSplit, node: n}
		aggs, err := s.st.childAggregates(s.ns, n)
		if err != nil {
			return err
		}
		for i := range aggs {
			q.fps[i] = s.fp.wire(&aggs[i])
		}
		s.outQ = append(s.outQ, q)
		return nil
	}
	for c := 0; c < fanout; c++ {
		if err := s.splitAll(n.Child(c), depth); err != nil {
			return err
		}
	}
	return nil
}

// ask queues the question that narrows a differing node: its item IDs when
// it is small, else its children's fingerprints.
func (s *session) ask(n Node, count uint64) error {
	if count <= idListThreshold || n.Depth >= maxDepth {
		q := question{kind: qIDList, node: n}
		err := s.st.scanNode(s.ns, n, func(_ *Hash, fp *Hash, _ []byte) error {
			q.ids = append(q.ids, idOf(fp))
			return nil
		})
		s.outQ = append(s.outQ, q)
		return err
	}
	q := question{kind: qSplit, node: n}
	aggs, err := s.st.childAggregates(s.ns, n)
	if err != nil {
		return err
	}
	for i := range aggs {
		q.fps[i] = s.fp.wire(&aggs[i])
	}
	s.outQ = append(s.outQ, q)
	return nil
}

// sendTurn writes queued questions (up to the per-turn bound), any refusal
// notice, and the end-of-turn marker. Items were written while answering.
func (s *session) sendTurn() (empty bool, err error) {
	sent := 0
	qbytes := 0
	for _, q := range s.outQ {
		typ, p := q.frame()
		if sent >= maxTurnQuestions || (qbytes > 0 && qbytes+len(p) > maxTurnQuestionBytes) {
			break
		}
		if err := s.fw.write(typ, p); err != nil {
			return false, err
		}
		qbytes += len(p)
		sent++
	}
	s.outQ = slices.Delete(s.outQ, 0, sent)
	if err := s.sendRefusals(); err != nil {
		return false, err
	}
	empty = sent == 0 && !s.turnHadItems
	s.turnHadItems = false
	if err := s.fw.write(frameEndTurn, nil); err != nil {
		return false, err
	}
	s.setWriteDeadline()
	if err := s.fw.flush(); err != nil {
		return false, s.wrapIO("send", err)
	}
	s.progress("reconciling", false)
	return empty, nil
}

// sendLacking tells the peer, once, how many blobs of the vault this side
// lacks (if any, and if the peer understands it).
func (s *session) sendLacking() error {
	if !s.tellLacking || s.svc.lackedBlobs == nil {
		return nil
	}
	s.tellLacking = false
	n := s.svc.lackedBlobs(s.ns)
	if n <= 0 {
		return nil
	}
	return s.fw.write(frameLacksBlobs, binary.AppendUvarint(nil, uint64(n)))
}

func (s *session) sendRefusals() error {
	t := s.ing.totals()
	if t.Refused <= s.refusalsSent {
		return nil
	}
	n := t.Refused - s.refusalsSent
	s.refusalsSent = t.Refused
	reason := "refused"
	if t.FirstRefusal != nil {
		reason = t.FirstRefusal.Error()
	}
	return s.fw.write(frameRefused, appendString(binary.AppendUvarint(nil, uint64(n)), reason))
}

func (s *session) setReadDeadline(d time.Duration) {
	_ = s.stream.SetReadDeadline(time.Now().Add(d))
}

func (s *session) setWriteDeadline() {
	_ = s.stream.SetWriteDeadline(time.Now().Add(s.idle))
}

// wrapIO names the vault and the peer in an error of the stream. A frame
// that breaks the protocol (a zero or oversized length) is not an I/O
// error: the peer is told why before the session ends.
func (s *session) wrapIO(op string, err error) error {
	if errors.Is(err, ErrProtocol) {
		return s.abort(err)
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("vault %s: peer %s stopped answering (no data for %s): %w",
			s.ns.Short(), shortPeer(s.stats.Peer), s.idle, err)
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("vault %s: peer %s closed the session mid-%s", s.ns.Short(), shortPeer(s.stats.Peer), op)
	}
	return fmt.Errorf("vault %s: %s: %w", s.ns.Short(), op, err)
}

// readTurn reads the peer's frames up to its end-of-turn: items go to the
// ingester, questions to inQ. When it returns, received items are durable.
// gotSomething is false for an empty turn (the peer is done).
func (s *session) readTurn() (gotSomething bool, err error) {
	qbytes := 0
	for {
		s.setReadDeadline(s.idle)
		typ, p, err := s.fr.next()
		if err != nil {
			return false, s.wrapIO("receive", err)
		}
		switch typ {
		case frameEndTurn:
			if err := s.ing.flush(); err != nil {
				return false, s.abort(err)
			}
			return gotSomething || len(s.inQ) > 0, nil
		case frameSplit, frameIDList, frameWant, frameWantAll:
			qbytes += len(p)
			if qbytes > maxIncomingQuestions || len(s.inQ) >= maxIncomingQuestionN {
				return false, s.abort(fmt.Errorf("%w: more than %d bytes or %d questions in one turn",
					ErrProtocol, maxIncomingQuestions, maxIncomingQuestionN))
			}
			q, err := decodeQuestion(typ, p)
			if err != nil {
				return false, s.abort(err)
			}
			s.inQ = append(s.inQ, q)
		case frameItems:
			gotSomething = true
			if err := s.receiveItems(p); err != nil {
				return false, s.abort(err)
			}
		default:
			if err := s.handleCommon(typ, p); err != nil {
				return false, err
			}
		}
	}
}

// handleCommon handles frames valid in any phase.
func (s *session) handleCommon(typ byte, p []byte) error {
	switch typ {
	case frameAuthor:
		if len(s.recvRows) >= maxAuthorTable {
			return s.abort(fmt.Errorf("%w: more than %d authors in one session", ErrProtocol, maxAuthorTable))
		}
		r, err := decodeAuthorRef(p)
		if err != nil {
			return s.abort(err)
		}
		s.recvRows = append(s.recvRows, r)
	case frameRefused:
		d := newDecoder(p)
		n := d.Uvarint("refusal count")
		reason := string(d.Bytes(len(d.B), "refusal reason"))
		if d.Err == nil {
			s.peerRef.count += int(min(n, 1<<30))
			if s.peerRef.reason == "" {
				s.peerRef.reason = wire.Sanitize(wire.Truncate(reason, 512))
			}
		}
	case frameLacksBlobs:
		d := newDecoder(p)
		if n := d.Uvarint("lacked blobs"); d.Err == nil {
			s.stats.PeerLacksBlobs = int(min(n, 1<<30))
		}
	case frameError:
		return decodePeerError(p)
	case framePing:
		return s.writeLocked(func() error { return s.fw.write(framePong, nil) }, true)
	case framePong:
	default:
		return s.abort(fmt.Errorf("%w: unexpected frame type %d", ErrProtocol, typ))
	}
	return nil
}

func (s *session) receiveItems(p []byte) error {
	var err error
	s.items, err = decodeWireItems(p, s.ns, s.recvRows, s.items[:0])
	if err != nil {
		return err
	}
	for _, it := range s.items {
		if !s.docSent && bytes.Equal(it.Entry.Key, AgentDocKey) {
			s.peerDoc = it.Entry.Fingerprint()
		}
		s.ing.add(it)
	}
	s.progress("reconciling", false)
	return nil
}

func decodeQuestion(typ byte, p []byte) (question, error) {
	d := newDecoder(p)
	q := question{node: d.node()}
	switch typ {
	case frameSplit:
		q.kind = qSplit
		for i := range q.fps {
			copy(q.fps[i][:], d.Bytes(wireFPLen, "split fingerprints"))
		}
	case frameIDList:
		q.kind = qIDList
		q.ids = d.ids("ID list")
	case frameWant:
		q.kind = qWant
		q.ids = d.ids("want list")
	case frameWantAll:
		q.kind = qWantAll
	}
	return q, d.Done("question")
}

// answerAll answers the peer's questions: items are written at once, new
// questions are queued for this turn.
func (s *session) answerAll() error {
	in := s.inQ
	s.inQ = nil
	for i := range in {
		if err := s.answer(&in[i]); err != nil {
			return err
		}
	}
	return s.flushItems()
}

func (s *session) answer(q *question) error {
	switch q.kind {
	case qSplit:
		own, err := s.st.childAggregates(s.ns, q.node)
		if err != nil {
			return err
		}
		for c := range own {
			if s.fp.wire(&own[c]) == q.fps[c] {
				continue
			}
			child := q.node.Child(c)
			switch {
			case q.fps[c] == s.emptyFP:
				if err := s.sendNode(child, nil); err != nil {
					return err
				}
			case own[c].Count == 0:
				s.outQ = append(s.outQ, question{kind: qWantAll, node: child})
			default:
				if err := s.ask(child, own[c].Count); err != nil {
					return err
				}
			}
		}
	case qIDList:
		theirs := make(map[itemID]bool, len(q.ids))
		for _, id := range q.ids {
			theirs[id] = false
		}
		err := s.st.scanNode(s.ns, q.node, func(_ *Hash, fp *Hash, raw []byte) error {
			id := idOf(fp)
			if _, ok := theirs[id]; ok {
				theirs[id] = true
				return nil
			}
			return s.sendRaw(raw)
		})
		if err != nil {
			return err
		}
		var want []itemID
		for _, id := range q.ids {
			if !theirs[id] {
				want = append(want, id)
				theirs[id] = true // the same ID twice is asked for once
			}
		}
		if len(want) > 0 {
			s.outQ = append(s.outQ, question{kind: qWant, node: q.node, ids: want})
		}
	case qWant:
		want := make(map[itemID]struct{}, len(q.ids))
		for _, id := range q.ids {
			want[id] = struct{}{}
		}
		return s.sendNode(q.node, want)
	case qWantAll:
		return s.sendNode(q.node, nil)
	}
	return nil
}

// sendNode sends the items of n (only those in want, if not nil).
func (s *session) sendNode(n Node, want map[itemID]struct{}) error {
	return s.st.scanNode(s.ns, n, func(_ *Hash, fp *Hash, raw []byte) error {
		if want != nil {
			if _, ok := want[idOf(fp)]; !ok {
				return nil
			}
		}
		return s.sendRaw(raw)
	})
}

// sendRaw queues a stored record for sending, with its inline value.
func (s *session) sendRaw(raw []byte) error {
	it, err := decodeStoredItem(raw)
	if err != nil {
		return fmt.Errorf("vault %s: %w", s.ns.Short(), err)
	}
	return s.queueItem(it)
}

// pending outgoing items frame
func (s *session) queueItem(it Item) error {
	if s.withholdTombstones && it.Entry.IsTombstone() {
		return nil // it would take it for a forgery and end the session
	}
	ref := refOf(&it.Entry)
	row, ok := s.sendRows[ref]
	if !ok {
		if len(s.sendRows) >= maxAuthorTable {
			return fmt.Errorf("vault %s: more than %d authors in one session", s.ns.Short(), maxAuthorTable)
		}
		if err := s.flushItems(); err != nil {
			return err
		}
		row = len(s.sendRows)
		s.sendRows[ref] = row
		if err := s.fw.write(frameAuthor, appendAuthorRef(nil, &ref)); err != nil {
			return err
		}
	}
	if !s.live && s.stats.ItemsSent >= s.sendBudget {
		return s.abort(fmt.Errorf("%w: the peer asked for more entries than the vault holds, twice over", ErrProtocol))
	}
	s.outItems = appendWireItem(s.outItems, row, &it)
	s.outCount++
	s.stats.ItemsSent++
	if it.Content == nil && IsBlobRef(&it.Entry.Entry) {
		s.stats.BlobRefsSent++
	}
	s.turnHadItems = true
	if len(s.outItems) >= itemsFrameSize {
		return s.flushItems()
	}
	return nil
}

func (s *session) flushItems() error {
	if s.outCount == 0 {
		return nil
	}
	p := binary.AppendUvarint(make([]byte, 0, len(s.outItems)+4), uint64(s.outCount))
	p = append(p, s.outItems...)
	s.outItems, s.outCount = s.outItems[:0], 0
	s.setWriteDeadline()
	if err := s.fw.write(frameItems, p); err != nil {
		return s.wrapIO("send", err)
	}
	s.progress("reconciling", false)
	return nil
}

// abort tells the peer why the session ends (best effort) and returns err.
func (s *session) abort(err error) error {
	code := CodeInternal
	var pe *PeerError
	var le *localError
	switch {
	case errors.As(err, &pe):
		return err // the peer ended it; nothing to tell
	case errors.As(err, &le):
		code = CodeInternal
	case errors.Is(err, ErrProtocol), errors.Is(err, ErrContentInvalid):
		code = CodeProtocol
	case errors.Is(err, ErrBadSignature), errors.Is(err, ErrMalformed):
		code = CodeBadEntry
	}
	msg := err.Error()
	if code == CodeInternal {
		msg = "internal error on the receiving side"
	}
	if s.writeLocked(func() error { return s.fw.write(frameError, appendString([]byte{byte(code)}, msg)) }, true) == nil {
		s.sentError = true
	}
	return fmt.Errorf("vault %s with %s: %w", s.ns.Short(), shortPeer(s.stats.Peer), err)
}

// hangUp ends the stream after a failure: gracefully when an error frame is
// on its way (a reset could discard it before the peer reads it), else with
// a reset.
func (s *session) hangUp() {
	if !s.sentError {
		s.stream.Reset()
		return
	}
	_ = s.stream.CloseWrite()
	// Let the peer read the reason; drain what it still sends, briefly.
	_ = s.stream.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, _ = io.Copy(io.Discard, io.LimitReader(s.stream, maxFrame))
	_ = s.stream.Close()
}

func (s *session) writeLocked(fn func() error, flush bool) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.fw.w == nil {
		// Live mode: a pooled buffer for this write only.
		s.fw.w = getWriter(s.stream)
		defer func() {
			s.fw.w.Reset(nil)
			writerPool.Put(s.fw.w)
			s.fw.w = nil
		}()
		flush = true
	}
	if err := fn(); err != nil {
		return err
	}
	if flush {
		s.setWriteDeadline()
		return s.fw.flush()
	}
	return nil
}

func decodePeerError(p []byte) error {
	d := newDecoder(p)
	code := d.Byte("error code")
	msg := wire.Sanitize(wire.Truncate(string(d.Bytes(len(d.B), "error message")), 1024))
	if d.Err != nil {
		return fmt.Errorf("%w: malformed error frame", ErrProtocol)
	}
	return &PeerError{Code: int(code), Message: msg}
}

func appendString(b []byte, s string) []byte { return append(b, s...) }

// shortPeer abbreviates a peer ID for messages: enough to tell peers apart.
func shortPeer(p peer.ID) string {
	s := p.String()
	if len(s) <= 16 {
		return s
	}
	return s[:8] + "…" + s[len(s)-6:]
}

func newSalt() []byte {
	b := make([]byte, saltLen)
	_, _ = rand.Read(b)
	return b
}
