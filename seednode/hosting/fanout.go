package hosting

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/internal/wire"
	"github.com/seedfleet/seedfleet/seednode/fleet"
)

// Between the pods of a fleet, what one home pod accepted reaches the
// subject's other home pods in batches: a pod keeps one queue per peer pod
// and sends what accumulated while the previous batch was on its way, on one
// stream. At a thousand admissions a second that is a handful of streams a
// second per pod pair instead of a thousand.
//
// A batch frame (kindBatch) holds a count and that many items:
//
//	itemRequest  LenBytes(address range) LenBytes(request)  a request the sender accepted
//	itemRecord   LenBytes(record)                           a record the receiver is a home pod of: sent as
//	                                                        the fleet scales, or by the record exchange
//
// and is answered with one Reason byte per item, in order. Items of one
// subject are applied in the order sent (the sender queues them in the order
// it accepted them); items of different subjects concurrently, so that their
// durable commits share WAL syncs.
const (
	itemRequest byte = 'P'
	itemRecord  byte = 'C'
)

const (
	// maxBatchFrame bounds a batch frame: only fleet members may send one.
	maxBatchFrame = 1 << 20
	// maxBatchItems bounds the items of one batch.
	maxBatchItems = 1024
	// maxQueued bounds the items waiting for one peer pod; an acceptance
	// that finds its peer's queue full waits for room.
	maxQueued = 16 * maxBatchItems
	// applyWorkers is how many subjects' items a receiving pod applies at once.
	applyWorkers = 32
)

// batchItem is one queued item: its type and its encoded body.
type batchItem struct {
	typ  byte
	body []byte // LenBytes(range) LenBytes(request), or LenBytes(record)
}

// peerQueue holds the items waiting for one peer pod.
type peerQueue struct {
	info    peer.AddrInfo
	mu      sync.Mutex
	items   []batchItem
	sending bool          // a sender goroutine runs
	room    chan struct{} // closed and replaced when items leave the queue
}

// enqueue adds an item for pod p, waiting while its queue is full (until
// ctx ends), and makes sure a sender runs.
func (s *Service) enqueue(ctx context.Context, p peer.AddrInfo, it batchItem) error {
	s.qmu.Lock()
	q := s.queues[p.ID]
	if q == nil {
		q = &peerQueue{info: p, room: make(chan struct{})}
		s.queues[p.ID] = q
	}
	s.qmu.Unlock()
	for {
		q.mu.Lock()
		if len(q.items) < maxQueued {
			break
		}
		room := q.room
		q.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	q.items = append(q.items, it)
	start := !q.sending
	q.sending = true
	q.mu.Unlock()
	if start {
		if !s.life.Enter() {
			q.mu.Lock()
			q.sending = false
			q.mu.Unlock()
			return errors.New("hosting: the service is closing")
		}
		go s.sendQueue(q)
	}
	return nil
}

// sendQueue sends q's items in batches until it is empty.
func (s *Service) sendQueue(q *peerQueue) {
	defer s.life.Done()
	for {
		q.mu.Lock()
		n, size := 0, 0
		for n < len(q.items) && n < maxBatchItems && size+len(q.items[n].body)+1 < maxBatchFrame-64 {
			size += len(q.items[n].body) + 1
			n++
		}
		if n == 0 {
			q.sending = false
			q.mu.Unlock()
			return
		}
		batch := q.items[:n:n]
		q.items = q.items[n:]
		if len(q.items) == 0 {
			q.items = nil
		}
		close(q.room)
		q.room = make(chan struct{})
		q.mu.Unlock()
		s.sendBatch(q.info, batch)
		if s.ctx.Err() != nil {
			q.mu.Lock()
			q.items, q.sending = nil, false
			q.mu.Unlock()
			return
		}
	}
}

// sendBatch sends one batch and counts the outcomes.
func (s *Service) sendBatch(p peer.AddrInfo, batch []batchItem) {
	msg := binary.AppendUvarint([]byte{kindBatch}, uint64(len(batch)))
	for _, it := range batch {
		msg = append(msg, it.typ)
		msg = append(msg, it.body...)
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.timeout)
	defer cancel()
	if len(p.Addrs) > 0 {
		s.host.Peerstore().AddAddrs(p.ID, p.Addrs, 3600e9)
	}
	reasons, err := roundTrip(ctx, s.host, p.ID, msg, maxBatchItems)
	if err == nil && len(reasons) != len(batch) {
		err = fmt.Errorf("%d outcomes for %d items", len(reasons), len(batch))
	}
	if err != nil {
		s.m.replications.WithLabelValues("failed").Add(float64(len(batch)))
		s.cfg.log.Info("hosting: replicating records", "pod", p.ID, "items", len(batch), "err", err)
		return
	}
	refused := 0
	for _, r := range reasons {
		switch Reason(r) {
		case ReasonNone, ReasonReplay:
			s.m.replications.WithLabelValues("ok").Inc()
		default:
			refused++
			s.m.replications.WithLabelValues("refused").Inc()
		}
	}
	if refused > 0 {
		s.cfg.log.Warn("hosting: a home pod refused records the fleet accepted", "pod", p.ID, "refused", refused, "items", len(batch))
	}
}

// batchEntry is one decoded item of a batch: a request (with the address
// range it came from) or a record; neither if it did not decode.
type batchEntry struct {
	from string
	req  *Request
	rec  *Record
}

// decodeBatch reads a batch frame's body; body is hostile (even a fleet
// pod's). An item that does not decode is kept as an empty entry (answered
// Malformed); a frame whose structure does not hold fails whole.
func decodeBatch(body []byte) ([]batchEntry, error) {
	d := &wire.Decoder{B: body, Sentinel: ErrMalformed}
	n := d.Uvarint("batch items")
	if d.Err != nil {
		return nil, d.Err
	}
	if n > maxBatchItems {
		return nil, fmt.Errorf("%w: a batch of %d items, at most %d", ErrMalformed, n, maxBatchItems)
	}
	items := make([]batchEntry, n)
	for i := range items {
		it := &items[i]
		switch typ := d.Byte("item type"); typ {
		case itemRequest:
			it.from = string(d.LenBytes("address range", 64))
			if b := d.LenBytes("request", MaxRequestSize); d.Err == nil {
				it.req, _ = UnmarshalRequest(b) // nil: answered Malformed
			}
		case itemRecord:
			if b := d.LenBytes("record", maxBatchFrame); d.Err == nil {
				it.rec, _ = decodeRecord(b)
			}
		default:
			if d.Err == nil {
				return nil, fmt.Errorf("%w: unknown batch item type %d", ErrMalformed, typ)
			}
		}
		if d.Err != nil {
			return nil, d.Err
		}
	}
	if err := d.Done("batch"); err != nil {
		return nil, err
	}
	return items, nil
}

// applyBatch applies a batch frame's items from a member pod and returns
// the answer frame: one Reason per item.
func (s *Service) applyBatch(members fleet.Members, body []byte) ([]byte, error) {
	items, err := decodeBatch(body)
	if err != nil {
		return nil, err
	}
	n := len(items)
	// Items of one subject go to one worker, in order.
	out := make([]byte, n)
	lanes := make([][]int, min(applyWorkers, max(len(items), 1)))
	for i, it := range items {
		lane := 0
		switch {
		case it.req != nil:
			lane = int(it.req.Subject[len(it.req.Subject)-1])
		case it.rec != nil:
			lane = int(it.rec.Subject[len(it.rec.Subject)-1])
		}
		lanes[lane%len(lanes)] = append(lanes[lane%len(lanes)], i)
	}
	var wg sync.WaitGroup
	for _, lane := range lanes {
		if len(lane) == 0 {
			continue
		}
		wg.Go(func() {
			for _, i := range lane {
				it := items[i]
				switch {
				case it.req != nil:
					out[i] = byte(s.applyRequest(members, it.from, it.req))
				case it.rec != nil:
					out[i] = byte(s.applyRecord(members, it.rec))
				default:
					out[i] = byte(ReasonMalformed)
				}
			}
		})
	}
	wg.Wait()
	return out, nil
}

// applyRequest applies a request another home pod accepted.
func (s *Service) applyRequest(members fleet.Members, from string, req *Request) Reason {
	if req.Op == OpStatus {
		return ReasonNone
	}
	if !isHome(members, PlacementKey(req.Kind, req.Subject)) {
		return ReasonUnavailable
	}
	return s.adm.handle(req, from, true).Reason
}

// applyRecord stores a record a pod of the fleet sent as this pod became
// one of the subject's home pods, or as the record exchange found it
// lacking or older here.
func (s *Service) applyRecord(members fleet.Members, rec *Record) Reason {
	if !isHome(members, PlacementKey(rec.Kind, rec.Subject)) {
		return ReasonUnavailable
	}
	stored, err := s.adm.records.Copy(rec)
	if err != nil {
		s.cfg.log.Warn("hosting: a record copy not stored", "err", err)
		return ReasonUnavailable
	}
	if stored {
		s.m.recordRepairs.WithLabelValues("stored").Inc()
	}
	return ReasonNone
}

func isHome(m fleet.Members, key string) bool {
	home := m.Home(key)
	for _, o := range home {
		if o == m.Self {
			return true
		}
	}
	return len(home) == 0
}
