package blobs

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/zeebo/blake3"
	"lukechampine.com/blake3/bao"

	"github.com/seedfleet/seedfleet/internal/pebblecache"
	"github.com/seedfleet/seedfleet/internal/pebblelog"
	"github.com/seedfleet/seedfleet/internal/pebblesched"
)

// InlineMax: blobs up to one group are kept whole in the metadata database
// (no files, no outboard: the group is its own tree).
const InlineMax = GroupSize

// State of a blob in a store.
type State uint8

const (
	Missing State = iota
	Partial
	Complete
)

func (s State) String() string {
	return [...]string{"missing", "partial", "complete"}[s]
}

// Status describes a blob in the store.
type Status struct {
	State State
	Size  uint64
	// VerifiedGroups counts the verified 16 KiB groups (all of them when complete).
	VerifiedGroups uint64
}

// ErrNotFound: the store does not hold the blob (completely).
var ErrNotFound = errors.New("blob not found")

// ErrClosed: the store was closed.
var ErrClosed = errors.New("blob store closed")

// Metadata keys: r|hash -> record, m|hash -> verified-group bitmap (partials).
const (
	kindRecord = 'r'
	kindBitmap = 'm'

	recFile    = 1 // complete, data and outboard in files
	recInline  = 2 // complete, data in the record
	recPartial = 3 // partial, files under partial/
	// recDamaged: partial, files where the complete blob's were (data/):
	// a complete blob found damaged becomes partial in one record write,
	// with no file moved, so a crash leaves it either complete or partial.
	recDamaged = 4
	// recPacked: complete, data and outboard in a pack file shared with
	// the other blobs of the batch it was fetched in (see batchWriter).
	// The scrubber checks file blobs; a packed blob is checked by whoever
	// fetches it, as every blob is.
	recPacked = 5
)

// keyScrubCursor is the key of the scrubber's cursor (the last blob it verified).
var keyScrubCursor = []byte{'s'}

// Store keeps blobs under a directory: data/<xx>/<hash>.{data,obao} for
// complete blobs, partial/<hash>.{data,obao} while a transfer is under way,
// and a small Pebble database of records and bitmaps.
type Store struct {
	dir    string
	db     *pebble.DB
	life   sync.RWMutex
	closed atomic.Bool

	mu       sync.Mutex
	receives map[[32]byte]*Receiver // at most one writer per blob
	packMu   sync.Mutex             // packs' counts of live blobs

	onDamage damageHook
}

// metaCacheSize is the block cache of the store's records and bitmaps.
const metaCacheSize = 8 << 20

// Open opens or creates a blob store in dir.
func Open(dir string) (*Store, error) {
	for _, d := range []string{"data", "partial", "tmp", "packs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("blob store: %w", err)
		}
	}
	// Leftovers of adds that never finished.
	if ents, err := os.ReadDir(filepath.Join(dir, "tmp")); err == nil {
		for _, e := range ents {
			_ = os.Remove(filepath.Join(dir, "tmp", e.Name()))
		}
	}
	po := &pebble.Options{Logger: pebblelog.New(nil, "blobs")}
	po.Experimental.CompactionScheduler = pebblesched.New()
	release := pebblecache.Attach(po, metaCacheSize)
	db, err := pebble.Open(filepath.Join(dir, "meta"), po)
	release()
	if err != nil {
		return nil, fmt.Errorf("blob store %s: %w", dir, err)
	}
	s := &Store{dir: dir, db: db, receives: map[[32]byte]*Receiver{}}
	if err := s.removeUnrecordedPacks(); err != nil {
		db.Close()
		return nil, fmt.Errorf("blob store %s: %w", dir, err)
	}
	return s, nil
}

// Close closes the store; partial transfers keep their verified groups.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.life.Lock()
	defer s.life.Unlock()
	return s.db.Close()
}

func (s *Store) acquire() (func(), error) {
	s.life.RLock()
	if s.closed.Load() {
		s.life.RUnlock()
		return nil, ErrClosed
	}
	return s.life.RUnlock, nil
}

func key(kind byte, h [32]byte) []byte { return append([]byte{kind}, h[:]...) }

func (s *Store) path(h [32]byte, ext string) string {
	x := hex.EncodeToString(h[:])
	return filepath.Join(s.dir, "data", x[:2], x+ext)
}

func (s *Store) partialPath(h [32]byte, ext string) string {
	return filepath.Join(s.dir, "partial", hex.EncodeToString(h[:])+ext)
}

// partialFiles are the data and outboard files of a partial blob with
// record r: under partial/, or in place for a complete blob found damaged.
func (s *Store) partialFiles(h [32]byte, r record) (data, outboard string) {
	if r.kind == recDamaged {
		return s.path(h, ".data"), s.path(h, ".obao")
	}
	return s.partialPath(h, ".data"), s.partialPath(h, ".obao")
}

type record struct {
	kind   byte
	size   uint64
	inline []byte
	// recPacked: the pack, and where in it the data starts (the outboard,
	// header included, follows it)
	pack, off uint64
}

func (r record) partial() bool { return r.kind == recPartial || r.kind == recDamaged }

func (r record) encode() []byte {
	b := binary.BigEndian.AppendUint64([]byte{r.kind}, r.size)
	if r.kind == recPacked {
		b = binary.BigEndian.AppendUint64(b, r.pack)
		return binary.BigEndian.AppendUint64(b, r.off)
	}
	return append(b, r.inline...)
}

func (s *Store) record(h [32]byte) (record, bool, error) {
	v, closer, err := s.db.Get(key(kindRecord, h))
	if errors.Is(err, pebble.ErrNotFound) {
		return record{}, false, nil
	}
	if err != nil {
		return record{}, false, err
	}
	defer closer.Close()
	if len(v) < 9 {
		return record{}, false, fmt.Errorf("blob %s: damaged record", ID(h).Short())
	}
	r := record{kind: v[0], size: binary.BigEndian.Uint64(v[1:])}
	switch r.kind {
	case recInline:
		r.inline = bytes.Clone(v[9:])
	case recPacked:
		if len(v) != 25 {
			return record{}, false, fmt.Errorf("blob %s: damaged record (%d bytes)", ID(h).Short(), len(v))
		}
		r.pack, r.off = binary.BigEndian.Uint64(v[9:]), binary.BigEndian.Uint64(v[17:])
	}
	return r, true, nil
}

// Stat reports what the store holds of h.
func (s *Store) Stat(h [32]byte) (Status, error) {
	release, err := s.acquire()
	if err != nil {
		return Status{}, err
	}
	defer release()
	r, ok, err := s.record(h)
	if err != nil || !ok {
		return Status{}, err
	}
	st := Status{State: Complete, Size: r.size, VerifiedGroups: NumGroups(r.size)}
	if r.partial() {
		st.State = Partial
		bm, err := s.bitmap(h, r.size)
		if err != nil {
			return st, err
		}
		st.VerifiedGroups = bm.count()
	}
	return st, nil
}

// AddBytes stores data and returns its hash.
func (s *Store) AddBytes(data []byte) ([32]byte, error) {
	return s.AddReader(bytes.NewReader(data), int64(len(data)), nil)
}

// AddFile stores a copy of the file at path.
func (s *Store) AddFile(path string, progress func(done int64)) ([32]byte, uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return [32]byte{}, 0, err
	}
	if !fi.Mode().IsRegular() {
		return [32]byte{}, 0, fmt.Errorf("add %s: not a regular file", path)
	}
	h, err := s.AddReader(f, fi.Size(), progress)
	return h, uint64(fi.Size()), err
}

// AddReader stores size bytes read from r: one pass that copies, hashes and
// builds the outboard.
func (s *Store) AddReader(r io.Reader, size int64, progress func(done int64)) (h [32]byte, err error) {
	release, err := s.acquire()
	if err != nil {
		return h, err
	}
	defer release()
	if size < 0 {
		return h, errors.New("add: unknown size")
	}
	if size <= InlineMax {
		data := make([]byte, size)
		if _, err := io.ReadFull(r, data); err != nil {
			return h, fmt.Errorf("add: %w", err)
		}
		h = blake3.Sum256(data)
		return h, s.db.Set(key(kindRecord, h), record{kind: recInline, size: uint64(size), inline: data}.encode(), pebble.Sync)
	}
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "add-*.data")
	if err != nil {
		return h, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	obSize := OutboardSize(uint64(size))
	var ob io.WriterAt
	var obMem *memWriterAt
	var obTmp *os.File
	if obSize <= maxMemOutboard {
		obMem = &memWriterAt{buf: make([]byte, obSize)}
		ob = obMem
	} else {
		if obTmp, err = os.CreateTemp(filepath.Join(s.dir, "tmp"), "add-*.obao"); err != nil {
			return h, err
		}
		defer func() {
			obTmp.Close()
			if err != nil {
				os.Remove(obTmp.Name())
			}
		}()
		ob = obTmp
	}
	dst := &directFile{f: tmp, direct: openDirect(tmp.Name())}
	h, err = hashAndCopy(r, size, dst, ob, progress)
	if cerr := dst.closeDirect(); err == nil {
		err = cerr
	}
	if err != nil {
		return h, fmt.Errorf("add: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return h, err
	}
	if err := tmp.Close(); err != nil {
		return h, err
	}
	if obMem != nil {
		return h, s.install(h, uint64(size), tmp.Name(), obMem.buf)
	}
	if err := obTmp.Sync(); err != nil {
		return h, err
	}
	return h, s.installFiles(h, uint64(size), tmp.Name(), obTmp.Name())
}

// maxMemOutboard: adds build outboards up to this size (blobs up to 4 GiB)
// in memory; larger ones are written to a file as they are computed.
const maxMemOutboard = 16 << 20

// hashAndCopy reads size bytes from r once, in 1 MiB blocks, and hands each
// block both to a goroutine that writes it to dst and to one that hashes it
// into the outboard: hashing and the kernel copy run on separate cores.
func hashAndCopy(r io.Reader, size int64, dst io.WriterAt, ob io.WriterAt, progress func(int64)) ([32]byte, error) {
	const blockSize, blocks = 1 << 20, 4
	pool := make(chan *block, blocks)
	for range blocks {
		pool <- &block{b: alignedBuffer(blockSize), pool: pool}
	}
	toHash, toWrite := make(chan *block, blocks), make(chan *block, blocks)
	var writeErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var off int64
		for b := range toWrite {
			if writeErr == nil {
				_, writeErr = dst.WriteAt(b.b, off)
				off += int64(len(b.b))
			}
			b.release()
		}
	}()
	type result struct {
		root [32]byte
		err  error
	}
	hashed := make(chan result, 1)
	go func() {
		cr := &chanReader{ch: toHash}
		root, err := bao.Encode(ob, cr, size, GroupLog, true)
		cr.drain()
		hashed <- result{root, err}
	}()
	var readErr error
	var done int64
	for done < size {
		b := <-pool
		n := int(min(int64(blockSize), size-done))
		b.b = b.b[:cap(b.b)]
		if _, readErr = io.ReadFull(r, b.b[:n]); readErr != nil {
			pool <- b
			break
		}
		b.b = b.b[:n]
		b.refs.Store(2)
		toHash <- b
		toWrite <- b
		done += int64(n)
		if progress != nil {
			progress(done)
		}
	}
	close(toHash)
	close(toWrite)
	res := <-hashed
	wg.Wait()
	switch {
	case readErr != nil:
		return res.root, readErr
	case writeErr != nil:
		return res.root, writeErr
	}
	return res.root, res.err
}

// block is a buffer shared by the hashing and the writing goroutine; it
// returns to its pool when both are done with it.
type block struct {
	b    []byte
	refs atomic.Int32
	pool chan *block
}

func (b *block) release() {
	if b.refs.Add(-1) == 0 {
		b.pool <- b
	}
}

// chanReader reads the blocks of a channel as one stream.
type chanReader struct {
	ch  <-chan *block
	cur *block
	off int
}

func (c *chanReader) Read(p []byte) (int, error) {
	for c.cur == nil || c.off == len(c.cur.b) {
		if c.cur != nil {
			c.cur.release()
			c.cur = nil
		}
		b, ok := <-c.ch
		if !ok {
			return 0, io.EOF
		}
		c.cur, c.off = b, 0
	}
	n := copy(p, c.cur.b[c.off:])
	c.off += n
	return n, nil
}

// drain releases whatever the hasher did not read (after an error).
func (c *chanReader) drain() {
	if c.cur != nil {
		c.cur.release()
		c.cur = nil
	}
	for b := range c.ch {
		b.release()
	}
}

// install moves a verified data file and its outboard into place and
// records the blob as complete.
func (s *Store) install(h [32]byte, size uint64, dataFile string, outboard []byte) error {
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "add-*.obao")
	if err != nil {
		return err
	}
	tmp.Close()
	if err := writeFileSync(tmp.Name(), outboard); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return s.installFiles(h, size, dataFile, tmp.Name())
}

// installFiles moves a verified, synced data file and outboard file into
// place and records the blob as complete.
func (s *Store) installFiles(h [32]byte, size uint64, dataFile, obFile string) error {
	if r, ok, err := s.record(h); err == nil && ok && !r.partial() {
		if dataFile != s.path(h, ".data") { // else they are the complete blob's own
			_ = os.Remove(dataFile) // already complete
			_ = os.Remove(obFile)
		}
		return nil
	}
	dst := s.path(h, ".data")
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	if err := os.Rename(obFile, s.path(h, ".obao")); err != nil {
		return err
	}
	if err := os.Rename(dataFile, dst); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(key(kindRecord, h), record{kind: recFile, size: size}.encode(), nil)
	deleteBitmap(b, h)
	return b.Commit(pebble.Sync)
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

type memWriterAt struct{ buf []byte }

func (m *memWriterAt) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m.buf)) {
		return 0, errors.New("outboard write out of range")
	}
	return copy(m.buf[off:], p), nil
}

// Blob is an open complete blob.
type Blob struct {
	Size     uint64
	Data     io.ReaderAt
	Outboard io.ReaderAt
	close    func() error
}

// Close releases the blob's files.
func (b *Blob) Close() error {
	if b.close == nil {
		return nil
	}
	return b.close()
}

// OpenBlob opens a complete blob for reading.
func (s *Store) OpenBlob(h [32]byte) (*Blob, error) {
	release, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer release()
	r, ok, err := s.record(h)
	if err != nil {
		return nil, err
	}
	if !ok || r.partial() {
		return nil, fmt.Errorf("%w: blob %s", ErrNotFound, ID(h).Short())
	}
	if r.kind == recPacked {
		f, err := os.Open(s.packPath(r.pack))
		if err != nil {
			return nil, fmt.Errorf("blob %s: pack: %w", ID(h).Short(), err)
		}
		return &Blob{Size: r.size, Data: io.NewSectionReader(f, int64(r.off), int64(r.size)),
			Outboard: io.NewSectionReader(f, int64(r.off+r.size), int64(OutboardSize(r.size))), close: f.Close}, nil
	}
	if r.kind == recInline {
		var hdr [headerLen]byte
		binary.LittleEndian.PutUint64(hdr[:], r.size)
		return &Blob{Size: r.size, Data: bytes.NewReader(r.inline), Outboard: bytes.NewReader(hdr[:])}, nil
	}
	d, err := os.Open(s.path(h, ".data"))
	if err != nil {
		return nil, fmt.Errorf("blob %s: data file: %w", ID(h).Short(), err)
	}
	o, err := os.Open(s.path(h, ".obao"))
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("blob %s: outboard: %w", ID(h).Short(), err)
	}
	// The data is served through storedData, which lets WriteStream check
	// what it sends against the tree and report rot to the store.
	return &Blob{Size: r.size, Data: &storedData{File: d, s: s, hash: h}, Outboard: o,
		close: func() error { return errors.Join(d.Close(), o.Close()) }}, nil
}

// Delete removes a blob (complete or partial). Deleting a missing blob is not an error.
func (s *Store) Delete(h [32]byte) error {
	release, err := s.acquire()
	if err != nil {
		return err
	}
	defer release()
	s.mu.Lock()
	if p := s.receives[h]; p != nil {
		s.mu.Unlock()
		return fmt.Errorf("blob %s: a transfer is writing it", ID(h).Short())
	}
	s.mu.Unlock()
	s.packMu.Lock()
	defer s.packMu.Unlock()
	r, ok, err := s.record(h)
	if err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Delete(key(kindRecord, h), nil)
	deleteBitmap(b, h)
	files := []string{s.path(h, ".data"), s.path(h, ".obao"), s.partialPath(h, ".data"), s.partialPath(h, ".obao")}
	if ok && r.kind == recPacked {
		pack, err := s.dropPacked(b, r)
		if err != nil {
			return err
		}
		if pack != "" {
			files = append(files, pack)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	for _, p := range files {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// List calls fn for every blob the store holds, complete or partial.
func (s *Store) List(fn func(h [32]byte, st Status) error) error {
	release, err := s.acquire()
	if err != nil {
		return err
	}
	defer release()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindRecord}, UpperBound: []byte{kindRecord + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		var h [32]byte
		copy(h[:], it.Key()[1:])
		v := it.Value()
		if len(v) < 9 {
			continue
		}
		st := Status{State: Complete, Size: binary.BigEndian.Uint64(v[1:])}
		if (record{kind: v[0]}).partial() {
			st.State = Partial
		}
		if err := fn(h, st); err != nil {
			return err
		}
	}
	return it.Error()
}

// Export writes bytes [offset, offset+length) of a blob to w (length 0 = to
// the end). A partial blob can be exported where its groups are verified.
func (s *Store) Export(h [32]byte, w io.Writer, offset, length uint64) error {
	st, err := s.Stat(h)
	if err != nil {
		return err
	}
	if st.State == Missing {
		return fmt.Errorf("%w: blob %s", ErrNotFound, ID(h).Short())
	}
	if offset > st.Size {
		return fmt.Errorf("export: offset %d is past the end (%d bytes)", offset, st.Size)
	}
	if length == 0 || offset+length > st.Size {
		length = st.Size - offset
	}
	var src io.ReaderAt
	if st.State == Complete {
		b, err := s.OpenBlob(h)
		if err != nil {
			return err
		}
		defer b.Close()
		src = b.Data
	} else {
		release, err := s.acquire()
		if err != nil {
			return err
		}
		rec, _, err := s.record(h)
		var bm bitmap
		if err == nil {
			bm, err = s.bitmap(h, st.Size)
		}
		release()
		if err != nil {
			return err
		}
		r := ByteRange(offset, length, st.Size)
		for g := r.Start; g < r.End; g++ {
			if !bm.has(g) {
				return fmt.Errorf("export: group %d of partial blob %s is not verified yet (fetch it first)", g, ID(h).Short())
			}
		}
		dataFile, _ := s.partialFiles(h, rec)
		f, err := os.Open(dataFile)
		if err != nil {
			return err
		}
		defer f.Close()
		src = f
	}
	_, err = io.Copy(w, io.NewSectionReader(src, int64(offset), int64(length)))
	return err
}
