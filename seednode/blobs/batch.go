package blobs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
)

// Small blobs (a collection's members, up to batchBlobMax each) are not
// written through a Receiver, which makes each one durable on its own (a
// partial record, data and outboard fsyncs, a rename, a directory fsync and
// a record: seven syncs a blob, 4.4 ms per 64 KiB member on the machine the
// many-small-blobs figure was measured on). A batchWriter instead writes
// each verified blob's files in place without syncing them, and makes a
// whole batch durable at once, in the background while the next batch
// arrives: one syncfs(2) of the store's filesystem (which on Linux also
// makes the files' directory entries durable), then one Pebble batch,
// committed with pebble.Sync, records every blob of the batch as complete.
//
// A blob is complete only once its batch is recorded: a crash before that
// leaves its files without a record, so the blob is missing and is fetched
// (and verified) again, never trusted; a later fetch overwrites the files.
// At most two batches (one being recorded, one filling) are unrecorded at a
// time, so a crash costs at most 2×batchBytes of verified blobs fetched
// again (the 16 MiB bound of a single blob's receiver).
const (
	batchBlobMax    = 4 << 20
	batchBytes      = 8 << 20
	batchMaxMembers = 1024
)

// pendingBlob is a verified blob written but not yet durable.
type pendingBlob struct {
	hash   [32]byte
	size   uint64
	inline []byte // blobs up to InlineMax: the record holds the data
}

type pendingBatch struct {
	blobs []pendingBlob
	files []string            // the files written, for syncFilesEach
	dirs  map[string]struct{} // their directories
	bytes uint64
}

// batchWriter writes small verified blobs and records them in batches. Use
// it from one goroutine.
type batchWriter struct {
	s       *Store
	cur     *pendingBatch
	busy    bool // a batch is being made durable
	done    chan batchResult
	claimed map[[32]byte]bool // hashes this writer holds (claim)
	err     error
}

func (s *Store) newBatchWriter() *batchWriter {
	return &batchWriter{s: s, done: make(chan batchResult, 1), claimed: map[[32]byte]bool{}}
}

// batchResult: a recorded batch's hashes (no longer claimed), or why it failed.
type batchResult struct {
	recorded [][32]byte
	err      error
}

// claim reserves h for this writer, as Receive does for a receiver: no other
// transfer writes h, and Delete refuses it, until it is released.
func (b *batchWriter) claim(h [32]byte) error {
	s := b.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.receives[h] != nil {
		return fmt.Errorf("blob %s: %w", ID(h).Short(), ErrBusy)
	}
	s.receives[h] = &Receiver{s: s, hash: h}
	b.claimed[h] = true
	return nil
}

func (b *batchWriter) unclaim(hs ...[32]byte) {
	b.s.mu.Lock()
	for _, h := range hs {
		if b.claimed[h] {
			delete(b.s.receives, h)
		}
	}
	b.s.mu.Unlock()
	for _, h := range hs {
		delete(b.claimed, h)
	}
}

// add writes a verified blob of a claimed hash: data and its outboard
// (headerLen bytes for the size first; only for blobs over InlineMax).
func (b *batchWriter) add(h [32]byte, data, outboard []byte) error {
	if b.err != nil {
		return b.err
	}
	if b.cur == nil {
		b.cur = &pendingBatch{dirs: map[string]struct{}{}}
	}
	p := pendingBlob{hash: h, size: uint64(len(data))}
	if p.size <= InlineMax {
		p.inline = append([]byte(nil), data...)
	} else {
		release, err := b.s.acquire()
		if err != nil {
			return err
		}
		err = b.s.writeBlobFiles(h, data, outboard, b.cur)
		release()
		if err != nil {
			b.err = err
			return err
		}
	}
	b.cur.blobs = append(b.cur.blobs, p)
	b.cur.bytes += p.size + uint64(len(outboard))
	if b.cur.bytes >= batchBytes || len(b.cur.blobs) >= batchMaxMembers {
		return b.submit()
	}
	return nil
}

// submit hands the current batch to the background, first waiting for the
// one before it.
func (b *batchWriter) submit() error {
	if err := b.wait(); err != nil {
		return err
	}
	if b.cur == nil || len(b.cur.blobs) == 0 {
		return nil
	}
	batch := b.cur
	b.cur, b.busy = nil, true
	go func() {
		hs, err := b.record(batch)
		b.done <- batchResult{hs, err}
	}()
	return nil
}

// wait waits for the batch being recorded.
func (b *batchWriter) wait() error {
	if b.busy {
		b.busy = false
		res := <-b.done
		for _, h := range res.recorded {
			delete(b.claimed, h)
		}
		if res.err != nil && b.err == nil {
			b.err = res.err
		}
	}
	return b.err
}

// flush records everything added so far and waits for it.
func (b *batchWriter) flush() error {
	if err := b.submit(); err != nil {
		return err
	}
	return b.wait()
}

// close waits for the batch being recorded, drops the one filling (its
// blobs stay missing: their files are overwritten when they are fetched
// again) and releases every claim.
func (b *batchWriter) close() error {
	err := b.wait()
	b.cur = nil
	hs := make([][32]byte, 0, len(b.claimed))
	for h := range b.claimed {
		hs = append(hs, h)
	}
	b.unclaim(hs...)
	return err
}

// record makes a batch durable, records its blobs as complete and releases
// their claims, which it returns.
func (b *batchWriter) record(batch *pendingBatch) ([][32]byte, error) {
	release, err := b.s.acquire()
	if err != nil {
		return nil, err
	}
	defer release()
	if err := b.s.syncFiles(batch); err != nil {
		return nil, fmt.Errorf("blob store: making %d fetched blobs durable: %w", len(batch.blobs), err)
	}
	pb := b.s.db.NewBatch()
	defer pb.Close()
	for _, p := range batch.blobs {
		r := record{kind: recFile, size: p.size}
		if p.inline != nil || p.size == 0 {
			r = record{kind: recInline, size: p.size, inline: p.inline}
		}
		_ = pb.Set(key(kindRecord, p.hash), r.encode(), nil)
		deleteBitmap(pb, p.hash)
	}
	if err := pb.Commit(pebble.Sync); err != nil {
		return nil, fmt.Errorf("blob store: recording %d fetched blobs: %w", len(batch.blobs), err)
	}
	hs := make([][32]byte, len(batch.blobs))
	for i, p := range batch.blobs {
		hs[i] = p.hash
	}
	b.s.mu.Lock()
	for _, h := range hs {
		delete(b.s.receives, h)
	}
	b.s.mu.Unlock()
	return hs, nil
}

// writeBlobFiles writes a verified blob's data and outboard where a
// complete blob's files are, without syncing them, and notes the directory.
func (s *Store) writeBlobFiles(h [32]byte, data, outboard []byte, batch *pendingBatch) error {
	dst, ob := s.path(h, ".data"), s.path(h, ".obao")
	dir := filepath.Dir(dst)
	if _, ok := batch.dirs[dir]; !ok {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		batch.dirs[dir] = struct{}{}
	}
	if err := writeFile(dst, data); err != nil {
		return err
	}
	batch.files = append(batch.files, dst, ob)
	return writeFile(ob, outboard)
}

func writeFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	return errors.Join(err, f.Close())
}

// syncFilesEach is syncFiles where syncfs(2) is missing or refused: each
// file, then each directory.
func syncFilesEach(batch *pendingBatch) error {
	for _, f := range batch.files {
		if err := syncPath(f); err != nil {
			return err
		}
	}
	for dir := range batch.dirs {
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	return nil
}

func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}
