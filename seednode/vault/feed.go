package vault

import (
	"slices"
	"sync"
)

// maxFeedQueue bounds what a live subscriber may have waiting. A subscriber
// that falls further behind is marked overflowed: it must reconcile again
// instead of receiving an unbounded backlog.
const maxFeedQueue = 8192

// Subscription receives the items stored in one vault after it was created.
type Subscription struct {
	f      *feed
	ns     NamespaceID
	origin Origin
	ready  chan struct{}

	mu       sync.Mutex
	queue    []Item
	overflow bool
	closed   bool
	// notify, if set, is called (under the feed's lock: it must not block
	// or call into the feed) whenever Ready is signalled.
	notify func()
}

// setNotify makes fn called whenever Ready is signalled (at once, if
// something is waiting): a live session starts a pusher then, instead of
// keeping a goroutine waiting on Ready.
func (s *Subscription) setNotify(fn func()) {
	s.f.mu.Lock()
	s.notify = fn
	s.f.mu.Unlock()
	if s.pending() {
		fn()
	}
}

// pending reports whether Next has something to return.
func (s *Subscription) pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) > 0 || s.overflow || s.closed
}

// Ready is signalled when items (or an overflow) are waiting.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Next takes the waiting items. overflow means items were dropped and the
// subscriber must reconcile; closed means the store closed.
func (s *Subscription) Next() (items []Item, overflow, closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	items, s.queue = s.queue, nil
	return items, s.overflow, s.closed
}

// Close stops the subscription.
func (s *Subscription) Close() { s.f.remove(s) }

// feed holds each vault's subscribers in a slice: most vaults of a seed
// with thousands of live devices have one, and a map per vault cost a few
// hundred bytes each.
type feed struct {
	mu   sync.Mutex
	subs map[NamespaceID][]*Subscription
}

// Subscribe returns the items stored in ns from now on, except those inserted
// with origin (the subscriber's own).
func (s *Store) Subscribe(ns NamespaceID, origin Origin) *Subscription {
	sub := &Subscription{f: &s.feed, ns: ns, origin: origin, ready: make(chan struct{}, 1)}
	f := &s.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.closed.Load() {
		sub.closed = true
		sub.ready <- struct{}{}
		return sub
	}
	if f.subs == nil {
		f.subs = make(map[NamespaceID][]*Subscription)
	}
	f.subs[ns] = append(f.subs[ns], sub)
	return sub
}

func (f *feed) remove(s *Subscription) {
	f.mu.Lock()
	defer f.mu.Unlock()
	subs := f.subs[s.ns]
	i := slices.Index(subs, s)
	if i < 0 {
		return // closed twice, or subscribed to a closed store
	}
	last := len(subs) - 1
	subs[i], subs[last] = subs[last], nil
	if last == 0 {
		delete(f.subs, s.ns)
	} else {
		f.subs[s.ns] = subs[:last]
	}
}

func (f *feed) publish(ns NamespaceID, origin Origin, items []Item) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, sub := range f.subs[ns] {
		if sub.origin == origin && origin != 0 {
			continue
		}
		sub.mu.Lock()
		if !sub.overflow {
			if len(sub.queue)+len(items) > maxFeedQueue {
				sub.overflow, sub.queue = true, nil
			} else {
				sub.queue = append(sub.queue, items...)
			}
		}
		sub.mu.Unlock()
		select {
		case sub.ready <- struct{}{}:
		default:
		}
		if sub.notify != nil {
			sub.notify()
		}
	}
}

func (f *feed) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, subs := range f.subs {
		for _, sub := range subs {
			sub.mu.Lock()
			sub.closed = true
			sub.mu.Unlock()
			select {
			case sub.ready <- struct{}{}:
			default:
			}
			if sub.notify != nil {
				sub.notify()
			}
		}
	}
	f.subs = nil
}
