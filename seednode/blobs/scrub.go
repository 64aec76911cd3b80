package blobs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Damage is rot found in a blob the store held complete: its Groups failed
// verification against the blob's hash (their bytes, or a tree node above
// them, changed on disk). By the time it is reported the blob is partial,
// with those groups unverified: no longer served, not reported complete,
// and a fetch asks for those groups only. A packed blob (a small one kept
// in a pack file with others, see batchWriter) is dropped whole instead:
// missing, with Groups naming all of them, and fetched again whole.
type Damage struct {
	Hash   [32]byte
	Size   uint64
	Groups Ranges
	// Found is where: "scrub" (the background scrubber) or "serve" (a
	// transfer to a peer, which stopped before the bad group).
	Found string
}

// OnDamage sets the function told of every Damage (nil: nobody). A seed
// uses it to fetch the groups again from another replica.
func (s *Store) OnDamage(fn func(Damage)) { s.onDamage.Store(&fn) }

type damageHook = atomic.Pointer[func(Damage)]

// dropGroups records that groups bad of the complete blob h failed
// verification: the blob becomes partial where it lies (recDamaged, one
// record and bitmap write, no file moved), with every other group still
// verified. A blob that changed meanwhile (deleted, already dropped,
// fetched anew) is left alone.
func (s *Store) dropGroups(h [32]byte, size uint64, bad Ranges, found string) error {
	release, err := s.acquire()
	if err != nil {
		return err
	}
	defer release()
	bad = bad.normalize(NumGroups(size))
	s.mu.Lock() // one drop at a time; a receiver opening now sees before or after
	defer s.mu.Unlock()
	s.packMu.Lock() // a Delete of the blob now sees before or after
	defer s.packMu.Unlock()
	r, ok, err := s.record(h)
	if err != nil || !ok || r.size != size || len(bad) == 0 {
		return err
	}
	switch r.kind {
	case recPacked:
		return s.dropPackedBlob(h, r, found)
	case recFile:
	default:
		return nil
	}
	groups := NumGroups(size)
	bm := newBitmap(groups)
	for g := range groups {
		bm.set(g)
	}
	for _, g := range bad {
		for i := g.Start; i < g.End; i++ {
			bm.clear(i)
		}
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(key(kindRecord, h), record{kind: recDamaged, size: size}.encode(), nil)
	putBitmapPages(b, h, bm, nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("blob %s: record damage: %w", ID(h).Short(), err)
	}
	if fn := s.onDamage.Load(); fn != nil && *fn != nil {
		(*fn)(Damage{Hash: h, Size: size, Groups: bad, Found: found})
	}
	return nil
}

// dropPackedBlob drops a packed blob found damaged: its record goes, with
// its place in its pack (the pack too, if no other blob is left in it), and
// Damage names every group. The caller holds s.mu and s.packMu.
func (s *Store) dropPackedBlob(h [32]byte, r record, found string) error {
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Delete(key(kindRecord, h), nil)
	deleteBitmap(b, h)
	pack, err := s.dropPacked(b, r)
	if err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("blob %s: drop the damaged packed blob: %w", ID(h).Short(), err)
	}
	if pack != "" {
		if err := os.Remove(pack); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if fn := s.onDamage.Load(); fn != nil && *fn != nil {
		(*fn)(Damage{Hash: h, Size: r.size, Groups: Ranges{{0, NumGroups(r.size)}}, Found: found})
	}
	return nil
}

// storedData is a complete blob's data file as OpenBlob hands it out: it
// names the blob, so WriteStream can check what it sends against the blob's
// hash and report a group that fails (see WriteStream).
type storedData struct {
	*os.File
	s    *Store
	hash [32]byte
}

// DefaultScrubRate is the scrubber's default pace: 16 MiB/s reads a TiB of
// blobs in under a day, for a few percent of a core and of a disk.
const DefaultScrubRate = 16 << 20

// DefaultScrubEvery is the default time between the starts of two passes.
const DefaultScrubEvery = 24 * time.Hour

// ScrubOptions tune a Scrubber.
type ScrubOptions struct {
	// Rate bounds the bytes read per second (data and outboard; default
	// DefaultScrubRate).
	Rate int64
	// Every is the least time between the starts of two passes over the
	// store (default DefaultScrubEvery); Poke starts one sooner.
	Every time.Duration
	// Scrubbed, if set, is called with the bytes of each blob verified.
	Scrubbed func(bytes uint64)
	Logger   *slog.Logger
}

// Scrubber verifies, in the background and at a bounded rate, every
// complete blob's data against its outboard and the outboard against the
// blob's hash, in its own files or in a pack (blobs inline in the store's
// records are checked by Pebble's block checksums). A group that fails is dropped (see Damage). Its place in the
// store survives restarts, so frequent restarts do not keep it scrubbing
// the same blobs.
type Scrubber struct {
	s    *Store
	opts ScrubOptions
	wake chan struct{}
}

// NewScrubber returns a scrubber of s; Run runs it.
func NewScrubber(s *Store, opts ScrubOptions) *Scrubber {
	if opts.Rate <= 0 {
		opts.Rate = DefaultScrubRate
	}
	if opts.Every <= 0 {
		opts.Every = DefaultScrubEvery
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Scrubber{s: s, opts: opts, wake: make(chan struct{}, 1)}
}

// Poke starts a pass now, or right after the running one.
func (sc *Scrubber) Poke() {
	select {
	case sc.wake <- struct{}{}:
	default:
	}
}

// Run makes a pass at once, then one every opts.Every (or when poked),
// until ctx ends.
func (sc *Scrubber) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-sc.wake:
		}
		start := time.Now()
		st, err := sc.Pass(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			sc.opts.Logger.Warn("blob scrub pass failed; next pass as scheduled", "err", err)
		default:
			sc.opts.Logger.Info("blob scrub pass done", "blobs", st.Blobs, "bytes", st.Bytes,
				"damagedBlobs", st.DamagedBlobs, "took", time.Since(start).Round(time.Second))
		}
		t.Reset(max(0, sc.opts.Every-time.Since(start)))
	}
}

// ScrubStats say what a pass did.
type ScrubStats struct {
	Blobs, DamagedBlobs int
	Bytes               uint64
}

// Pass verifies every complete blob once, starting after the last one the
// previous pass (or the one a restart interrupted) verified.
func (sc *Scrubber) Pass(ctx context.Context) (ScrubStats, error) {
	var st ScrubStats
	p := &pacer{rate: sc.opts.Rate}
	cursor, err := sc.s.scrubCursor()
	if err != nil {
		return st, err
	}
	start := cursor
	wrapped := false
	for {
		h, size, ok, err := sc.s.nextComplete(cursor, start, wrapped)
		if err != nil {
			return st, err
		}
		if !ok {
			if wrapped || start == nil {
				return st, nil
			}
			wrapped, cursor = true, nil
			continue
		}
		bad, n, err := sc.s.verifyBlob(ctx, h, size, p)
		if errors.Is(err, errGone) {
			continue
		}
		if err != nil {
			return st, err
		}
		st.Blobs++
		st.Bytes += n
		if sc.opts.Scrubbed != nil {
			sc.opts.Scrubbed(n)
		}
		if len(bad) > 0 {
			st.DamagedBlobs++
			sc.opts.Logger.Warn("blob damaged on disk; its bad groups are dropped and fetched again",
				"hash", ID(h).Short(), "groups", bad.Groups(), "first", bad[0].String())
			if err := sc.s.dropGroups(h, size, bad, "scrub"); err != nil {
				return st, err
			}
		}
		cursor = h[:]
		if err := sc.s.setScrubCursor(h); err != nil {
			return st, err
		}
	}
}

func (s *Store) scrubCursor() ([]byte, error) {
	release, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer release()
	v, closer, err := s.db.Get(keyScrubCursor)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

// setScrubCursor remembers the last blob verified. Not synced: a cursor
// lost in a crash only makes the next pass verify some blobs again.
func (s *Store) setScrubCursor(h [32]byte) error {
	release, err := s.acquire()
	if err != nil {
		return err
	}
	defer release()
	return s.db.Set(keyScrubCursor, h[:], pebble.NoSync)
}

// nextComplete finds the first blob held complete in files or a pack whose hash is
// above after (nil: from the start), below stop (nil: to the end) once the
// pass has wrapped around. A fresh iterator per blob: a pass lasts hours,
// and an open iterator pins what it reads.
func (s *Store) nextComplete(after, stop []byte, wrapped bool) (h [32]byte, size uint64, ok bool, err error) {
	release, err := s.acquire()
	if err != nil {
		return h, 0, false, err
	}
	defer release()
	lower := []byte{kindRecord}
	if after != nil {
		lower = append(append([]byte{kindRecord}, after...), 0)
	}
	upper := []byte{kindRecord + 1}
	if wrapped && stop != nil {
		upper = append(append([]byte{kindRecord}, stop...), 0)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return h, 0, false, err
	}
	defer it.Close()
	for valid := it.First(); valid; valid = it.Next() {
		v := it.Value()
		if len(it.Key()) != 33 || len(v) < 9 || v[0] != recFile && v[0] != recPacked {
			continue
		}
		copy(h[:], it.Key()[1:])
		return h, binary.BigEndian.Uint64(v[1:]), true, nil
	}
	return h, 0, false, it.Error()
}

// errGone: the blob was deleted or changed while it was being verified.
var errGone = errors.New("blob gone")

// verifyBlob checks a complete blob against its hash, at p's pace, and
// returns the groups that fail and the bytes it read.
func (s *Store) verifyBlob(ctx context.Context, h [32]byte, size uint64, p *pacer) (Ranges, uint64, error) {
	b, err := s.OpenBlob(h)
	if errors.Is(err, ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		return nil, 0, errGone
	}
	if err != nil {
		return nil, 0, err
	}
	defer b.Close()
	if b.Size != size {
		return nil, 0, errGone
	}
	v := &treeVerifier{data: newWindowReader(b.Data, 1<<20), ob: newWindowReader(b.Outboard, 256<<10)}
	var paced uint64
	v.pace = func() error {
		if v.bytes-paced >= 1<<20 {
			if err := p.wait(ctx, v.bytes-paced); err != nil {
				return err
			}
			paced = v.bytes
		}
		return nil
	}
	if err := v.walk(cvFromBytes(h[:]), 0, size, headerLen, true); err != nil {
		return nil, v.bytes, err
	}
	return v.bad, v.bytes, p.wait(ctx, v.bytes-paced)
}

// treeVerifier walks a stored blob's tree from the root: a tree node whose
// hash is not the one its parent names fails every group below it; a group
// whose hash is not the one its parent names fails.
type treeVerifier struct {
	data, ob *windowReader
	pace     func() error // called after each read
	bytes    uint64
	bad      Ranges
	scratch  [GroupSize]byte
}

func (v *treeVerifier) fail(pos, n uint64) {
	first := pos / GroupSize
	g := GroupRange{first, first + NumGroups(n)}
	if k := len(v.bad) - 1; k >= 0 && v.bad[k].End == g.Start {
		v.bad[k].End = g.End
		return
	}
	v.bad = append(v.bad, g)
}

func (v *treeVerifier) walk(want cv, pos, n, obOff uint64, isRoot bool) error {
	if n <= GroupSize {
		b, err := v.data.slice(pos, n)
		v.bytes += n
		if err == nil {
			copy(v.scratch[:], b)
		}
		if err != nil || groupCV(&v.scratch, int(n), pos, isRoot) != want {
			v.fail(pos, n) // a short or unreadable file fails too
		}
		return v.pace()
	}
	node, err := v.ob.slice(obOff, parentLen)
	v.bytes += parentLen
	if err != nil || parentCV(cvFromBytes(node[:32]), cvFromBytes(node[32:]), isRoot) != want {
		v.fail(pos, n) // a short or unreadable outboard fails too
		return v.pace()
	}
	l, r := cvFromBytes(node[:32]), cvFromBytes(node[32:])
	mid := splitLen(n)
	if err := v.walk(l, pos, mid, obOff+parentLen, false); err != nil {
		return err
	}
	return v.walk(r, pos+mid, n-mid, obOff+parentLen+parentLen*subtreeParents(mid), false)
}

// pacer spreads reads so they average at most rate bytes per second (no
// credit is saved up while idle).
type pacer struct {
	rate int64
	next time.Time
}

func (p *pacer) wait(ctx context.Context, n uint64) error {
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	p.next = p.next.Add(time.Duration(float64(n) / float64(p.rate) * float64(time.Second)))
	d := p.next.Sub(now)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
