//go:build cgo

package state

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/sealed"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// DefaultSnapshotEvery is how many changes a device writes to a document
// before it writes a snapshot covering them, on average: each time, the
// count is drawn between three quarters and five quarters of it, so that
// devices writing alike (an agent's devices started together, all making
// changes at one rate) do not all save the whole document in the same
// second. Saving holds the document a few tens of milliseconds per
// thousand changes; eight devices saving at once on two cores held every
// change of the live benchmark for up to half a second.
const DefaultSnapshotEvery = 256

// maxEntryValue bounds what one change or snapshot may take in memory.
const maxEntryValue = 256 << 20

// Problem is a change or snapshot entry that was skipped: the document
// stays as the other entries make it.
type Problem struct {
	Path   string // "" when the entry could not even be decrypted
	Author vault.AuthorID
	Err    error
}

func (p Problem) Error() string {
	what := "entry"
	if p.Path != "" {
		what = p.Path
	}
	return fmt.Sprintf("%s by %s skipped: %v", what, p.Author.Short(), p.Err)
}

// Document is one agent-state document open on a device. Its methods are
// safe for concurrent use.
type Document struct {
	h    *client.Home
	ns   vault.NamespaceID
	name string
	// Stored (sealed) keys: the prefix of the change entries and the
	// snapshot key, to pick this document's entries out of a vault feed.
	changePrefix, snapshotKey []byte

	// SnapshotEvery: after this many own changes since the last snapshot,
	// Change starts one in the background (0: DefaultSnapshotEvery, varied
	// as it says; negative: never). Flush waits for it.
	SnapshotEvery int
	// nextSnapshot: the varied default count drawn for the snapshot to
	// come (0: not drawn yet).
	nextSnapshot int

	// snapMu serialises snapshots (a background one and Snapshot or
	// Import): an older save stored after a newer one's compaction would
	// lack changes that compaction deleted. Taken before mu.
	snapMu sync.Mutex
	// background: the snapshot Change started, if one runs; its error
	// stays in snapErr for Flush.
	background sync.WaitGroup
	snapping   bool
	snapErr    error
	// snapFailed: when the last background snapshot failed; the next waits
	// snapshotRetry (a full disk would otherwise have every change save
	// the whole document again).
	snapFailed time.Time
	// saving: a snapshot saved the document and has not compacted yet;
	// ownSinceSave is the oldest date of this device's changes stored
	// meanwhile (none: MaxUint64), which its tombstone must not cover
	// should the clock have gone back.
	saving       bool
	ownSinceSave uint64

	mu      sync.Mutex
	doc     *automerge.Doc
	read    map[vault.Hash]bool // values applied or refused, by entry hash
	known   map[[32]byte]bool   // change hashes the document holds (a cache)
	pending map[[32]byte]*pendingChange
	// awaiting: values whose sealed blob is not on this device yet (a sync
	// fetches it); read again by every apply until it is.
	awaiting map[vault.Hash]client.PrivateValue
	// held: snapshots from a live feed waiting for the changes they hold
	// to arrive on their own (see snapshotGrace).
	held     map[vault.Hash]heldSnapshot
	problems []Problem
	// ownSince: this device's changes the document holds that its last
	// snapshot does not cover (counted from the vault at open, so a device
	// that opens a document for each change compacts too).
	ownSince int
	// The problems the whole document had at the heads checkedAt (another
	// device may have written them), for writes checked as a whole.
	checkedAt []automerge.ChangeHash
	checked   []mismatch
}

// Open reads the document name of the private vault ns as this device has
// it: every snapshot, then every change. Entries that cannot be read are
// skipped and listed by Problems.
func Open(h *client.Home, ns vault.NamespaceID, name string) (d *Document, err error) {
	defer guard(&err)
	if err := CheckName(name); err != nil {
		return nil, err
	}
	kr, err := h.Keyring(ns)
	if err != nil {
		return nil, err
	}
	d = &Document{h: h, ns: ns, name: name, read: map[vault.Hash]bool{}, awaiting: map[vault.Hash]client.PrivateValue{},
		held:  map[vault.Hash]heldSnapshot{},
		known: map[[32]byte]bool{}, pending: map[[32]byte]*pendingChange{}, doc: automerge.New()}
	if d.changePrefix, err = sealed.StoredPrefix(kr.Names(), ChangePrefix(name)); err != nil {
		return nil, err
	}
	if d.snapshotKey, err = sealed.StoredKey(kr.Names(), SnapshotPath(name)); err != nil {
		return nil, err
	}
	if err := d.newActor(); err != nil {
		return nil, err
	}
	snaps, changes, err := d.entries()
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.apply(append(snaps, changes...), true)
	author := h.Author()
	for _, pv := range changes {
		if pv.Entry.Author == author {
			d.ownSince++
		}
	}
	return d, nil
}

// newActor gives the document a fresh actor: this device's author ID and 8
// random bytes, so history names the device, and two handles of one
// device never reuse a sequence number.
func (d *Document) newActor() error {
	author := d.h.Author()
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return err
	}
	return d.doc.SetActorID(hex.EncodeToString(append(author[:], r[:]...)))
}

// Name is the document's name.
func (d *Document) Name() string { return d.name }

// Refresh applies every entry of the document in the vault not read yet
// (after a sync, or when a live feed overflowed).
func (d *Document) Refresh() (err error) {
	defer guard(&err)
	snaps, changes, err := d.entries()
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.apply(append(snaps, changes...), true)
	return nil
}

// entries reads the document's snapshots and change entries as the vault
// holds them.
func (d *Document) entries() (snaps, changes []client.PrivateValue, err error) {
	if snaps, err = d.h.GetPrivate(d.ns, SnapshotPath(d.name)); err != nil {
		return nil, nil, err
	}
	changes, err = d.h.ListPrivate(d.ns, ChangePrefix(d.name), 0)
	return snaps, changes, err
}

// pendingChange is a change read from an entry, waiting for its
// dependencies (Automerge applies a change only after them).
type pendingChange struct {
	hdr    changeHeader
	data   []byte
	path   string
	author vault.AuthorID
}

// apply reads values (a snapshot is merged, a change queued) and applies
// every queued change whose dependencies are present. A snapshot may be
// held back for a while (see snapshotGrace), except with mergeHeld: a full
// read of the store (open, refresh), after which what a held snapshot
// holds will not come another way, merges them all. The caller holds d.mu.
func (d *Document) apply(vals []client.PrivateValue, mergeHeld bool) {
	vals = append(vals, d.reopenAwaiting()...)
	for _, pv := range vals {
		if d.read[pv.Entry.Hash] {
			continue
		}
		d.read[pv.Entry.Hash] = true
		p, err := d.readValue(pv, !mergeHeld)
		if errors.Is(err, client.ErrBlobMissing) {
			delete(d.read, pv.Entry.Hash)
			d.awaiting[pv.Entry.Hash] = pv
			continue
		}
		delete(d.awaiting, pv.Entry.Hash)
		if err != nil {
			d.problems = append(d.problems, Problem{Path: pv.Path, Author: pv.Entry.Author, Err: err})
			continue
		}
		if p != nil && !d.has(p.hdr.hash) {
			d.pending[p.hdr.hash] = p
		}
	}
	d.applyPending()
	if d.settleSnapshots(mergeHeld) {
		d.applyPending()
	}
}

// snapshotGrace is how long a snapshot from a live feed that holds changes
// the document lacks waits for them to arrive as change entries before it
// is merged whole. In a live session they usually are in flight: the other
// device's snapshot holds changes that reached it a moment before they
// reached this one, and loading a whole document to merge it (a tenth of a
// second at a few thousand changes, under the document's lock) for changes
// that arrive anyway stalled every device's merges whenever one compacted.
const snapshotGrace = time.Second

// heldSnapshot is a snapshot held back: its saved document and heads.
type heldSnapshot struct {
	data  []byte
	heads [][32]byte
	since time.Time
	pv    client.PrivateValue
}

// settleSnapshots drops the held snapshots whose heads the document now
// has and merges those held past snapshotGrace (all of them with force). It
// reports whether it merged any. The caller holds d.mu.
func (d *Document) settleSnapshots(force bool) (merged bool) {
	for h, hs := range d.held {
		switch {
		case d.hasAll(hs.heads):
		case force || time.Since(hs.since) >= snapshotGrace:
			if err := d.mergeSnapshot(hs.data); err != nil {
				d.problems = append(d.problems, Problem{Path: hs.pv.Path, Author: hs.pv.Entry.Author, Err: err})
			}
			merged = true
		default:
			continue
		}
		delete(d.held, h)
	}
	return merged
}

// reopenAwaiting reads again the entries that waited for their blob (a
// blob value's path is sealed inside it, so it is read anew once the blob
// is here). The caller holds d.mu.
func (d *Document) reopenAwaiting() []client.PrivateValue {
	if len(d.awaiting) == 0 {
		return nil
	}
	items := make([]vault.Item, 0, len(d.awaiting))
	for _, pv := range d.awaiting {
		items = append(items, vault.Item{Entry: pv.Entry})
	}
	vals, err := d.h.OpenPrivate(d.ns, items)
	if err != nil {
		return nil // read again at the next apply
	}
	return vals
}

// hasAll reports whether the document holds every one of hashes (and so
// every change they depend on). None is all.
func (d *Document) hasAll(hashes [][32]byte) bool {
	for _, h := range hashes {
		if !d.has(h) {
			return false
		}
	}
	return true
}

// has reports whether the document holds the change hash.
func (d *Document) has(hash [32]byte) bool {
	if d.known[hash] {
		return true
	}
	if _, err := d.doc.Change(automerge.ChangeHash(hash)); err == nil {
		d.known[hash] = true
		return true
	}
	return false
}

// applyPending applies the pending changes that can be, dependencies first
// (Kahn's order), in one call; one by one when that call fails, so a bad
// change costs only itself and what depends on it.
func (d *Document) applyPending() {
	waiting := map[[32]byte][]*pendingChange{}
	missing := map[*pendingChange]int{}
	var ready []*pendingChange
	for _, p := range d.pending {
		for _, dep := range p.hdr.deps {
			if !d.has(dep) {
				missing[p]++
				waiting[dep] = append(waiting[dep], p)
			}
		}
		if missing[p] == 0 {
			ready = append(ready, p)
		}
	}
	var order []*pendingChange
	for len(ready) > 0 {
		p := ready[0]
		ready = ready[1:]
		order = append(order, p)
		for _, w := range waiting[p.hdr.hash] {
			if missing[w]--; missing[w] == 0 {
				ready = append(ready, w)
			}
		}
	}
	if len(order) == 0 {
		return
	}
	var batch []byte
	for _, p := range order {
		batch = append(batch, p.data...)
	}
	batchErr := d.doc.LoadIncremental(batch)
	for _, p := range order {
		delete(d.pending, p.hdr.hash)
		if batchErr != nil {
			if err := d.doc.LoadIncremental(p.data); err != nil {
				d.problems = append(d.problems, Problem{Path: p.path, Author: p.author, Err: fmt.Errorf("%w: %v", ErrMalformed, err)})
				continue
			}
		}
		d.known[p.hdr.hash] = true
	}
}

// AwaitingBlobs is how many of the document's entries wait for their
// sealed value (a snapshot or a large change is a blob) to reach this
// device: a sync fetches them, and the document reads them then.
func (d *Document) AwaitingBlobs() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.awaiting)
}

// waitingOnTime reports whether entries wait for their blob or snapshots
// are held back: Watch then reads again every awaitingRetry.
func (d *Document) waitingOnTime() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.awaiting) > 0 || len(d.held) > 0
}

// Waiting is how many changes read wait for changes this device does not
// have yet (a sync brings them).
func (d *Document) Waiting() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pending)
}

// readValue decrypts and decodes one entry: a snapshot is merged (or, with
// mayHold, held back: see snapshotGrace), a change is returned to be
// applied.
func (d *Document) readValue(pv client.PrivateValue, mayHold bool) (p *pendingChange, err error) {
	defer guard(&err)
	if pv.Err != nil {
		return nil, pv.Err
	}
	raw := pv.Value
	if pv.Blob {
		var buf bytes.Buffer
		if pv.Entry.Size > maxEntryValue {
			return nil, fmt.Errorf("%w: %d bytes (at most %d)", ErrMalformed, pv.Entry.Size, maxEntryValue)
		}
		if err := d.h.ExportPrivate(pv, &buf); err != nil {
			return nil, err
		}
		raw = buf.Bytes()
	}
	data, err := decodeEntry(raw)
	if err != nil {
		return nil, err
	}
	if pv.Path == SnapshotPath(d.name) {
		heads, err := snapshotHeads(data)
		switch {
		case err == nil && d.hasAll(heads):
			return nil, nil // it holds nothing this document lacks
		case err == nil && mayHold && len(d.doc.Heads()) > 0: // an empty document adopts it at no cost
			d.held[pv.Entry.Hash] = heldSnapshot{data: data, heads: heads, since: time.Now(), pv: pv}
			return nil, nil
		}
		return nil, d.mergeSnapshot(data)
	}
	hash, err := ParseChangePath(d.name, pv.Path)
	if err != nil {
		return nil, err
	}
	hdr, err := checkChange(data, hash, pv.Entry.Author)
	if err != nil {
		return nil, err
	}
	return &pendingChange{hdr: hdr, data: data, path: pv.Path, author: pv.Entry.Author}, nil
}

// mergeSnapshot loads a saved document apart and merges it in: a snapshot
// that does not load changes nothing. An empty document (the first
// snapshot an open reads) becomes the loaded one, with this handle's
// actor: merging would apply every change of it a second time.
func (d *Document) mergeSnapshot(data []byte) error {
	snap, err := automerge.Load(data)
	if err != nil {
		return fmt.Errorf("%w: snapshot: %v", ErrMalformed, err)
	}
	if len(d.doc.Heads()) == 0 {
		d.doc = snap
		return d.newActor()
	}
	_, err = d.doc.Merge(snap)
	return err
}

// Problems lists the entries skipped so far.
func (d *Document) Problems() []Problem {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Problem(nil), d.problems...)
}

// JSON returns the value at p as JSON (the whole document for an empty p).
func (d *Document) JSON(p Path) (out []byte, err error) {
	defer guard(&err)
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.value(p)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// Get reads the value at p into dst, as encoding/json would.
func (d *Document) Get(p Path, dst any) error {
	raw, err := d.JSON(p)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, dst)
}

// value is the generic JSON form of the value at p. The caller holds d.mu.
func (d *Document) value(p Path) (any, error) {
	tx := &Tx{doc: d.doc}
	if len(p) == 0 {
		return toJSON(d.doc.Root())
	}
	s, err := tx.target(p, false)
	if err != nil {
		return nil, err
	}
	v, err := s.get()
	if err != nil {
		return nil, err
	}
	if v.IsVoid() {
		return nil, fmt.Errorf("%s: %w", p, ErrNotFound)
	}
	return toJSON(v)
}

// Heads are the hashes of the document's current heads, sorted: two
// replicas with equal heads hold the same document.
func (d *Document) Heads() (heads []string, err error) {
	defer guard(&err)
	d.mu.Lock()
	defer d.mu.Unlock()
	return headStrings(d.doc), nil
}

func headStrings(doc *automerge.Doc) []string {
	var out []string
	for _, h := range doc.Heads() {
		out = append(out, h.String())
	}
	sortStrings(out)
	return out
}

// Change runs fn in a transaction and stores what it did as one change,
// sealed, in the vault. When fn (or storing) fails, the document is as
// before. A change that did nothing stores nothing.
func (d *Document) Change(fn func(*Tx) error) (err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	before := d.doc.Heads()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrAutomerge, r)
		}
		if err != nil {
			if rerr := d.rollback(before); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
	}()
	tx := &Tx{doc: d.doc}
	if err := fn(tx); err != nil {
		return err
	}
	hash, err := d.doc.Commit(joinOps(tx.ops))
	if err != nil {
		if len(d.doc.Heads()) == len(before) && sameHeads(d.doc.Heads(), before) {
			return nil // nothing changed
		}
		return err
	}
	if err := d.check(before, tx.touched); err != nil {
		return err
	}
	change, err := d.doc.Change(hash)
	if err != nil {
		return err
	}
	se, err := d.h.PutPrivate(d.ns, ChangePath(d.name, hash), encodeEntry(change.Save()))
	if err != nil {
		return fmt.Errorf("store change: %w", err)
	}
	d.known[hash] = true
	d.ownSince++
	if d.saving {
		d.ownSinceSave = min(d.ownSinceSave, se.Entry.Timestamp)
	}
	if every := d.snapshotEvery(); every > 0 && d.ownSince >= every && !d.snapping && time.Since(d.snapFailed) >= snapshotRetry {
		d.snapping = true
		d.background.Add(1)
		go d.backgroundSnapshot()
	}
	return nil
}

// backgroundSnapshot writes the snapshot Change asked for. Saving a large
// document takes a while; changes and merges go on meanwhile (a live
// document would otherwise stall every few hundred changes).
func (d *Document) backgroundSnapshot() {
	defer d.background.Done()
	err := d.snapshot()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.snapping = false
	if err != nil {
		d.snapFailed = time.Now()
		d.snapErr = fmt.Errorf("snapshot of %q: %w", d.name, err)
	}
}

// snapshotRetry is how long Change waits after a background snapshot
// failed before it starts another.
const snapshotRetry = 30 * time.Second

// Flush waits for a snapshot Change started in the background and returns
// the error of the last one that failed (its changes stay stored; a change
// snapshotRetry later tries again). Call it before the process exits: a
// snapshot cut short loses nothing, but compacts nothing either.
func (d *Document) Flush() error {
	d.background.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.snapErr
	d.snapErr = nil
	return err
}

// rollback drops what a failed transaction did: the document becomes a
// fork at the heads it had, with a fresh actor (the dropped change may
// have used the old actor's next sequence number).
func (d *Document) rollback(heads []automerge.ChangeHash) (err error) {
	defer guard(&err)
	fork := automerge.New()
	if len(heads) > 0 {
		if fork, err = d.doc.Fork(heads...); err != nil {
			return err
		}
	}
	d.doc = fork
	return d.newActor()
}

// snapshotEvery is the count of own changes that starts the next snapshot.
// The caller holds d.mu.
func (d *Document) snapshotEvery() int {
	if d.SnapshotEvery != 0 {
		return d.SnapshotEvery
	}
	if d.nextSnapshot == 0 {
		d.nextSnapshot = DefaultSnapshotEvery*3/4 + mrand.IntN(DefaultSnapshotEvery/2+1)
	}
	return d.nextSnapshot
}

// Snapshot writes this device's snapshot of the document and compacts:
// see snapshot.
func (d *Document) Snapshot() (err error) {
	defer guard(&err)
	return d.snapshot()
}

// snapshot applies every entry of the document the vault holds, stores
// Automerge's save() of the result as this device's snapshot, and then
// deletes this device's change entries the snapshot covers, with one prefix
// tombstone (see coveredUntil). The document is locked only to apply and
// save it (a save costs less than a fork), not while the snapshot is sealed
// and written.
func (d *Document) snapshot() error {
	d.snapMu.Lock()
	defer d.snapMu.Unlock()
	snaps, changes, err := d.entries()
	if err != nil {
		return err
	}
	d.mu.Lock()
	// Held snapshots stay held: this device's snapshot covers, and its
	// tombstone deletes, only what the document holds.
	d.apply(append(snaps, changes...), false)
	until := d.coveredUntil(changes)
	covered := d.ownSince
	saved := d.doc.Save()
	d.saving, d.ownSinceSave = true, math.MaxUint64
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.saving = false
		d.mu.Unlock()
	}()
	se, err := d.h.PutPrivate(d.ns, SnapshotPath(d.name), encodeEntry(saved))
	if err != nil {
		return fmt.Errorf("store snapshot: %w", err)
	}
	// The snapshot is the document's own save(): reading it back (the next
	// snapshot, a feed, a refresh) would load and merge the whole document
	// for nothing. The tombstone is written under the lock, so no change of
	// this device is stored between its date's choice and it.
	d.mu.Lock()
	defer d.mu.Unlock()
	d.read[se.Entry.Hash] = true
	d.ownSince -= covered
	d.nextSnapshot = 0
	if until = min(until, se.Entry.Timestamp, d.ownSinceSave); until <= 1 {
		return nil // nothing of this device's the snapshot covers
	}
	if _, err := d.h.DeletePrivateBefore(d.ns, ChangePrefix(d.name), until); err != nil {
		return fmt.Errorf("the snapshot is stored, but compaction failed: %w", err)
	}
	return nil
}

// coveredUntil is the date of the prefix tombstone that deletes this
// device's change entries, read as changes, that the document holds (and so
// a snapshot saved from it now): just after the newest of them, but not
// after the oldest one it does not hold (waiting for a dependency, or
// unreadable); 0 when it holds none. Other devices' changes stay until
// their own snapshots; this device's later changes are dated after the
// tombstone (the client dates a write after a tombstone covering it). The
// caller holds d.mu.
func (d *Document) coveredUntil(changes []client.PrivateValue) uint64 {
	author := d.h.Author()
	var newest uint64
	until := uint64(math.MaxUint64)
	for _, pv := range changes {
		if pv.Entry.Author != author {
			continue
		}
		ts := pv.Entry.Timestamp
		hash, err := ParseChangePath(d.name, pv.Path)
		if pv.Err != nil || err != nil || !d.has(hash) {
			until = min(until, ts)
			continue
		}
		newest = max(newest, ts)
	}
	if newest == 0 {
		return 0
	}
	return min(until, newest+1)
}

// Import merges a document saved by any Automerge implementation (an app
// that edits the state with Automerge itself) and stores the result as this
// device's snapshot: the app's changes carry the app's actors, which change
// entries refuse, and a snapshot carries them as they are. Like a sync, an
// import is not checked against the document's schema.
func (d *Document) Import(saved []byte) (err error) {
	defer guard(&err)
	d.mu.Lock()
	err = d.mergeSnapshot(saved)
	d.mu.Unlock()
	if err != nil {
		return err
	}
	return d.snapshot()
}

// Save returns Automerge's save() of the document, which any Automerge
// implementation loads.
func (d *Document) Save() (out []byte, err error) {
	defer guard(&err)
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.doc.Save(), nil
}

// Watch applies the document's entries as the vault stores them (a sync,
// a live session, another handle) and calls changed after each batch that
// moved the document's heads. It returns when ctx ends.
//
// Entries that wait for their blob (see AwaitingBlobs) are read again every
// awaitingRetry while there are any: the blob comes by another way than the
// store's feed. Held snapshots (see snapshotGrace) are checked as often.
func (d *Document) Watch(ctx context.Context, changed func()) error {
	sub := d.h.Store.Subscribe(d.ns, 0)
	defer sub.Close()
	for {
		var retry <-chan time.Time
		if d.waitingOnTime() {
			retry = time.After(awaitingRetry)
		}
		var items []vault.Item
		var overflow bool
		select {
		case <-ctx.Done():
			return nil
		case <-retry:
		case <-sub.Ready():
			var closed bool
			if items, overflow, closed = sub.Next(); closed {
				return errors.New("the device's store closed")
			}
		}
		moved, err := d.applyFeed(items, overflow)
		if err != nil {
			return err
		}
		if moved {
			changed()
		}
	}
}

// awaitingRetry is how often Watch reads again the entries whose blob has
// not arrived.
const awaitingRetry = 250 * time.Millisecond

// applyFeed applies the items of this document from a store feed (all of
// the document's entries again after an overflow) and reports whether the
// heads moved.
func (d *Document) applyFeed(items []vault.Item, overflow bool) (moved bool, err error) {
	defer guard(&err)
	before, _ := d.Heads()
	if overflow {
		err = d.Refresh()
	} else {
		err = d.applyItems(items)
	}
	if err != nil {
		return false, err
	}
	after, _ := d.Heads()
	return !equalStrings(before, after), nil
}

func (d *Document) applyItems(items []vault.Item) error {
	if len(items) == 0 { // read again what awaits its blob
		d.mu.Lock()
		defer d.mu.Unlock()
		d.apply(nil, false)
		return nil
	}
	var mine []vault.Item
	for _, it := range items {
		k := it.Entry.Key
		if bytes.Equal(k, d.snapshotKey) || (len(k) > len(d.changePrefix) && bytes.HasPrefix(k, d.changePrefix)) {
			mine = append(mine, it)
		}
	}
	if len(mine) == 0 {
		return nil
	}
	vals, err := d.h.OpenPrivate(d.ns, mine)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.apply(vals, false)
	return nil
}
