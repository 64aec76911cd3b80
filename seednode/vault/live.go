package vault

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
// thousands open. On entering live mode a session swaps its 64 KiB stream
// buffers for liveBufSize ones, drops the reconciliation's scratch buffers,
// stops its ingester's workers and gives back to the resource manager all
// but liveMemory of its reservation (a push larger than the buffers goes
// through them unbuffered, or grows a frame buffer for that frame only).
const (
	liveBufSize = 2 << 10
	liveMemory  = 16 << 10
)

// enterLive shrinks the session for live mode; the caller has reconciled,
// and nothing else uses the session yet.
func (s *session) enterLive() {
	s.ing.idle()
	if n := s.fr.r.Buffered(); n > 0 {
		// The peer's first pushes may be buffered already: keep them in
		// front of the small reader.
		b, _ := s.fr.r.Peek(n)
		s.fr.r = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(b)), s.stream), liveBufSize)
	} else {
		s.fr.r = bufio.NewReaderSize(s.stream, liveBufSize)
	}
	if s.fw.w.Buffered() > 0 {
		_ = s.fw.flush() // a failure shows at the next write
	}
	s.fw.w = bufio.NewWriterSize(s.stream, liveBufSize)
	s.fr.buf, s.outItems, s.items, s.inQ, s.outQ = nil, nil, nil, nil, nil
	if s.memory > liveMemory {
		s.stream.Scope().ReleaseMemory(s.memory - liveMemory)
		s.memory = liveMemory
	}
	s.svc.protect(s.stats.Peer)
}

// liveLoop pushes entries stored locally (by the app or by other sessions) to
// the peer and stores the peer's pushes, until ctx ends or the stream fails.
func (s *session) liveLoop(ctx context.Context, sub *Subscription) error {
	s.progress("live", true)
	readErr := make(chan error, 1)
	go func() { readErr <- s.liveReader() }()

	ping := time.NewTicker(livePingEvery)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			s.stream.Reset()
			<-readErr
			return ctx.Err()
		case err := <-readErr:
			s.stream.Reset()
			return err
		case <-ping.C:
			if err := s.writeLocked(func() error { return s.fw.write(framePing, nil) }, true); err != nil {
				s.stream.Reset()
				<-readErr
				return s.wrapIO("ping", err)
			}
		case <-sub.Ready():
			items, overflow, closed := sub.Next()
			if closed {
				_ = s.writeLocked(func() error {
					return s.fw.write(frameError, appendString([]byte{CodeShutdown}, "node shutting down"))
				}, true)
				s.stream.Reset()
				<-readErr
				return ErrClosed
			}
			if overflow {
				s.stream.Reset()
				<-readErr
				return fmt.Errorf("vault %s: %w", s.ns.Short(), ErrFellBehind)
			}
			if err := s.push(items); err != nil {
				s.stream.Reset()
				<-readErr
				return err
			}
			s.writeMu.Lock()
			if cap(s.outItems) > liveBufSize {
				s.outItems = nil
			}
			s.writeMu.Unlock()
		}
	}
}

func (s *session) push(items []Item) error {
	return s.writeLocked(func() error {
		for _, it := range items {
			if err := s.queueItem(it); err != nil {
				return err
			}
		}
		return s.flushItems()
	}, true)
}

func (s *session) liveReader() error {
	for {
		s.setReadDeadline(liveReadLimit)
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
			if cap(s.fr.buf) > liveBufSize {
				s.fr.buf = nil
			}
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
	}
}
