package blobs

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// Small blobs (a collection's members, up to batchBlobMax each) are not
// written through a Receiver, which makes each one durable on its own (a
// partial record, data and outboard fsyncs, a rename, a directory fsync and
// a record: seven syncs a blob, 4.4 ms per 64 KiB member on the machine the
// many-small-blobs figure was first measured on), and not into files of
// their own either: creating a file cost 0.35-0.45 ms of CPU on the
// machine measured (ext4, shared, loaded) against 0.02 ms for writing
// 64 KiB, so 2,000 members of 64 KiB in files (data and outboard) still
// took four times as long as the same bytes as one blob, and kept whole in
// Pebble records, as long again in Pebble's flushes and compactions
// (hack/bench/blobs -only many, CPU profiles).
//
// A batchWriter appends each verified blob, data then outboard, to one
// pack file per batch (packs/<id>.pack) and makes the batch durable at
// once, in the background while the next batch arrives: the pack is
// fsynced, then the packs directory, then one Pebble batch, committed with
// pebble.Sync, records every blob of the batch as complete (recPacked:
// the pack and the offset) with the pack's count of live blobs. Blobs up
// to InlineMax go whole into their record, as they always do.
//
// A blob is complete only once its batch is recorded: a crash before that
// leaves a pack no record counts, which Open removes, so the blob is
// missing and is fetched (and verified) again, never trusted. At most two
// batches (one being recorded, one filling) are unrecorded at a time, so a
// crash costs at most 2×batchBytes of verified blobs fetched again (the
// 16 MiB bound of a single blob's receiver).
const (
	batchBlobMax    = 4 << 20
	batchBytes      = 8 << 20
	batchMaxMembers = 1024
)

// kindPack keys a pack's count of live blobs: p|id -> uint32.
const kindPack = 'p'

func packKey(id uint64) []byte { return binary.BigEndian.AppendUint64([]byte{kindPack}, id) }

func (s *Store) packPath(id uint64) string {
	return filepath.Join(s.dir, "packs", fmt.Sprintf("%016x.pack", id))
}

// pendingBlob is a verified blob written but not yet durable.
type pendingBlob struct {
	hash   [32]byte
	size   uint64
	inline []byte // blobs up to InlineMax: the record holds the data
	off    uint64 // others: where the data starts in the pack
}

type pendingBatch struct {
	blobs  []pendingBlob
	pack   *os.File // nil until a blob over InlineMax arrives
	packID uint64
	w      *bufio.Writer
	off    uint64 // bytes written to the pack
	bytes  uint64
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
	s.receives[h] = batchClaim
	b.claimed[h] = true
	return nil
}

// batchClaim holds the hashes batch writers claimed in Store.receives (a
// Receiver is large: one each cost a collection fetch 32 MiB of garbage).
var batchClaim = &Receiver{}

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
		b.cur = &pendingBatch{}
	}
	cur := b.cur
	p := pendingBlob{hash: h, size: uint64(len(data))}
	if p.size <= InlineMax {
		p.inline = append([]byte(nil), data...)
	} else {
		if err := b.write(cur, data, outboard); err != nil {
			b.err = err
			return err
		}
		p.off = cur.off
		cur.off += p.size + uint64(len(outboard))
	}
	cur.blobs = append(cur.blobs, p)
	cur.bytes += p.size + uint64(len(outboard))
	if cur.bytes >= batchBytes || len(cur.blobs) >= batchMaxMembers {
		return b.submit()
	}
	return nil
}

// write appends data and outboard to the batch's pack, creating it first.
func (b *batchWriter) write(cur *pendingBatch, data, outboard []byte) error {
	release, err := b.s.acquire()
	if err != nil {
		return err
	}
	defer release()
	if cur.pack == nil {
		var id [8]byte
		if _, err := rand.Read(id[:]); err != nil {
			return err
		}
		cur.packID = binary.BigEndian.Uint64(id[:])
		if cur.pack, err = os.OpenFile(b.s.packPath(cur.packID), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err != nil {
			return fmt.Errorf("blob store: %w", err)
		}
		cur.w = bufio.NewWriterSize(cur.pack, 1<<20)
	}
	if _, err := cur.w.Write(data); err != nil {
		return err
	}
	_, err = cur.w.Write(outboard)
	return err
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
// blobs stay missing) and releases every claim.
func (b *batchWriter) close() error {
	err := b.wait()
	if cur := b.cur; cur != nil && cur.pack != nil {
		cur.pack.Close()
		os.Remove(cur.pack.Name())
	}
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
		if batch.pack != nil {
			batch.pack.Close()
		}
		return nil, err
	}
	defer release()
	pb := b.s.db.NewBatch()
	defer pb.Close()
	if batch.pack != nil {
		err := errors.Join(batch.w.Flush(), batch.pack.Sync(), batch.pack.Close())
		if err == nil {
			err = syncDir(filepath.Dir(batch.pack.Name()))
		}
		if err != nil {
			os.Remove(batch.pack.Name())
			return nil, fmt.Errorf("blob store: making %d fetched blobs durable: %w", len(batch.blobs), err)
		}
		live := 0
		for _, p := range batch.blobs {
			if p.inline == nil {
				live++
			}
		}
		_ = pb.Set(packKey(batch.packID), binary.BigEndian.AppendUint32(nil, uint32(live)), nil)
	}
	for _, p := range batch.blobs {
		r := record{kind: recPacked, size: p.size, pack: batch.packID, off: p.off}
		if p.inline != nil {
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

// dropPacked adds to pb the release of a packed blob's place in its pack,
// and returns the pack's file if no blob is left in it (to remove once pb
// is committed). The caller holds packMu until then.
func (s *Store) dropPacked(pb *pebble.Batch, r record) (string, error) {
	v, closer, err := s.db.Get(packKey(r.pack))
	if errors.Is(err, pebble.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	live := uint32(0)
	if len(v) == 4 {
		live = binary.BigEndian.Uint32(v)
	}
	closer.Close()
	if live <= 1 {
		_ = pb.Delete(packKey(r.pack), nil)
		return s.packPath(r.pack), nil
	}
	_ = pb.Set(packKey(r.pack), binary.BigEndian.AppendUint32(nil, live-1), nil)
	return "", nil
}

// removeUnrecordedPacks removes the packs of batches that were never
// recorded (the process ended first): no record points into them.
func (s *Store) removeUnrecordedPacks() error {
	ents, err := os.ReadDir(filepath.Join(s.dir, "packs"))
	if err != nil {
		return err
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".pack")
		raw, err := hex.DecodeString(name)
		if !ok || err != nil || len(raw) != 8 {
			continue
		}
		_, closer, err := s.db.Get(packKey(binary.BigEndian.Uint64(raw)))
		if errors.Is(err, pebble.ErrNotFound) {
			_ = os.Remove(filepath.Join(s.dir, "packs", e.Name()))
			continue
		}
		if err != nil {
			return err
		}
		closer.Close()
	}
	return nil
}
