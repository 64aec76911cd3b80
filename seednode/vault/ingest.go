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
//
// Its workers start with the first full chunk only: a turn of a few items
// (an incremental sync, a live push) is verified and stored by the session
// goroutine itself at the barrier, where starting GOMAXPROCS+1 goroutines
// cost more than the work. A live session stops them again (idle), so it
// holds no goroutines but its own while nothing arrives.
type ingester struct {
	store    *Store
	verifier *Verifier
	lim      Limits
	origin   Origin

	cur       []Item
	started   bool // the workers run
	unsynced  bool // items arrived since the last flush
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
	return &ingester{store: st, verifier: v, lim: lim.withDefaults(), origin: origin}
}

// start starts the workers (once until idle).
func (ing *ingester) start() {
	if ing.started {
		return
	}
	ing.started = true
	n := runtime.GOMAXPROCS(0)
	ing.verifyQ = make(chan []Item, 2*n)
	ing.insertQ = make(chan []Item, 2*n)
	for range n {
		ing.verifiers.Add(1)
		go ing.verifyLoop()
	}
	ing.inserter.Add(1)
	go ing.insertLoop()
}

// add queues one decoded item.
func (ing *ingester) add(it Item) {
	ing.received.Add(1)
	ing.unsynced = true
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
	chunk := ing.cur
	ing.cur = nil
	if len(chunk) >= ingestChunk {
		ing.cur = make([]Item, 0, ingestChunk) // more are coming
	}
	if !ing.started && len(chunk) < ingestChunk {
		// A partial chunk with no workers running: the end of a small
		// turn. Verify and store it here, in order.
		if ok := ing.verify(chunk); len(ok) > 0 && !ing.discarded.Load() {
			ing.insert(ok)
		}
		return
	}
	ing.start()
	ing.pending.Add(1)
	ing.verifyQ <- chunk
}

// isRefusal tells a policy refusal (the entry is genuine but not acceptable
// here, e.g. from the future) from a forgery.
func isRefusal(err error) bool {
	return errors.Is(err, ErrFutureEntry) || errors.Is(err, ErrKeyTooLong) || errors.Is(err, ErrCapExpired)
}

func (ing *ingester) verifyLoop() {
	defer ing.verifiers.Done()
	for chunk := range ing.verifyQ {
		ok := ing.verify(chunk)
		if len(ok) == 0 {
			ing.pending.Done()
			continue
		}
		ing.insertQ <- ok
	}
}

// verify checks the signatures of chunk and returns the items that passed
// (in chunk's array); it records refusals and the first forgery.
func (ing *ingester) verify(chunk []Item) []Item {
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
	return ok
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
		if !ing.discarded.Load() {
			ing.insert(batch)
		}
		for range n {
			ing.pending.Done()
		}
	}
}

// insert stores verified items (not durably: flush syncs) and adds the
// result to the totals.
func (ing *ingester) insert(batch []Item) {
	res, err := ing.store.Insert(batch, ing.origin, false)
	if err == nil && ing.onStored != nil && res.Stored > 0 {
		ing.onStored(res.StoredItems)
	}
	ing.mu.Lock()
	ing.res.Stored += res.Stored
	ing.res.Stale += res.Stale
	ing.res.Refused += res.Refused
	ing.res.Purged += res.Purged
	ing.res.Deleted += res.Deleted
	if ing.res.FirstRefusal == nil {
		ing.res.FirstRefusal = res.FirstRefusal
	}
	if err != nil && ing.fatal == nil {
		ing.fatal = &localError{err}
	}
	ing.mu.Unlock()
}

// localError is a failure of this node (disk, closed store), not the peer's fault.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// flush waits until every queued item is verified and stored, then makes
// the writes durable. It returns the first fatal error. A turn that
// brought no items acknowledges nothing new, so it costs no fsync (a sync
// of a few changes had three, one per turn); one that did is synced even
// if every item was already stored: another session may have stored them
// without syncing yet.
func (ing *ingester) flush() error {
	ing.submit()
	ing.pending.Wait()
	ing.mu.Lock()
	fatal := ing.fatal
	ing.mu.Unlock()
	if fatal != nil {
		return fatal
	}
	if !ing.unsynced {
		return nil
	}
	ing.unsynced = false
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

// idle stops the workers after the queued items are handled; the next full
// chunk starts them again.
func (ing *ingester) idle() {
	ing.submit()
	if !ing.started {
		return
	}
	ing.started = false
	close(ing.verifyQ)
	ing.verifiers.Wait()
	close(ing.insertQ)
	ing.inserter.Wait()
}

// close stops the workers after the queued items are handled (or dropped,
// after discard).
func (ing *ingester) close() { ing.idle() }
