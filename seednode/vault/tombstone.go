package vault

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/zeebo/blake3"
)

// A vault keeps its tombstones in an index of their own, by author then key
// (kindTomb), so that the tombstone covering an entry is found with a seek
// or two instead of one lookup per prefix of its key. Its stored tombstones
// are collected: none covers another (a newer tombstone removes the older
// ones under its key), so among an author's tombstones whose keys are
// prefixes of a key the longest is the newest.

// tombKey is the index key of author's tombstone at key; its value is the
// tombstone's timestamp.
func tombKey(ns NamespaceID, author AuthorID, key []byte) []byte {
	return append(tombAuthorPrefix(ns, author), key...)
}

func tombAuthorPrefix(ns NamespaceID, author AuthorID) []byte {
	return append(nsKey(kindTomb, ns, idLen+MaxKeyLen), author[:]...)
}

// parseTombKey splits an index key after the namespace into author and key.
func parseTombKey(b []byte) (AuthorID, []byte, error) {
	var author AuthorID
	if len(b) <= idLen || len(b) > idLen+MaxKeyLen {
		return author, nil, errors.New("tombstone index: bad key length")
	}
	copy(author[:], b)
	return author, b[idLen:], nil
}

// indexKey is where e is indexed: the key index for a value, the tombstone
// index for a tombstone.
func indexKey(ns NamespaceID, e *Entry) []byte {
	if e.IsTombstone() {
		return tombKey(ns, e.Author, e.Key)
	}
	return keyIndexKey(ns, e.Key, e.Author)
}

// tombDigest is what VerifyVault sums for a tombstone's index record.
func tombDigest(ih *Hash, ts uint64) Hash {
	var b [idLen + 8]byte
	copy(b[:], ih[:])
	binary.BigEndian.PutUint64(b[idLen:], ts)
	return Hash(blake3.Sum256(b[:]))
}

// coveringTombstone returns the timestamp of author's stored tombstone with
// the longest key that is a prefix of key (or key itself), if any. It seeks
// to the greatest index key not after key: a prefix of key, or a key that
// shares a first part with it, and only a prefix of that part can cover key.
func coveringTombstone(it *pebble.Iterator, base, key []byte) (uint64, bool, error) {
	seek := make([]byte, 0, len(base)+len(key)+1)
	for k := key; len(k) > 0; {
		seek = append(append(append(seek[:0], base...), k...), 0) // the first key after k
		if !it.SeekLT(seek) || !bytes.HasPrefix(it.Key(), base) {
			return 0, false, it.Error()
		}
		cand := it.Key()[len(base):]
		if bytes.HasPrefix(k, cand) {
			if len(it.Value()) != 8 {
				return 0, false, fmt.Errorf("tombstone index: bad timestamp: %w", ErrDamaged)
			}
			return binary.BigEndian.Uint64(it.Value()), true, nil
		}
		k = k[:commonPrefixLen(k, cand)]
	}
	return 0, false, nil
}

func commonPrefixLen(a, b []byte) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// CoveringTombstone returns the timestamp of author's tombstone that deletes
// key's entries (the newest one whose key is a prefix of key, or key
// itself), if there is one: a write of key must be newer to be kept.
func (s *Store) CoveringTombstone(ns NamespaceID, author AuthorID, key []byte) (ts uint64, found bool, err error) {
	release, err := s.acquire()
	if err != nil {
		return 0, false, err
	}
	defer release()
	base := tombAuthorPrefix(ns, author)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: base, UpperBound: prefixUpper(base)})
	if err != nil {
		return 0, false, err
	}
	defer func() { err = errors.Join(err, it.Close()) }()
	ts, found, err = coveringTombstone(it, base, key)
	return ts, found, s.noteErr(err)
}

// covered reports whether a tombstone of e's author, stored or staged in
// this batch, deletes e.
func (tx *insertTx) covered(e *Entry) (bool, error) {
	for _, ih := range tx.tombs {
		if t := tx.pending[ih]; t != nil && t.Covers(e) {
			return true, nil
		}
	}
	if tx.tombIter == nil {
		it, err := tx.s.db.NewIter(&pebble.IterOptions{LowerBound: nsKey(kindTomb, tx.ns, 0), UpperBound: nsUpper(kindTomb, tx.ns)})
		if err != nil {
			return false, err
		}
		// Most vaults hold no tombstone: one seek per batch then, not one
		// per entry (which cost a fifth of an insert).
		tx.tombIter, tx.noStoredTombs = it, !it.First()
		if err := it.Error(); err != nil {
			return false, tx.s.noteErr(err)
		}
	}
	if tx.noStoredTombs {
		return false, nil
	}
	ts, found, err := coveringTombstone(tx.tombIter, tombAuthorPrefix(tx.ns, e.Author), e.Key)
	return found && ts > e.Timestamp, tx.s.noteErr(err)
}

// removeCovered removes what tombstone t deletes: its author's older values
// and tombstones under its key, stored or staged in this batch.
func (tx *insertTx) removeCovered(t *Entry) error {
	for ih, cur := range tx.pending {
		if cur != nil && t.Covers(&cur.Entry) {
			if err := tx.removeIfCovered(t, &ih); err != nil {
				return err
			}
		}
	}
	values := escapeKey(nsKey(kindKey, tx.ns, len(t.Key)), t.Key)
	err := tx.s.iterate(values, prefixUpper(values), func(k, _ []byte) error {
		key, author, err := parseKeyIndexKey(k[1+idLen:])
		if err != nil || author != t.Author {
			return err
		}
		ih := itemHash(key, author)
		return tx.removeIfCovered(t, &ih)
	})
	if err != nil {
		return tx.s.noteErr(err)
	}
	tombs := tombKey(tx.ns, t.Author, t.Key)
	err = tx.s.iterate(tombs, prefixUpper(tombs), func(k, _ []byte) error {
		author, key, err := parseTombKey(k[1+idLen:])
		if err != nil {
			return err
		}
		ih := tombstoneItemHash(key, author)
		return tx.removeIfCovered(t, &ih)
	})
	return tx.s.noteErr(err)
}

func (tx *insertTx) removeIfCovered(t *Entry, ih *Hash) error {
	cur, err := tx.current(ih)
	if err != nil {
		return err
	}
	if cur == nil {
		if _, removed := tx.pending[*ih]; removed {
			return nil
		}
		return fmt.Errorf("vault %s: an index names a missing entry: %w", tx.ns.Short(), ErrDamaged)
	}
	if !t.Covers(&cur.Entry) {
		return nil
	}
	tx.res.Deleted++
	return tx.remove(ih, cur)
}

// remove deletes, in the batch, the entry cur at item hash ih with its index
// record, and takes it out of the vault's sums and counters.
func (tx *insertTx) remove(ih *Hash, cur *SignedEntry) error {
	if err := tx.batch.Delete(entryKey(tx.ns, ih), nil); err != nil {
		return err
	}
	if err := tx.batch.Delete(indexKey(tx.ns, &cur.Entry), nil); err != nil {
		return err
	}
	fp := cur.Fingerprint()
	addDelta(tx.deltas, ih, nil, &fp)
	tx.entries--
	tx.refBytes -= min(tx.refBytes, cur.Size)
	tx.pending[*ih] = nil
	return nil
}
