package blobs

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The verified stream is Bao's slice encoding generalised to a set of
// ranges: the blob size (8 bytes, little endian), then a pre-order walk of
// the tree that emits, for every node whose span meets a requested range,
// its two child hashes (64 bytes) or, at a leaf, the group's bytes. For a
// single range it is byte-for-byte the Bao slice of that range.

// ErrVerify marks data that does not match the blob's hash.
var ErrVerify = errors.New("blob data failed verification")

// VerifyError says which group failed and why.
type VerifyError struct {
	Group  uint64
	Reason string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("group %d (bytes %d-%d): %s", e.Group, e.Group*GroupSize, (e.Group+1)*GroupSize-1, e.Reason)
}

func (e *VerifyError) Is(target error) bool { return target == ErrVerify }

// ErrSizeMismatch: the sender's size is not the one expected.
var ErrSizeMismatch = errors.New("blob size differs from the expected size")

// WriteStream writes the verified stream of ranges of a stored blob. The
// stream is assembled in buffers of streamBuf bytes: tree nodes are copied
// in from the outboard, and group bytes are read from data straight into
// their place in the buffer (one vectored read per buffer when data is a
// file), so each byte is copied once on its way from the page cache to w.
// Before this, groups went through a read window and then a bufio.Writer:
// that second copy cost the seed 0.07 CPU-seconds per GiB
// (hack/bench/blobs, seed profile).
//
// When data is a stored blob's (Store.OpenBlob), every tree node and group
// is checked against the blob's hash before it is sent, as the receiver
// will check it: a blob that rotted on disk is not sent on to be refused by
// every getter. At the first one that fails, the stream stops (a
// *VerifyError), and the store drops the failed groups (see Damage), so
// the blob is no longer served until fetched again.
func WriteStream(w io.Writer, size uint64, data, outboard io.ReaderAt, ranges Ranges) error {
	return new(assembler).writeStream(w, size, data, outboard, ranges)
}

// writeStream is WriteStream with a's buffers, kept from the blob before:
// a pipeline sends many blobs with one assembler.
func (a *assembler) writeStream(w io.Writer, size uint64, data, outboard io.ReaderAt, ranges Ranges) error {
	ranges = ranges.normalize(NumGroups(size))
	// A small blob's whole stream is smaller than streamBuf: its buffers
	// need be no larger than it.
	bufSize, obSize := uint64(streamBuf), uint64(256<<10)
	if size < streamBuf {
		obSize = OutboardSize(size)
		bufSize = min(bufSize, headerLen+size+obSize)
	}
	if uint64(cap(a.buf)) < bufSize {
		a.buf = make([]byte, 0, bufSize)
	}
	a.w, a.data, a.buf = w, data, a.buf[:0]
	a.segs, a.checks = a.segs[:0], a.checks[:0]
	a.stored, _ = data.(*storedData)
	a.buf = binary.LittleEndian.AppendUint64(a.buf, size)
	if a.window == nil {
		a.window = &windowReader{}
	}
	or := a.window
	or.reset(outboard, int(min(256<<10, max(obSize, parentLen))))
	var rec func(want cv, pos, n, obOff uint64, isRoot bool) error
	rec = func(want cv, pos, n, obOff uint64, isRoot bool) error {
		first := pos / GroupSize
		if !ranges.intersects(first, first+NumGroups(n)) {
			return nil
		}
		if n <= GroupSize {
			return a.group(pos, int(n), want, isRoot)
		}
		b, err := or.slice(obOff, parentLen)
		if err != nil {
			return fmt.Errorf("read outboard at %d: %w", obOff, err)
		}
		l, r := cvFromBytes(b[:32]), cvFromBytes(b[32:])
		if a.stored != nil && parentCV(l, r, isRoot) != want {
			return a.damaged(GroupRange{first, first + NumGroups(n)}, size, "a stored tree node does not match the blob hash")
		}
		if err := a.node(b); err != nil {
			return err
		}
		mid := splitLen(n)
		if err := rec(l, pos, mid, obOff+parentLen, false); err != nil {
			return err
		}
		return rec(r, pos+mid, n-mid, obOff+parentLen+parentLen*subtreeParents(mid), false)
	}
	var root cv
	if a.stored != nil {
		root = cvFromBytes(a.stored.hash[:])
	}
	a.size = size
	if err := rec(root, 0, size, headerLen, true); err != nil {
		return err
	}
	return a.flush()
}

// assembler builds the stream in buf. Group bytes are not read when a group
// is added: the group's place in buf is remembered (segs, merged when both
// the file range and the place continue the previous one) and filled by
// flush, just before buf is written.
type assembler struct {
	w    io.Writer
	data io.ReaderAt
	buf  []byte
	segs []segment
	iov  [][]byte

	// stored is data when it is a stored blob's: groups are then checked
	// (checks, in buf order) before buf is written.
	stored  *storedData
	size    uint64
	checks  []groupCheck
	scratch [GroupSize]byte
	window  *windowReader // the outboard's
}

// groupCheck: the group at blob offset pos, n bytes at buf[at:], must hash to want.
type groupCheck struct {
	pos    uint64
	at, n  int
	want   cv
	isRoot bool
}

// damaged reports failed groups to the store and returns the error that
// ends the stream.
func (a *assembler) damaged(g GroupRange, size uint64, reason string) error {
	if err := a.stored.s.dropGroups(a.stored.hash, size, Ranges{g}, "serve"); err != nil {
		reason += " (not recorded: " + err.Error() + ")"
	}
	return fmt.Errorf("blob %s: stored copy damaged, not sent: %w", ID(a.stored.hash).Short(), &VerifyError{Group: g.Start, Reason: reason})
}

// segment: n bytes of data at file offset off go to buf[at:at+n].
type segment struct {
	off   uint64
	at, n int
}

func (a *assembler) node(b []byte) error {
	if len(a.buf)+len(b) > cap(a.buf) {
		if err := a.flush(); err != nil {
			return err
		}
	}
	a.buf = append(a.buf, b...)
	return nil
}

func (a *assembler) group(off uint64, n int, want cv, isRoot bool) error {
	if n == 0 {
		return nil // the empty blob's one group: nothing to read
	}
	if len(a.buf)+n > cap(a.buf) {
		if err := a.flush(); err != nil {
			return err
		}
	}
	at := len(a.buf)
	a.buf = a.buf[:at+n]
	if a.stored != nil {
		a.checks = append(a.checks, groupCheck{pos: off, at: at, n: n, want: want, isRoot: isRoot})
	}
	if k := len(a.segs) - 1; k >= 0 && a.segs[k].off+uint64(a.segs[k].n) == off && a.segs[k].at+a.segs[k].n == at {
		a.segs[k].n += n
		return nil
	}
	a.segs = append(a.segs, segment{off: off, at: at, n: n})
	return nil
}

// flush reads the pending groups into buf, one read per run of groups that
// are contiguous in the file (its parts scattered around the tree nodes
// between them), then writes buf.
func (a *assembler) flush() error {
	for i := 0; i < len(a.segs); {
		j := i + 1
		for j < len(a.segs) && a.segs[j].off == a.segs[j-1].off+uint64(a.segs[j-1].n) {
			j++
		}
		a.iov = a.iov[:0]
		for _, s := range a.segs[i:j] {
			a.iov = append(a.iov, a.buf[s.at:s.at+s.n])
		}
		if err := readVectored(a.data, a.iov, a.segs[i].off); err != nil {
			if a.stored != nil && errors.Is(err, io.ErrUnexpectedEOF) {
				g := a.segs[i].off / GroupSize
				return a.damaged(GroupRange{g, NumGroups(a.size)}, a.size, "the stored data file is short")
			}
			return fmt.Errorf("read blob data at %d: %w", a.segs[i].off, err)
		}
		i = j
	}
	a.segs = a.segs[:0]
	for _, c := range a.checks {
		grp := &a.scratch
		if c.at+GroupSize <= cap(a.buf) {
			grp = (*[GroupSize]byte)(a.buf[c.at : c.at+GroupSize])
		} else {
			copy(grp[:], a.buf[c.at:c.at+c.n])
		}
		if groupCV(grp, c.n, c.pos, c.isRoot) != c.want {
			g := c.pos / GroupSize
			return a.damaged(GroupRange{g, g + 1}, a.size, "stored data does not match the blob hash")
		}
	}
	a.checks = a.checks[:0]
	if len(a.buf) == 0 {
		return nil
	}
	_, err := a.w.Write(a.buf)
	a.buf = a.buf[:0]
	return err
}

// readAtAll fills each of iov in turn from r, starting at off; a short file
// is io.ErrUnexpectedEOF.
func readAtAll(r io.ReaderAt, iov [][]byte, off uint64) error {
	for _, b := range iov {
		n, err := r.ReadAt(b, int64(off))
		if n < len(b) {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		off += uint64(n)
	}
	return nil
}

// Sink receives verified parts of a blob, in stream order.
type Sink interface {
	// Size is called first, with the size the sender claims; returning an
	// error (too large, unexpected) stops before any data is read.
	Size(size uint64) error
	// Parent is called with a verified parent node and its outboard offset;
	// node is only valid during the call.
	Parent(obOff uint64, node []byte) error
	// Group is called with a verified group; data is only valid during the call.
	Group(index uint64, data []byte) error
}

// groupBuffers is implemented by sinks that provide the buffer a group is
// read into (before verification), saving a copy; Group then receives a
// slice of that buffer.
type groupBuffers interface {
	groupBuffer(index uint64) *[GroupSize]byte
}

// ReadStream reads a verified stream for ranges of the blob with hash root,
// checks every parent and group against the tree before handing it to sink,
// and stops at the first one that does not verify. It does not read past
// the stream's end: the caller decides what trailing bytes mean.
func ReadStream(r io.Reader, root [32]byte, ranges Ranges, sink Sink) (uint64, error) {
	var hdr [headerLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, fmt.Errorf("read blob size: %w", err)
	}
	size := binary.LittleEndian.Uint64(hdr[:])
	if err := sink.Size(size); err != nil {
		return size, err
	}
	ranges = ranges.normalize(NumGroups(size))
	var own [GroupSize]byte
	gb, _ := sink.(groupBuffers)
	// Tree nodes are read a run at a time: the nodes on the way down from a
	// node to the next group the ranges need, which is exactly what the
	// stream holds before that group. Every read is then exact (never into
	// the next group's bytes, which go straight to their buffer) and r is
	// never read past the stream's end.
	var nodes [64 * parentLen]byte
	var pending []byte
	var rec func(want cv, pos, n, obOff uint64, isRoot bool) error
	rec = func(want cv, pos, n, obOff uint64, isRoot bool) error {
		first := pos / GroupSize
		if !ranges.intersects(first, first+NumGroups(n)) {
			return nil
		}
		if n <= GroupSize {
			grp := &own
			if gb != nil {
				grp = gb.groupBuffer(first)
			}
			if _, err := io.ReadFull(r, grp[:n]); err != nil {
				return truncated(first, err)
			}
			if groupCV(grp, int(n), pos, isRoot) != want {
				return &VerifyError{Group: first, Reason: "data does not match the blob hash"}
			}
			return sink.Group(first, grp[:n])
		}
		if len(pending) == 0 {
			k := parentRun(ranges, pos, n)
			if _, err := io.ReadFull(r, nodes[:k*parentLen]); err != nil {
				return truncated(firstInRange(ranges, first), err)
			}
			pending = nodes[:k*parentLen]
		}
		node := pending[:parentLen]
		pending = pending[parentLen:]
		l, rt := cvFromBytes(node[:32]), cvFromBytes(node[32:])
		if parentCV(l, rt, isRoot) != want {
			return &VerifyError{Group: firstInRange(ranges, first), Reason: "tree node does not match the blob hash"}
		}
		if err := sink.Parent(obOff, node); err != nil {
			return err
		}
		mid := splitLen(n)
		if err := rec(l, pos, mid, obOff+parentLen, false); err != nil {
			return err
		}
		return rec(rt, pos+mid, n-mid, obOff+parentLen+parentLen*subtreeParents(mid), false)
	}
	return size, rec(cvFromBytes(root[:]), 0, size, headerLen, true)
}

// parentRun counts the tree nodes the stream holds before its next group:
// the node spanning n bytes at pos (which meets the ranges), then the child
// the walk enters first (the left one unless the ranges skip it), down to a
// group. At most 64: n < 2^64.
func parentRun(ranges Ranges, pos, n uint64) int {
	k := 0
	for ; n > GroupSize; k++ {
		mid := splitLen(n)
		if first := pos / GroupSize; ranges.intersects(first, first+NumGroups(mid)) {
			n = mid
		} else {
			pos, n = pos+mid, n-mid
		}
	}
	return k
}

func firstInRange(r Ranges, from uint64) uint64 {
	for _, g := range r {
		if g.End > from {
			return max(g.Start, from)
		}
	}
	return from
}

func truncated(group uint64, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &VerifyError{Group: group, Reason: "the sender's stream ended early (truncated)"}
	}
	return fmt.Errorf("group %d: %w", group, err)
}

// windowReader serves small reads at mostly increasing offsets from one
// large ReadAt, so streaming a blob costs a syscall per MiB, not per group.
type windowReader struct {
	r    io.ReaderAt
	buf  []byte
	off  uint64
	n    int
	size int
}

func newWindowReader(r io.ReaderAt, size int) *windowReader {
	return &windowReader{r: r, size: size}
}

// reset makes w read r in windows of size bytes, keeping its buffer if it
// is large enough.
func (w *windowReader) reset(r io.ReaderAt, size int) {
	w.r, w.off, w.n, w.size = r, 0, 0, size
	if len(w.buf) < size {
		w.buf = nil
	}
}

func (w *windowReader) slice(off, n uint64) ([]byte, error) {
	if off >= w.off && off+n <= w.off+uint64(w.n) {
		return w.buf[off-w.off : off-w.off+n], nil
	}
	if w.buf == nil {
		w.buf = make([]byte, max(w.size, int(n)))
	}
	m, err := w.r.ReadAt(w.buf, int64(off))
	if m < int(n) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	w.off, w.n = off, m
	return w.buf[:n], nil
}

// bufferedStream wraps a reader for ReadStream (tests, files).
func bufferedStream(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 256<<10) }
