package blobs

import (
	"os"
	"sync"
)

// seqWriter batches writes at increasing, mostly contiguous offsets into
// large pwrites issued by its own goroutine, so the caller (hashing the next
// group) and the kernel copy overlap, and a GiB costs a thousand syscalls,
// not sixty thousand. Memory is bounded by the buffers in flight.
type seqWriter struct {
	f       *os.File
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
	b   []byte
	off int64
}

const writeBuffers = 4

func newSeqWriter(f *os.File, bufSize int) *seqWriter {
	w := &seqWriter{f: f, bufSize: bufSize, jobs: make(chan writeJob, writeBuffers), free: make(chan []byte, writeBuffers+1)}
	for range writeBuffers + 1 {
		w.free <- make([]byte, 0, bufSize)
	}
	w.cur = <-w.free
	w.wg.Add(1)
	go w.loop()
	return w
}

func (w *seqWriter) loop() {
	defer w.wg.Done()
	for j := range w.jobs {
		if _, err := w.f.WriteAt(j.b, j.off); err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
		}
		w.free <- j.b[:0]
	}
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
		_, err := w.f.WriteAt(p, off)
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
	w.jobs <- writeJob{w.cur, w.curOff}
	w.cur = <-w.free
}

// Flush writes everything queued and waits for it.
func (w *seqWriter) Flush() error {
	w.submit()
	// Taking every buffer back means no job is in flight.
	bufs := make([][]byte, 0, writeBuffers)
	for range writeBuffers {
		bufs = append(bufs, <-w.free)
	}
	for _, b := range bufs {
		w.free <- b
	}
	return w.failed()
}

// Close flushes and stops the writer goroutine.
func (w *seqWriter) Close() error {
	err := w.Flush()
	close(w.jobs)
	w.wg.Wait()
	return err
}
