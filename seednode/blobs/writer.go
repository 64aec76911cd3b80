package blobs

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// seqWriter batches writes at increasing, mostly contiguous offsets into
// large pwrites issued by its own goroutine, so the caller (hashing the next
// group) and the kernel copy overlap, and a GiB costs a thousand syscalls,
// not sixty thousand. Memory is bounded by the buffers in flight.
type seqWriter struct {
	out     directFile
	bufSize int

	cur    []byte
	curOff int64 // file offset of cur[0]

	jobs chan writeJob
	free chan []byte
	wg   sync.WaitGroup // the writer goroutine
	mu   sync.Mutex
	err  error
}

type writeJob struct {
	b    []byte
	off  int64
	done chan struct{} // a barrier, not a write: closed when every earlier job is written
}

// writeBuffers is how many full buffers may wait for the disk while the
// caller fills the next: the writer is several times faster than a
// transfer here, so two absorb a slow write or a checkpoint's fsync
// without holding up the stream.
const writeBuffers = 2

// directAlign is what direct I/O needs offsets, lengths and buffer
// addresses aligned to: the page size covers every logical block size.
const directAlign = 4096

// alignedBuffer returns an empty buffer of capacity n starting at a
// directAlign boundary.
func alignedBuffer(n int) []byte {
	b := make([]byte, n+directAlign)
	skip := (directAlign - int(uintptr(unsafe.Pointer(&b[0]))%directAlign)) % directAlign
	return b[skip : skip : skip+n]
}

// newSeqWriter writes to f through buffers of bufSize bytes; direct, if not
// nil, is f opened for direct I/O (see seqWriter.direct), and is closed by
// Close.
func newSeqWriter(f, direct *os.File, bufSize int) *seqWriter {
	w := &seqWriter{out: directFile{f: f, direct: direct}, bufSize: bufSize, jobs: make(chan writeJob, writeBuffers), free: make(chan []byte, writeBuffers+1)}
	for range writeBuffers + 1 {
		w.free <- alignedBuffer(bufSize)
	}
	w.cur = <-w.free
	w.wg.Add(1)
	go w.loop()
	return w
}

func (w *seqWriter) loop() {
	defer w.wg.Done()
	for j := range w.jobs {
		if j.done != nil {
			close(j.done)
			continue
		}
		if _, err := w.out.WriteAt(j.b, j.off); err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
		}
		w.free <- j.b[:0]
	}
}

// directFile writes a file through direct I/O where it can. direct, when
// not nil, is f opened for direct I/O (O_DIRECT): page-aligned spans of
// page-aligned buffers go through it, straight from the buffer to the
// device, which spares the copy into the page cache and its later
// writeback (a third of a receiver's CPU time, and most of an add's final
// fsync). The rest (a blob's unaligned tail) goes through f. A filesystem
// that refuses direct I/O turns it off at the first write.
type directFile struct {
	f, direct *os.File
	refused   bool // the kernel refused a direct write: direct I/O is off
}

// WriteAt writes b at off: its page-aligned head directly when it can, the
// rest through the page cache.
func (d *directFile) WriteAt(b []byte, off int64) (int, error) {
	total := len(b)
	if d.direct != nil && off%directAlign == 0 {
		if n := len(b) &^ (directAlign - 1); n > 0 {
			_, err := d.direct.WriteAt(b[:n], off)
			switch {
			case err == nil:
				b, off = b[n:], off+int64(n)
			case errors.Is(err, syscall.EINVAL):
				// Not supported here after all: the page cache it is.
				d.direct.Close()
				d.direct, d.refused = nil, true
			default:
				return 0, err
			}
		}
	}
	if len(b) > 0 {
		if _, err := d.f.WriteAt(b, off); err != nil {
			return 0, err
		}
	}
	return total, nil
}

// closeDirect closes the direct I/O handle (f is the caller's).
func (d *directFile) closeDirect() error {
	if d.direct == nil {
		return nil
	}
	err := d.direct.Close()
	d.direct = nil
	return err
}

func (w *seqWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// WriteAt queues p for offset off.
func (w *seqWriter) WriteAt(p []byte, off int64) error {
	if err := w.failed(); err != nil {
		return err
	}
	if len(w.cur) > 0 && (off != w.curOff+int64(len(w.cur)) || len(w.cur)+len(p) > w.bufSize) {
		w.submit()
	}
	if len(w.cur) == 0 {
		w.curOff = off
	}
	if len(p) > w.bufSize { // never for groups and parents; kept correct anyway
		if err := w.Flush(); err != nil {
			return err
		}
		_, err := w.out.f.WriteAt(p, off)
		return err
	}
	w.cur = append(w.cur, p...)
	return nil
}

// reserve returns room for one group at offset off inside the current
// buffer, so the caller can read data straight into it; commit(n) then
// makes n of those bytes part of the write. Nothing is written if commit is
// not called (data that failed verification).
func (w *seqWriter) reserve(off int64) *[GroupSize]byte {
	if len(w.cur) > 0 && (off != w.curOff+int64(len(w.cur)) || len(w.cur)+GroupSize > cap(w.cur)) {
		w.submit()
	}
	if len(w.cur) == 0 {
		w.curOff = off
	}
	return (*[GroupSize]byte)(w.cur[len(w.cur) : len(w.cur)+GroupSize])
}

func (w *seqWriter) commit(n int) { w.cur = w.cur[:len(w.cur)+n] }

func (w *seqWriter) submit() {
	if len(w.cur) == 0 {
		return
	}
	w.jobs <- writeJob{b: w.cur, off: w.curOff}
	w.cur = <-w.free
}

// Barrier queues what is buffered and returns, without waiting, a function
// that waits until everything queued so far is written and reports the
// writer's first error. The caller may go on writing meanwhile: a
// receiver's checkpoint waits for its writes on another goroutine.
func (w *seqWriter) Barrier() (wait func() error) {
	w.submit()
	done := make(chan struct{})
	w.jobs <- writeJob{done: done}
	return func() error {
		<-done
		return w.failed()
	}
}

// Flush writes everything queued and waits for it.
func (w *seqWriter) Flush() error { return w.Barrier()() }

// Close flushes and stops the writer goroutine.
func (w *seqWriter) Close() error {
	err := w.Flush()
	close(w.jobs)
	w.wg.Wait()
	return errors.Join(err, w.out.closeDirect())
}
