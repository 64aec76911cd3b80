package blobs

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// writeGroups writes groups (index → data) through w: reserved and
// committed like a receiver does, in the order given.
func writeGroups(t *testing.T, w *seqWriter, order []uint64, data []byte) {
	t.Helper()
	for _, g := range order {
		off := g * GroupSize
		n := min(uint64(len(data))-off, GroupSize)
		buf := w.reserve(int64(off))
		copy(buf[:], data[off:off+n])
		w.commit(int(n))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// createDataFile creates a blob data file in a temp dir, closed when the
// test ends.
func createDataFile(t *testing.T) (string, *os.File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "blob.data")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return path, f
}

// TestSeqWriterDirectIO: groups written through direct I/O, with a blob's
// unaligned tail and out-of-order groups (a resumed transfer), land in the
// file exactly.
func TestSeqWriterDirectIO(t *testing.T) {
	data := make([]byte, 40*GroupSize+1234) // a tail no block size divides
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	path, f := createDataFile(t)
	direct := openDirect(path)
	if direct == nil {
		t.Logf("%s offers no direct I/O: this checks the page-cache path only", filepath.Dir(path))
	}
	// 64 KiB buffers: batches end mid-blob and the tail arrives in one.
	w := newSeqWriter(f, direct, 64<<10)
	var order []uint64
	for g := uint64(20); g <= 40; g++ {
		order = append(order, g)
	}
	for g := uint64(0); g < 20; g++ {
		order = append(order, g)
	}
	writeGroups(t, w, order, data)
	if w.out.refused {
		t.Fatal("direct I/O was turned off though every write was aligned")
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("file holds %d bytes, not the %d written (or different ones)", len(got), len(data))
	}
}

// TestSeqWriterFallsBackFromDirectIO: a direct write the kernel refuses
// (EINVAL, as on a filesystem without direct I/O) is written through the
// page cache instead, and direct I/O stays off.
func TestSeqWriterFallsBackFromDirectIO(t *testing.T) {
	path, f := createDataFile(t)
	direct := openDirect(path)
	if direct == nil {
		t.Skipf("%s offers no direct I/O, so none can be refused", filepath.Dir(path))
	}
	w := newSeqWriter(f, direct, 64<<10)
	// A buffer one byte off alignment: the kernel refuses it for direct I/O.
	buf := alignedBuffer(2 * directAlign)[:2*directAlign]
	src := buf[1 : 1+directAlign]
	for i := range src {
		src[i] = byte(i)
	}
	if _, err := w.out.WriteAt(src, 0); err != nil {
		t.Fatalf("write: %v", err)
	}
	if w.out.direct != nil || !w.out.refused {
		t.Fatal("direct I/O still on after the kernel refused a write")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, src) {
		t.Fatal("the refused write did not reach the file through the page cache")
	}
}

// countingReaderAt counts the ReadAt calls made to it.
type countingReaderAt struct {
	data  []byte
	reads int
}

func (r *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	r.reads++
	if off >= int64(len(r.data)) {
		return 0, io.EOF
	}
	n := copy(p, r.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// TestWindowReader: forward reads, jumps back and forth, and reads at the
// end all return the file's bytes, a window's worth of small reads costs one
// ReadAt, and a read past the end is an error.
func TestWindowReader(t *testing.T) {
	const window = 4096
	data := make([]byte, 10*window+100)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	src := &countingReaderAt{data: data}
	w := newWindowReader(src, window)
	check := func(off, n uint64) {
		t.Helper()
		b, err := w.slice(off, n)
		if err != nil {
			t.Fatalf("slice(%d, %d): %v", off, n, err)
		}
		if !bytes.Equal(b, data[off:off+n]) {
			t.Fatalf("slice(%d, %d) returned other bytes", off, n)
		}
	}
	for off := uint64(0); off+64 <= uint64(len(data)); off += 64 {
		check(off, 64)
	}
	if src.reads > 11 {
		t.Fatalf("%d ReadAt calls to read %d bytes forwards through a %d-byte window", src.reads, len(data), window)
	}
	for _, off := range []uint64{5 * window, 100, 9*window + 10, 3 * window, 3*window + window - 10, 7 * window} {
		check(off, 20)
		check(off+20, 40)
	}
	check(uint64(len(data))-window, window)
	if _, err := w.slice(uint64(len(data))-10, 20); err == nil {
		t.Fatal("a read past the end of the file succeeded")
	}
}

// TestSeqWriterBarrier: a barrier's wait returns once everything written
// before it is in the file, while writes after it go on.
func TestSeqWriterBarrier(t *testing.T) {
	data := make([]byte, 32*GroupSize)
	for i := range data {
		data[i] = byte(i*13 + i>>14)
	}
	path, f := createDataFile(t)
	w := newSeqWriter(f, openDirect(path), 64<<10)
	put := func(from, to uint64) {
		for g := from; g < to; g++ {
			copy(w.reserve(int64(g * GroupSize))[:], data[g*GroupSize:])
			w.commit(GroupSize)
		}
	}
	put(0, 10) // two full buffers and half of a third, still unsubmitted
	wait := w.Barrier()
	put(10, 11) // buffered behind the barrier: the caller is not held up
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 10*GroupSize)
	if _, err := f.ReadAt(got, 0); err != nil {
		t.Fatalf("read what the barrier covers: %v", err)
	}
	if !bytes.Equal(got, data[:len(got)]) {
		t.Fatal("the barrier returned before the writes queued ahead of it were in the file")
	}
	put(11, 32)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if all, _ := os.ReadFile(path); !bytes.Equal(all, data) {
		t.Fatal("file differs after Close")
	}
}

func TestWriteBufSize(t *testing.T) {
	for _, c := range []struct {
		size uint64
		want int
	}{
		{InlineMax + 1, 2 * GroupSize},
		{5*GroupSize - 1, 5 * GroupSize},
		{dataWriteBuf - 1, dataWriteBuf},
		{dataWriteBuf, dataWriteBuf},
		{1 << 40, dataWriteBuf},
	} {
		got := writeBufSize(c.size)
		if got != c.want || got%directAlign != 0 {
			t.Errorf("writeBufSize(%d) = %d, want %d (a multiple of %d)", c.size, got, c.want, directAlign)
		}
	}
}
