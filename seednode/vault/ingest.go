package vault

import (
	"bytes"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
)

// ingester verifies and stores the items a peer sends while the session keeps
// reading: decoding, signature checks (on every core) and Pebble writes
// overlap. flush is the barrier at the end of a turn: after it returns, every
// accepted item is durable, which is what the next turn acknowledges.
type ingester struct {
	store    *Store
	verifier *Verifier
	lim      Limits
	origin   Origin

	cur       []Item
	verifyQ   chan []Item
	insertQ   chan []Item
	pending   sync.WaitGroup
	verifiers sync.WaitGroup
	inserter  sync.WaitGroup
	mu        sync.Mutex
	res       InsertResult // totals; StoredItems is not kept
	fatal     error        // a peer that sent a forged or malformed entry
	received  atomic.Int64
	// discarded: the session failed; items still queued are dropped, so a
	// turn that ends in a protocol error stores nothing more.
	discarded atomic.Bool
	// onStored, if set, sees the items each commit stored (from the insert
	// goroutine; it must not block).
	onStored func([]Item)
}

const ingestChunk = 256

func newIngester(st *Store, v *Verifier, lim Limits, origin Origin) *ingester {
	n := runtime.GOMAXPROCS(0)
	ing := &ingester{
		store: st, verifier: v, lim: lim.withDefaults(), origin: origin,
		verifyQ: make(chan []Item, 2*n),
		insertQ: make(chan []Item, 2*n),
	}
	for range n {
		ing.verifiers.Add(1)
		go ing.verifyLoop()
	}
	ing.inserter.Add(1)
	go ing.insertLoop()
	return ing
}

// add queues one decoded item.
func (ing *ingester) add(it Item) {
	ing.received.Add(1)
	if bytes.Equal(it.Entry.Key, AgentDocKey) {
		// The entries after an agent document are checked against it: store
		// it, and everything before it, before going on.
		ing.submit()
		ing.cur = append(ing.cur, it)
		ing.submit()
		ing.pending.Wait()
		return
	}
	ing.cur = append(ing.cur, it)
	if len(ing.cur) >= ingestChunk {
		ing.submit()
	}
}

func (ing *ingester) submit() {
	if len(ing.cur) == 0 {
		return
	}
	ing.pending.Add(1)
	ing.verifyQ <- ing.cur
	ing.cur = make([]Item, 0, ingestChunk)
}

// isRefusal tells a policy refusal (the entry is genuine but not acceptable
// here, e.g. from the future) from a forgery.
func isRefusal(err error) bool {
	return errors.Is(err, ErrFutureEntry) || errors.Is(err, ErrKeyTooLong) || errors.Is(err, ErrCapExpired)
}

func (ing *ingester) verifyLoop() {
	defer ing.verifiers.Done()
	for chunk := range ing.verifyQ {
		entries := make([]SignedEntry, len(chunk))
		for i := range chunk {
			entries[i] = chunk[i].Entry
		}
		errs := make([]error, len(chunk))
		ing.verifier.verifyChunk(entries, errs, ing.lim)
		ok := chunk[:0]
		for i, err := range errs {
			switch {
			case err == nil:
				ok = append(ok, chunk[i])
			case isRefusal(err):
				ing.mu.Lock()
				ing.res.refuse(keyErr(&chunk[i].Entry, err))
				ing.mu.Unlock()
			default:
				ing.mu.Lock()
				if ing.fatal == nil {
					ing.fatal = keyErr(&chunk[i].Entry, err)
				}
				ing.mu.Unlock()
			}
		}
		if len(ok) == 0 {
			ing.pending.Done()
			continue
		}
		ing.insertQ <- ok
	}
}

func keyErr(e *SignedEntry, err error) error {
	return &EntryError{Key: e.Key, Author: e.Author, Err: err}
}

// EntryError names the entry an error is about.
type EntryError struct {
	Key    []byte
	Author AuthorID
	Err    error
}

func (e *EntryError) Error() string {
	return "entry " + quoteKey(e.Key) + " by " + e.Author.Short() + ": " + e.Err.Error()
}

func (e *EntryError) Unwrap() error { return e.Err }

func quoteKey(k []byte) string {
	const limit = 64
	if len(k) > limit {
		return strconv.Quote(string(k[:limit])) + "…"
	}
	return strconv.Quote(string(k))
}

func (ing *ingester) insertLoop() {
	defer ing.inserter.Done()
	for chunk := range ing.insertQ {
		batch, n := chunk, 1
		// Group whatever else is ready into one commit.
	drain:
		for len(batch) < 8*ingestChunk {
			select {
			case more, ok := <-ing.insertQ:
				if !ok {
					break drain
				}
				batch = append(batch, more...)
				n++
			default:
				break drain
			}
		}
		if ing.discarded.Load() {
			for range n {
				ing.pending.Done()
			}
			continue
		}
		res, err := ing.store.Insert(batch, ing.origin, false)
		if err == nil && ing.onStored != nil && res.Stored > 0 {
			ing.onStored(res.StoredItems)
		}
		ing.mu.Lock()
		ing.res.Stored += res.Stored
		ing.res.Stale += res.Stale
		ing.res.Refused += res.Refused
		ing.res.Purged += res.Purged
		if ing.res.FirstRefusal == nil {
			ing.res.FirstRefusal = res.FirstRefusal
		}
		if err != nil && ing.fatal == nil {
			ing.fatal = &localError{err}
		}
		ing.mu.Unlock()
		for range n {
			ing.pending.Done()
		}
	}
}

// localError is a failure of this node (disk, closed store), not the peer's fault.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// flush waits until every queued item is verified and stored, then makes
// the writes durable. It returns the first fatal error.
func (ing *ingester) flush() error {
	ing.submit()
	ing.pending.Wait()
	ing.mu.Lock()
	fatal := ing.fatal
	ing.mu.Unlock()
	if fatal != nil {
		return fatal
	}
	if err := ing.store.Sync(); err != nil {
		return &localError{err}
	}
	return nil
}

func (ing *ingester) totals() InsertResult {
	ing.mu.Lock()
	defer ing.mu.Unlock()
	return ing.res
}

// discard drops the items not yet stored.
func (ing *ingester) discard() {
	ing.discarded.Store(true)
	ing.cur = nil
}

// close stops the workers after the queued items are handled (or dropped,
// after discard).
func (ing *ingester) close() {
	ing.submit()
	close(ing.verifyQ)
	ing.verifiers.Wait()
	close(ing.insertQ)
	ing.inserter.Wait()
}
