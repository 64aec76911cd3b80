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

// WriteStream writes the verified stream of ranges of a stored blob.
func WriteStream(w io.Writer, size uint64, data, outboard io.ReaderAt, ranges Ranges) error {
	ranges = ranges.normalize(NumGroups(size))
	var hdr [headerLen]byte
	binary.LittleEndian.PutUint64(hdr[:], size)
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	dr := newWindowReader(data, 1<<20)
	or := newWindowReader(outboard, 256<<10)
	var rec func(pos, n, obOff uint64) error
	rec = func(pos, n, obOff uint64) error {
		first := pos / GroupSize
		if !ranges.intersects(first, first+NumGroups(n)) {
			return nil
		}
		if n <= GroupSize {
			b, err := dr.slice(pos, n)
			if err != nil {
				return fmt.Errorf("read blob data at %d: %w", pos, err)
			}
			_, err = w.Write(b)
			return err
		}
		b, err := or.slice(obOff, parentLen)
		if err != nil {
			return fmt.Errorf("read outboard at %d: %w", obOff, err)
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		mid := splitLen(n)
		if err := rec(pos, mid, obOff+parentLen); err != nil {
			return err
		}
		return rec(pos+mid, n-mid, obOff+parentLen+parentLen*subtreeParents(mid))
	}
	return rec(0, size, headerLen)
}

// Sink receives verified parts of a blob, in stream order.
type Sink interface {
	// Size is called first, with the size the sender claims; returning an
	// error (too large, unexpected) stops before any data is read.
	Size(size uint64) error
	// Parent is called with a verified parent node and its outboard offset.
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
	var node [parentLen]byte
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
		if _, err := io.ReadFull(r, node[:]); err != nil {
			return truncated(firstInRange(ranges, first), err)
		}
		l, rt := cvFromBytes(node[:32]), cvFromBytes(node[32:])
		if parentCV(l, rt, isRoot) != want {
			return &VerifyError{Group: firstInRange(ranges, first), Reason: "tree node does not match the blob hash"}
		}
		if err := sink.Parent(obOff, node[:]); err != nil {
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
