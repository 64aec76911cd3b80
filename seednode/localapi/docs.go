//go:build cgo

package localapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/state"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// errTooManyDocuments: every open document is in use.
var errTooManyDocuments = errors.New("too many documents in use at once")

// errClosing: serve is stopping.
var errClosing = errors.New("the local API is closing (seedfleet serve is stopping)")

type docKey struct {
	ns   vault.NamespaceID
	name string
}

// openDoc is a document open for the API: one per (vault, document), shared
// by every request, kept current by its own watch of the store.
type openDoc struct {
	d      *state.Document
	cancel context.CancelFunc

	// Guarded by docs.mu.
	users    int // requests and watchers holding it
	lastUsed time.Time
	subs     map[chan struct{}]struct{}
}

// docs keeps the open documents: at most max, the least recently used one
// nobody holds closed to make room.
type docs struct {
	h    *client.Home
	max  int
	ctx  context.Context
	logf func(string, ...any)

	wg   sync.WaitGroup // the documents' watches
	mu   sync.Mutex
	open map[docKey]*openDoc
}

// acquire returns the shared handle of document name in ns, opened on first
// use; release it when done.
func (c *docs) acquire(ns vault.NamespaceID, name string) (*openDoc, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil {
		return nil, errClosing
	}
	k := docKey{ns, name}
	if od, ok := c.open[k]; ok {
		od.users++
		return od, nil
	}
	if len(c.open) >= c.max && !c.evictLocked() {
		return nil, fmt.Errorf("%w (%d)", errTooManyDocuments, c.max)
	}
	d, err := state.Open(c.h, ns, name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(c.ctx)
	od := &openDoc{d: d, cancel: cancel, users: 1, subs: map[chan struct{}]struct{}{}}
	c.open[k] = od
	c.wg.Go(func() { c.follow(ctx, od) })
	c.wg.Go(func() { c.catchUp(ctx, od) })
	return od, nil
}

// release gives back what acquire returned.
func (c *docs) release(od *openDoc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	od.users--
	od.lastUsed = time.Now()
}

// evictLocked closes the least recently used document nobody holds.
func (c *docs) evictLocked() bool {
	var lru docKey
	var found *openDoc
	for k, od := range c.open {
		if od.users == 0 && (found == nil || od.lastUsed.Before(found.lastUsed)) {
			lru, found = k, od
		}
	}
	if found == nil {
		return false
	}
	found.cancel()
	delete(c.open, lru)
	return true
}

// follow applies what the store receives for the document (a sync, a live
// session) and tells the watchers, until ctx ends.
func (c *docs) follow(ctx context.Context, od *openDoc) {
	if err := od.d.Watch(ctx, func() { c.notify(od) }); err != nil && ctx.Err() == nil {
		c.logf("local API: watching document %s stopped: %v", od.d.Name(), err)
	}
	// A closed or evicted document finishes the snapshot its changes
	// started before the API's shutdown returns (and the home closes).
	if err := od.d.Flush(); err != nil {
		c.logf("local API: document %s: %v", od.d.Name(), err)
	}
}

// catchUp reads the document again once its watch has subscribed to the
// store: an entry stored between opening and subscribing is not lost.
func (c *docs) catchUp(ctx context.Context, od *openDoc) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(500 * time.Millisecond):
	}
	before, _ := od.d.Heads()
	if err := od.d.Refresh(); err != nil {
		c.logf("local API: reading document %s: %v", od.d.Name(), err)
		return
	}
	if after, _ := od.d.Heads(); !slices.Equal(before, after) {
		c.notify(od)
	}
}

// notify pokes every watcher of od; a watcher already poked reads the
// newest state once.
func (c *docs) notify(od *openDoc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ch := range od.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (c *docs) subscribe(od *openDoc, ch chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	od.subs[ch] = struct{}{}
}

func (c *docs) unsubscribe(od *openDoc, ch chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(od.subs, ch)
}

// closeAll stops every document's watch and waits for them; c.ctx ended
// already, so no new one starts.
func (c *docs) closeAll() {
	c.mu.Lock()
	for k, od := range c.open {
		od.cancel()
		delete(c.open, k)
	}
	c.mu.Unlock()
	c.wg.Wait()
}
