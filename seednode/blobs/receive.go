package blobs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"os"

	"github.com/cockroachdb/pebble/v2"
)

// A receiver checkpoints (fsyncs data and outboard, then records the
// verified groups) every checkpointEvery of verified data, four full write
// buffers: a checkpoint records only the bitmap pages it changed (a few
// hundred bytes, whatever the blob's size). Every 1 MiB, with a 4 MiB
// bound, cost a fifth of the transfer rate (hack/bench/blobs -against, same
// run: 0.78 of the build before); every 4 MiB with a 16 MiB bound cost
// nothing measurable (1.00). Checkpoints run in the background while the transfer goes on; if
// the verified data not yet recorded by a finished checkpoint reaches
// maxUnrecorded, the receiver waits for the running one. So a crash makes a
// resumed transfer fetch again at most maxUnrecorded of verified groups
// (and their tree nodes); it never costs correctness: a group is recorded
// as verified only after its bytes are durable.
const (
	checkpointEvery = 4 * dataWriteBuf
	maxUnrecorded   = 16 << 20
	// waitAt leaves room for what one Group call may add (a group and the
	// tree nodes before it) before the receiver next checks the bound.
	waitAt = maxUnrecorded - GroupSize - 64*parentLen
)

// A bitmap is stored in pages of bitmapPage bytes (2,048 groups, 32 MiB of
// blob), each under its own key, m|hash|page: a checkpoint writes the pages
// it changed. Stores written before pages keep one key, m|hash, for the
// whole bitmap; it is read, and deleted by the first paged write.
const bitmapPage = 256

// Receivers write through buffers of this size: data and tree nodes arrive
// at increasing offsets, so a buffer fills before it must be written. A
// group is read from the stream straight into a data buffer, and a full one
// goes to the disk in one direct-I/O pwrite. Measured here
// (hack/bench/blobs -against, same run, turns): 1 MiB buffers transfer
// 3-16% faster than 256 KiB ones (median of six comparisons: +7%). A
// direct write's CPU cost is mostly per request: 1 GiB in 256 KiB writes
// took 0.063 CPU-seconds, in 1 MiB writes 0.031. The copy into a buffer
// that no longer stays in the CPU's cache costs more (0.17 CPU-seconds per
// GiB in the device profile against 0.08), but not as much as the smaller
// writes did. A receiver holds writeBuffers+1 of them: 3 MiB.
const (
	dataWriteBuf = 1 << 20
	obWriteBuf   = 64 << 10
)

// writeBufSize is the data buffer for a blob of size bytes: dataWriteBuf,
// or less for a blob that does not fill it, rounded up to whole groups
// (which are whole pages, as direct I/O needs).
func writeBufSize(size uint64) int {
	if size >= dataWriteBuf {
		return dataWriteBuf
	}
	return int(NumGroups(size) * GroupSize)
}

type bitmap []byte

func newBitmap(groups uint64) bitmap { return make(bitmap, (groups+7)/8) }
func (b bitmap) has(g uint64) bool   { return b[g/8]&(1<<(g%8)) != 0 }
func (b bitmap) set(g uint64)        { b[g/8] |= 1 << (g % 8) }
func (b bitmap) clear(g uint64)      { b[g/8] &^= 1 << (g % 8) }
func (b bitmap) count() (n uint64) {
	for _, x := range b {
		n += uint64(bits.OnesCount8(x))
	}
	return n
}

func bitmapPageKey(h [32]byte, page uint32) []byte {
	return binary.BigEndian.AppendUint32(key(kindBitmap, h), page)
}

// bitmapBounds span the bitmap keys of h, the old whole-bitmap key first.
func bitmapBounds(h [32]byte) (lower, upper []byte) {
	return key(kindBitmap, h), append(key(kindBitmap, h), 0xff, 0xff, 0xff, 0xff, 0xff)
}

// bitmap loads the verified-group bitmap of a partial blob (empty if none).
func (s *Store) bitmap(h [32]byte, size uint64) (bitmap, error) {
	bm := newBitmap(NumGroups(size))
	lower, upper := bitmapBounds(h)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	for ok := it.First(); ok; ok = it.Next() {
		k, v := it.Key(), it.Value()
		switch {
		case len(k) == len(lower) && len(v) == len(bm): // the whole bitmap, as stored before pages
			copy(bm, v)
		case len(k) == len(lower)+4:
			at := uint64(binary.BigEndian.Uint32(k[len(lower):])) * bitmapPage
			if at < uint64(len(bm)) && uint64(len(v)) == min(bitmapPage, uint64(len(bm))-at) {
				copy(bm[at:], v)
				continue
			}
			fallthrough
		default:
			it.Close()
			return nil, fmt.Errorf("blob %s: damaged bitmap (a %d-byte part for a %d-byte bitmap)", ID(h).Short(), len(v), len(bm))
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, err
	}
	return bm, nil
}

// putBitmapPages adds to b the pages of bm (pages nil: all of them), and the
// deletion of the old whole-bitmap key.
func putBitmapPages(b *pebble.Batch, h [32]byte, bm bitmap, pages []uint32) {
	if pages == nil {
		for p := 0; p*bitmapPage < len(bm); p++ {
			pages = append(pages, uint32(p))
		}
	}
	for _, p := range pages {
		at := int(p) * bitmapPage
		_ = b.Set(bitmapPageKey(h, p), bm[at:min(at+bitmapPage, len(bm))], nil)
	}
	_ = b.Delete(key(kindBitmap, h), nil)
}

// deleteBitmap adds to b the deletion of h's bitmap.
func deleteBitmap(b *pebble.Batch, h [32]byte) {
	lower, upper := bitmapBounds(h)
	_ = b.DeleteRange(lower, upper, nil)
}

// ErrBusy: another transfer is writing the same blob.
var ErrBusy = errors.New("another transfer is already writing this blob")

// Receiver writes verified parts of one blob. It implements Sink. Create it
// with Store.Receive, feed it with ReadStream, then Close it.
type Receiver struct {
	s    *Store
	hash [32]byte
	size uint64
	bm   bitmap

	inline   []byte // blobs up to InlineMax are assembled in memory
	dataPath string // the data and outboard files being written
	obPath   string
	data     *os.File
	obFile   *os.File
	dataW    *seqWriter
	obW      *seqWriter
	reserved bool // the group being read went into dataW's buffer
	scratch  [GroupSize]byte
	dirty    int64               // verified bytes since the last checkpoint began
	pages    map[uint32]struct{} // bitmap pages changed since then
	inflight int64               // verified bytes the running checkpoint records
	cpBusy   bool                // a background checkpoint is running
	cpDone   chan error          // its result
	verified uint64              // groups verified by this receiver (not counting resumed ones)
	done     bool
}

// Receive opens (resuming if possible) the partial blob h of the given
// size for writing. If a partial of another size exists, it is discarded:
// the size is what a sender claimed, and only verification settles it.
func (s *Store) Receive(h [32]byte, size uint64) (*Receiver, error) {
	release, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer release()
	s.mu.Lock()
	if s.receives[h] != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("blob %s: %w", ID(h).Short(), ErrBusy)
	}
	r := &Receiver{s: s, hash: h, size: size, cpDone: make(chan error, 1), pages: map[uint32]struct{}{}}
	s.receives[h] = r
	s.mu.Unlock()
	if err := r.open(); err != nil {
		r.release()
		return nil, err
	}
	return r, nil
}

func (r *Receiver) release() {
	r.s.mu.Lock()
	delete(r.s.receives, r.hash)
	r.s.mu.Unlock()
}

func (r *Receiver) open() error {
	s := r.s
	rec, ok, err := s.record(r.hash)
	if err != nil {
		return err
	}
	if ok && !rec.partial() {
		return fmt.Errorf("blob %s is already complete", ID(r.hash).Short())
	}
	if ok && rec.size != r.size {
		if err := s.dropPartial(r.hash, rec); err != nil {
			return err
		}
		ok = false
	}
	if !ok {
		rec = record{kind: recPartial, size: r.size}
	}
	r.dataPath, r.obPath = s.partialFiles(r.hash, rec)
	groups := NumGroups(r.size)
	if r.size <= InlineMax {
		r.bm = newBitmap(groups)
		r.inline = make([]byte, r.size)
		return nil
	}
	if ok {
		if r.bm, err = s.bitmap(r.hash, r.size); err != nil {
			return err
		}
	} else {
		r.bm = newBitmap(groups)
	}
	if r.data, err = os.OpenFile(r.dataPath, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return err
	}
	if r.obFile, err = os.OpenFile(r.obPath, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		r.data.Close()
		return err
	}
	r.dataW = newSeqWriter(r.data, openDirect(r.dataPath), writeBufSize(r.size))
	r.obW = newSeqWriter(r.obFile, nil, obWriteBuf)
	if !ok {
		if err := s.db.Set(key(kindRecord, r.hash), record{kind: recPartial, size: r.size}.encode(), pebble.Sync); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) dropPartial(h [32]byte, rec record) error {
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Delete(key(kindRecord, h), nil)
	deleteBitmap(b, h)
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	data, ob := s.partialFiles(h, rec)
	os.Remove(data)
	os.Remove(ob)
	return nil
}

// Missing returns the groups of ranges (nil = all) not verified yet.
func (r *Receiver) Missing(ranges Ranges) Ranges {
	var out Ranges
	for _, g := range ranges.normalize(NumGroups(r.size)) {
		for i := g.Start; i < g.End; i++ {
			if r.bm.has(i) {
				continue
			}
			if n := len(out); n > 0 && out[n-1].End == i {
				out[n-1].End++
			} else {
				out = append(out, GroupRange{i, i + 1})
			}
		}
	}
	return out
}

// Complete reports whether every group is verified.
func (r *Receiver) Complete() bool { return r.bm.count() == NumGroups(r.size) }

// VerifiedGroups is how many groups this receiver verified and wrote.
func (r *Receiver) VerifiedGroups() uint64 { return r.verified }

// Size implements Sink: the sender's size must be the one we are writing.
func (r *Receiver) Size(size uint64) error {
	if size != r.size {
		return fmt.Errorf("%w: sender says %d bytes, expected %d", ErrSizeMismatch, size, r.size)
	}
	return nil
}

// Parent implements Sink.
func (r *Receiver) Parent(off uint64, node []byte) error {
	if r.size <= InlineMax {
		return nil
	}
	r.dirty += int64(len(node))
	return r.obW.WriteAt(node, int64(off))
}

// groupBuffer lets ReadStream read a group straight into the write buffer.
func (r *Receiver) groupBuffer(i uint64) *[GroupSize]byte {
	if r.size <= InlineMax || r.bm.has(i) {
		r.reserved = false
		return &r.scratch
	}
	r.reserved = true
	return r.dataW.reserve(int64(i * GroupSize))
}

// Group implements Sink.
func (r *Receiver) Group(i uint64, data []byte) error {
	reserved := r.reserved
	r.reserved = false
	if r.bm.has(i) {
		return nil // resent; already verified and stored
	}
	switch {
	case r.size <= InlineMax:
		copy(r.inline[i*GroupSize:], data)
	case reserved:
		r.dataW.commit(len(data))
	default:
		if err := r.dataW.WriteAt(data, int64(i*GroupSize)); err != nil {
			return err
		}
	}
	r.bm.set(i)
	r.pages[uint32(i/8/bitmapPage)] = struct{}{}
	r.verified++
	r.dirty += int64(len(data))
	if r.dirty >= checkpointEvery {
		return r.checkpoint()
	}
	return nil
}

// checkpoint makes verified data durable, then records it as verified. The
// wait for the queued writes, the fsyncs and the bitmap write all run in
// the background while the transfer goes on (one checkpoint at a time): a
// consumer that waited for its queued writes stalled the transfer at every
// checkpoint. The bitmap it records is a copy taken when the writes it
// covers were queued, and it is recorded only after they are written and
// synced, so it never marks a group whose bytes are not on disk.
func (r *Receiver) checkpoint() error {
	if r.size <= InlineMax || r.dirty == 0 {
		return nil
	}
	if r.cpBusy {
		var err error
		if r.inflight+r.dirty < waitAt {
			select {
			case err = <-r.cpDone:
			default:
				return nil // the previous one is still syncing; try at the next step
			}
		} else {
			err = <-r.cpDone // at the bound: wait for it
		}
		r.cpBusy, r.inflight = false, 0
		if err != nil {
			return err
		}
	}
	waitData, waitOb := r.dataW.Barrier(), r.obW.Barrier()
	pages := make([]uint32, 0, len(r.pages))
	for p := range r.pages {
		pages = append(pages, p)
	}
	clear(r.pages)
	b := r.s.db.NewBatch()
	putBitmapPages(b, r.hash, r.bm, pages) // copies the pages: Set copies its arguments
	r.inflight, r.dirty = r.dirty, 0
	r.cpBusy = true
	go func() {
		defer b.Close()
		err := errors.Join(waitData(), waitOb())
		if err == nil {
			err = errors.Join(r.data.Sync(), r.obFile.Sync())
		}
		if err == nil {
			var release func()
			if release, err = r.s.acquire(); err == nil {
				err = b.Commit(pebble.Sync)
				release()
			}
		}
		r.cpDone <- err
	}()
	return nil
}

// finishCheckpoint waits for a background checkpoint, then writes a final
// one synchronously.
func (r *Receiver) finishCheckpoint() error {
	if r.cpBusy {
		r.cpBusy, r.inflight = false, 0
		if err := <-r.cpDone; err != nil {
			return err
		}
	}
	if r.size <= InlineMax || r.dirty == 0 {
		return nil
	}
	if err := errors.Join(r.dataW.Flush(), r.obW.Flush()); err != nil {
		return err
	}
	if err := errors.Join(r.data.Sync(), r.obFile.Sync()); err != nil {
		return err
	}
	r.dirty = 0
	pages := make([]uint32, 0, len(r.pages))
	for p := range r.pages {
		pages = append(pages, p)
	}
	clear(r.pages)
	b := r.s.db.NewBatch()
	defer b.Close()
	putBitmapPages(b, r.hash, r.bm, pages)
	return b.Commit(pebble.Sync)
}

// Close checkpoints and, when every group is verified, installs the blob as
// complete. It reports whether the blob is complete.
func (r *Receiver) Close() (complete bool, err error) {
	if r.done {
		return r.Complete(), nil
	}
	r.done = true
	defer r.release()
	release, err := r.s.acquire()
	if err != nil {
		r.closeFiles()
		return false, err
	}
	defer release()
	if r.size <= InlineMax {
		if !r.Complete() {
			return false, nil // nothing durable for inline blobs until whole
		}
		return true, r.s.db.Set(key(kindRecord, r.hash), record{kind: recInline, size: r.size, inline: r.inline}.encode(), pebble.Sync)
	}
	if err := r.finishCheckpoint(); err != nil {
		r.closeFiles()
		return false, err
	}
	if !r.Complete() {
		return false, r.closeFiles()
	}
	// Every parent arrived with the groups below it; add the header.
	var hdr [headerLen]byte
	binary.LittleEndian.PutUint64(hdr[:], r.size)
	if _, err := r.obFile.WriteAt(hdr[:], 0); err != nil {
		r.closeFiles()
		return false, err
	}
	if err := r.obFile.Sync(); err != nil {
		r.closeFiles()
		return false, err
	}
	if err := r.closeFiles(); err != nil {
		return false, err
	}
	if err := r.s.installFiles(r.hash, r.size, r.dataPath, r.obPath); err != nil {
		return false, err
	}
	return true, nil
}

func (r *Receiver) closeFiles() error {
	var errs []error
	for _, w := range []*seqWriter{r.dataW, r.obW} {
		if w != nil {
			errs = append(errs, w.Close())
		}
	}
	r.dataW, r.obW = nil, nil
	if r.data != nil {
		errs = append(errs, r.data.Close())
	}
	if r.obFile != nil {
		errs = append(errs, r.obFile.Close())
	}
	r.data, r.obFile = nil, nil
	return errors.Join(errs...)
}
