package vault

import (
	"context"
	"errors"
	"fmt"
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
