package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Live-mode timing: a ping when the session has been quiet, and a read
// deadline that a silent or vanished peer trips.
const (
	livePingEvery = 10 * time.Second
	liveReadLimit = 3 * livePingEvery
)

// ErrFellBehind ends a live session whose peer (or this side) could not keep
// up; reconnecting reconciles the difference.
var ErrFellBehind = errors.New("live sync fell behind; reconnect to reconcile")

// Live sessions hold little between pushes: a seed of a public fleet keeps
// thousands open. On entering live mode a session gives its 64 KiB stream
// buffers back to the pools (it reads frames unbuffered and writes through a
// pooled buffer taken for each write), drops the reconciliation's scratch
// buffers, stops its ingester's workers and gives back to the resource
// manager all but liveMemory of its reservation. Its own goroutine reads;
// pushes and pings run on goroutines started when there is something to
// send. A seed with 2,000 live devices held 6 goroutines and ~150 KiB of
// heap per session; this leaves 5 (four of them go-libp2p's, per
// connection) and a few KiB. On a seed the reader is a fresh goroutine
// (see Service.handle), so its stack is 4 KiB rather than the 16 KiB the
// reconciliation grew.
const liveMemory = 16 << 10

// byteAtATime reads a frame's length prefix straight from the stream: a
// live session waits for its peer's next frame with no buffer. The live
// reader waits in await, from its own frame: what a parked goroutine's
// stack holds above its read is what the garbage collector lets it keep
// (see Service.handle), so the wait stays shallow and the frame's decoding
// runs once its first byte is there.
type byteAtATime struct {
	r       io.Reader
	b       [1]byte
	pending bool // b holds a byte that await read
}

// await blocks until the stream has a byte for the next read.
func (u *byteAtATime) await() error {
	for !u.pending {
		n, err := u.r.Read(u.b[:])
		if n == 1 {
			u.pending = true
			break
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (u *byteAtATime) Read(p []byte) (int, error) {
	if u.pending && len(p) > 0 {
		p[0], u.pending = u.b[0], false
		return 1, nil
	}
	return u.r.Read(p)
}

func (u *byteAtATime) ReadByte() (byte, error) {
	if u.pending {
		u.pending = false
		return u.b[0], nil
	}
	_, err := io.ReadFull(u.r, u.b[:])
	return u.b[0], err
}

// enterLive shrinks the session for live mode; the caller has reconciled,
// and nothing else uses the session yet.
func (s *session) enterLive() {
	s.ing.idle()
	var r io.Reader = s.stream
	if br, ok := s.fr.r.(interface {
		Buffered() int
		Peek(int) ([]byte, error)
	}); ok && br.Buffered() > 0 {
		// The peer's first pushes may be buffered already: keep them in
		// front of the stream.
		b, _ := br.Peek(br.Buffered())
		r = io.MultiReader(bytes.NewReader(bytes.Clone(b)), s.stream)
	}
	if s.fw.w.Buffered() > 0 {
		_ = s.fw.flush() // a failure shows at the next write
	}
	s.freeBuffers()
	s.fr.r, s.fw.w = &byteAtATime{r: r}, nil // writeLocked takes a pooled buffer
	s.fr.buf, s.outItems, s.items, s.inQ, s.outQ = nil, nil, nil, nil, nil
	s.fp = fpHasher{} // ~14 KiB of hasher state; live mode sends no fingerprints
	if s.memory > liveMemory {
		s.stream.Scope().ReleaseMemory(s.memory - liveMemory)
		s.memory = liveMemory
	}
	s.svc.protect(s.stats.Peer)
}

// liveSender runs a live session's pushes and pings on goroutines of their
// own, one at a time each, and records the first failure, which ends the
// session (the stream is reset, so the reader returns).
type liveSender struct {
	s   *session
	sub *Subscription

	mu      sync.Mutex
	done    bool
	pushing bool
	err     error
	wg      sync.WaitGroup
	ping    *time.Timer
}

// fail records err (the first one) and resets the stream.
func (l *liveSender) fail(err error) {
	l.mu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.mu.Unlock()
	l.s.stream.Reset()
}

// kick starts a pusher unless one runs or the session is over (the
// subscription's notify function).
func (l *liveSender) kick() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done || l.pushing {
		return
	}
	l.pushing = true
	l.wg.Add(1)
	go l.pushAll()
}

// pushAll sends what the subscription holds until it is empty.
func (l *liveSender) pushAll() {
	defer l.wg.Done()
	for {
		items, overflow, closed := l.sub.Next()
		switch {
		case closed:
			_ = l.s.writeLocked(func() error {
				return l.s.fw.write(frameError, appendString([]byte{CodeShutdown}, "node shutting down"))
			}, true)
			l.fail(ErrClosed)
			return
		case overflow:
			l.fail(fmt.Errorf("vault %s: %w", l.s.ns.Short(), ErrFellBehind))
			return
		case len(items) > 0:
			if err := l.s.push(items); err != nil {
				l.fail(err)
				return
			}
			continue
		}
		// Empty: stop, unless items arrived after Next (their notify
		// found this pusher running).
		l.mu.Lock()
		if l.done || !l.sub.pending() {
			l.pushing = false
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
	}
}

// pingSoon arms the next ping.
func (l *liveSender) pingSoon() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return
	}
	l.wg.Add(1)
	l.ping = time.AfterFunc(livePingEvery, func() {
		defer l.wg.Done()
		if err := l.s.writeLocked(func() error { return l.s.fw.write(framePing, nil) }, true); err != nil {
			l.fail(l.s.wrapIO("ping", err))
			return
		}
		l.pingSoon()
	})
}

// stop ends the pushes and pings and waits for them.
func (l *liveSender) stop() error {
	l.mu.Lock()
	l.done = true
	if l.ping != nil && l.ping.Stop() {
		l.wg.Done() // it will not run
	}
	l.mu.Unlock()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// liveLoop pushes entries stored locally (by the app or by other sessions) to
// the peer and stores the peer's pushes, until ctx ends or the stream fails.
// The session's starter resets the stream when ctx ends (its watch on ctx
// covers the whole session), which ends the reader.
func (s *session) liveLoop(ctx context.Context, sub *Subscription) error {
	s.progress("live", true)
	l := &liveSender{s: s, sub: sub}
	l.pingSoon()
	sub.setNotify(l.kick)
	err := s.liveReader()
	s.stream.Reset()
	sendErr := l.stop()
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case sendErr != nil:
		return sendErr
	}
	return err
}

func (s *session) push(items []Item) error {
	return s.writeLocked(func() error {
		for _, it := range items {
			if err := s.queueItem(it); err != nil {
				return err
			}
		}
		err := s.flushItems()
		if cap(s.outItems) > 4<<10 {
			s.outItems = nil // a large push: do not keep its frame
		}
		return err
	}, true)
}

func (s *session) liveReader() error {
	in := s.fr.r.(*byteAtATime) // enterLive's
	for {
		s.setReadDeadline(liveReadLimit)
		if err := in.await(); err != nil {
			return s.wrapIO("live receive", err)
		}
		typ, p, err := s.fr.next()
		if err != nil {
			return s.wrapIO("live receive", err)
		}
		switch typ {
		case frameItems:
			if err := s.receiveItems(p); err != nil {
				return s.abort(err)
			}
			if err := s.ing.flush(); err != nil {
				return s.abort(err)
			}
			s.ing.idle()
			s.items = nil
			if err := s.writeLocked(s.sendRefusals, true); err != nil {
				return s.wrapIO("live send", err)
			}
			s.writeMu.Lock()
			s.progress("live", false)
			s.writeMu.Unlock()
		case frameEndTurn:
			// A peer may end a turn with nothing in it; harmless.
		default:
			if err := s.handleCommon(typ, p); err != nil {
				return err
			}
		}
		if cap(s.fr.buf) > 4<<10 {
			s.fr.buf = nil // a large frame: do not keep its buffer
		}
	}
}
