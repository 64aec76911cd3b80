package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// A store's integrity rests on three things, each checked:
//
//   - Identity. A new store writes a random ID into Pebble (flushed into a
//     table at once) and into a file beside the store directory. A store
//     whose files were lost or replaced (a deleted manifest makes Pebble
//     start afresh from the last WAL) no longer holds the ID the file names,
//     and Open refuses it unless told to rebuild.
//   - Derived state. Range aggregates, the key and tombstone indexes and referenced bytes
//     derive from the entries; VerifyVault recomputes them and compares.
//   - Pebble's own checksums. Pebble reports a damaged table through its
//     event listener (never a panic here) and fails the read; the store
//     passes it on to OnCorruption, and the vaults whose reads fail are
//     quarantined, emptied and rebuilt from other replicas.
//
// A damaged replica is first Quarantined (no session is served), then,
// once its damaged data is gone, Rebuilding (sessions are served again, so
// that replicas and devices fill it) until Healed.

const (
	kindStoreID = 'i' // i -> store ID (16 random bytes)
	kindDamage  = 'q' // q | ns -> damage record
	kindRebuild = 'r' // r -> damage record: every vault hosted at next start must be rebuilt
)

var (
	// ErrStoreMismatch means the store on disk is not the one its data
	// directory held: its files were lost or replaced.
	ErrStoreMismatch = errors.New("the vault store is not the store this data directory held")
	// ErrDamaged marks a stored record that does not decode.
	ErrDamaged = errors.New("the store is damaged")
	// ErrQuarantined is returned for a vault whose replica is quarantined.
	ErrQuarantined = errors.New("this seed's replica of the vault is damaged and being rebuilt")
)

// DamageState is how far the repair of a damaged replica has come.
type DamageState uint8

const (
	// Quarantined: damage found; nothing is served until Repair removes it.
	Quarantined DamageState = 1
	// Rebuilding: the damaged data is gone; the replica is being filled again.
	Rebuilding DamageState = 2
)

func (s DamageState) String() string {
	switch s {
	case Quarantined:
		return "Quarantined"
	case Rebuilding:
		return "Rebuilding"
	}
	return fmt.Sprintf("DamageState(%d)", uint8(s))
}

// Damage describes a damaged replica.
type Damage struct {
	State  DamageState
	Reason string
	Since  time.Time
}

func (d Damage) marshal() []byte {
	b := []byte{byte(d.State)}
	b = binary.BigEndian.AppendUint64(b, uint64(d.Since.UnixMicro()))
	return append(b, d.Reason...)
}

func unmarshalDamage(b []byte) (Damage, error) {
	if len(b) < 9 || (b[0] != byte(Quarantined) && b[0] != byte(Rebuilding)) {
		return Damage{}, fmt.Errorf("damage record: %w", ErrDamaged)
	}
	return Damage{State: DamageState(b[0]), Since: time.UnixMicro(int64(binary.BigEndian.Uint64(b[1:9]))),
		Reason: string(b[9:])}, nil
}

// idFile is where the store's ID is kept outside Pebble.
func (s *Store) idFile() string {
	if s.opts.IDFile != "" {
		return s.opts.IDFile
	}
	return filepath.Clean(s.dir) + ".id"
}

// checkIdentity compares the store's ID with the one its data directory
// recorded. A brand-new store gets an ID; a store from before IDs existed
// adopts one and asks for a full verification (NeedsVerify).
func (s *Store) checkIdentity() error {
	want, err := readIDFile(s.idFile())
	if err != nil {
		return err
	}
	var have []byte
	_, err = s.get([]byte{kindStoreID}, func(v []byte) error { have = bytes.Clone(v); return nil })
	switch {
	case err != nil && pebble.IsCorruptionError(err):
		// The table block that holds the ID is damaged: the store's files
		// are there (a replaced or lost store has no ID at all, not a
		// damaged one), so it is taken for what the ID file says, and
		// verified whole before it serves: the vaults whose entries share
		// the damaged block are quarantined and rebuilt like any others.
		s.log.Error("the vault store's ID cannot be read: its table is damaged; verifying the whole store", "err", err)
		s.needsVerify = true
		if want == nil {
			return s.newIdentity()
		}
		return s.writeIdentity(want)
	case err != nil:
		return fmt.Errorf("read the store ID: %w", err)
	}
	switch {
	case have != nil && want != nil && !bytes.Equal(have, want):
		return fmt.Errorf("%w: %s names store %x, but %s holds store %x", ErrStoreMismatch, s.idFile(), want, s.dir, have)
	case have == nil && want != nil:
		return fmt.Errorf("%w: %s names store %x, which %s no longer holds (its files were lost or replaced; "+
			"Pebble may have started afresh from a write-ahead log)", ErrStoreMismatch, s.idFile(), want, s.dir)
	case have != nil && want == nil:
		s.log.Warn("the vault store's ID file was missing; writing it again", "file", s.idFile())
		return writeIDFile(s.idFile(), have)
	case have == nil:
		empty, err := s.isEmpty()
		if err != nil {
			return err
		}
		s.needsVerify = !empty
		return s.newIdentity()
	}
	return nil
}

// newIdentity writes a fresh ID into Pebble, flushes it into a table (so a
// store restarted from its WAL alone lacks it) and records it in the file.
func (s *Store) newIdentity() error {
	id := make([]byte, 16)
	rand.Read(id)
	return s.writeIdentity(id)
}

// writeIdentity writes id into Pebble, flushed into a table, and records
// it in the ID file.
func (s *Store) writeIdentity(id []byte) error {
	if err := s.db.Set([]byte{kindStoreID}, id, pebble.Sync); err != nil {
		return fmt.Errorf("write the store ID: %w", err)
	}
	if err := s.db.Flush(); err != nil {
		return fmt.Errorf("flush the store ID: %w", err)
	}
	return writeIDFile(s.idFile(), id)
}

func (s *Store) isEmpty() (bool, error) {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return false, err
	}
	empty := !it.First()
	return empty, errors.Join(it.Error(), it.Close())
}

func readIDFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vault store ID file: %w", err)
	}
	id, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(id) != 16 {
		return nil, fmt.Errorf("vault store ID file %s does not hold a store ID (32 hex digits): %w", path, ErrDamaged)
	}
	return id, nil
}

func writeIDFile(path string, id []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(hex.EncodeToString(id)+"\n"), 0o600); err != nil {
		return fmt.Errorf("vault store ID file: %w", err)
	}
	if err := syncFile(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("vault store ID file: %w", err)
	}
	return syncFile(filepath.Dir(path))
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// moveAside renames path to path.damaged-<time>, keeping it for a post-mortem.
func moveAside(path string) (string, error) {
	aside := fmt.Sprintf("%s.damaged-%s", path, time.Now().UTC().Format("20060102T150405Z"))
	if err := os.Rename(path, aside); err != nil {
		return "", fmt.Errorf("move the damaged store aside: %w", err)
	}
	return aside, nil
}

// moveWALsAside moves the store's write-ahead logs into a directory beside
// it, so Pebble opens from its tables alone.
func moveWALsAside(dir string) (string, error) {
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(logs) == 0 {
		return "", fmt.Errorf("no write-ahead log to move aside in %s", dir)
	}
	aside := fmt.Sprintf("%s.damaged-wal-%s", filepath.Clean(dir), time.Now().UTC().Format("20060102T150405Z"))
	if err := os.MkdirAll(aside, 0o700); err != nil {
		return "", err
	}
	for _, l := range logs {
		if err := os.Rename(l, filepath.Join(aside, filepath.Base(l))); err != nil {
			return "", err
		}
	}
	return aside, syncFile(dir)
}

// PendingRebuild reports whether the store lost data it cannot attribute to
// vaults (a store rebuilt, a damaged write-ahead log): every vault hosted
// must then be rebuilt (MarkRebuilding) before ClearPendingRebuild.
func (s *Store) PendingRebuild() (Damage, bool) {
	var d Damage
	found, err := s.get([]byte{kindRebuild}, func(v []byte) (err error) { d, err = unmarshalDamage(v); return })
	return d, found && err == nil
}

// ClearPendingRebuild forgets the store-wide rebuild once every hosted vault
// is marked.
func (s *Store) ClearPendingRebuild() error {
	release, err := s.acquire()
	if err != nil {
		return err
	}
	defer release()
	return s.db.Delete([]byte{kindRebuild}, pebble.Sync)
}

func (s *Store) setPendingRebuild(reason string) error {
	d := Damage{State: Rebuilding, Reason: reason, Since: time.Now()}
	return s.db.Set([]byte{kindRebuild}, d.marshal(), pebble.Sync)
}

// NeedsVerify reports whether the store should be verified before it is
// trusted: it was written by a version without store IDs.
func (s *Store) NeedsVerify() bool { return s.needsVerify }

// Damage returns the damage record of ns, if it is damaged.
func (s *Store) Damage(ns NamespaceID) (Damage, bool) {
	d, ok := (*s.damage.Load())[ns]
	return d, ok
}

// Damaged lists the damaged vaults. The map is shared: callers must not
// modify it.
func (s *Store) Damaged() map[NamespaceID]Damage {
	return *s.damage.Load()
}

func (s *Store) quarantined(ns NamespaceID) bool {
	d, ok := s.Damage(ns)
	return ok && d.State == Quarantined
}

// setDamage records (d non-nil) or clears the damage of ns, durably.
func (s *Store) setDamage(ns NamespaceID, d *Damage) error {
	k := nsKey(kindDamage, ns, 0)
	var err error
	if d == nil {
		err = s.db.Delete(k, pebble.Sync)
	} else {
		err = s.db.Set(k, d.marshal(), pebble.Sync)
	}
	if err != nil {
		return fmt.Errorf("vault %s: record damage: %w", ns.Short(), err)
	}
	s.damageMu.Lock()
	defer s.damageMu.Unlock()
	next := make(map[NamespaceID]Damage, len(*s.damage.Load())+1)
	for k, v := range *s.damage.Load() {
		next[k] = v
	}
	if d == nil {
		delete(next, ns)
	} else {
		next[ns] = *d
	}
	s.damage.Store(&next)
	return nil
}

func (s *Store) loadDamage() error {
	m := map[NamespaceID]Damage{}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindDamage}, UpperBound: []byte{kindDamage + 1}})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != 1+idLen {
			continue
		}
		d, err := unmarshalDamage(it.Value())
		if err != nil {
			d = Damage{State: Quarantined, Reason: "damage record unreadable", Since: time.Now()}
		}
		m[NamespaceID(k[1:])] = d
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("read damage records: %w", err)
	}
	s.damage.Store(&m)
	return nil
}

// Quarantine marks ns damaged: no session is served and nothing is stored
// in it until Repair. Quarantining a vault already damaged keeps the first
// reason.
func (s *Store) Quarantine(ns NamespaceID, reason string) error {
	release, err := s.acquire()
	if err != nil {
		return err
	}
	defer release()
	if d, ok := s.Damage(ns); ok && d.State == Quarantined {
		return nil
	}
	s.log.Error("vault replica quarantined: its stored data is damaged; it will be rebuilt from other replicas",
		"vault", ns.Short(), "reason", reason)
	return s.setDamage(ns, &Damage{State: Quarantined, Reason: reason, Since: time.Now()})
}

// MarkRebuilding records that ns lost entries it held (they will come back
// from other replicas or devices) without removing any of its data.
func (s *Store) MarkRebuilding(ns NamespaceID, reason string) error {
	release, err := s.acquire()
	if err != nil {
		return err
	}
	defer release()
	if _, ok := s.Damage(ns); ok {
		return nil
	}
	return s.setDamage(ns, &Damage{State: Rebuilding, Reason: reason, Since: time.Now()})
}

// Healed clears the damage of ns: a sync after the repair filled it again.
func (s *Store) Healed(ns NamespaceID) error {
	release, err := s.acquire()
	if err != nil {
		return err
	}
	defer release()
	if d, ok := s.Damage(ns); !ok || d.State != Rebuilding {
		return nil
	}
	s.log.Info("vault replica rebuilt", "vault", ns.Short())
	return s.setDamage(ns, nil)
}

// Repair removes the data of a quarantined vault and leaves it Rebuilding.
// The damaged key ranges are excised (cut out of Pebble's tables without
// reading them), so a damaged block is never read again; where excising is
// impossible the ranges are deleted instead.
func (s *Store) Repair(ctx context.Context, ns NamespaceID) error {
	unlock, err := s.lockVault(ns)
	if err != nil {
		return err
	}
	defer unlock()
	d, ok := s.Damage(ns)
	if !ok || d.State != Quarantined {
		return nil
	}
	for _, kind := range []byte{kindEntry, kindKey, kindAgg, kindMeta, kindTomb} {
		span := pebble.KeyRange{Start: nsKey(kind, ns, 0), End: nsUpper(kind, ns)}
		if err := s.db.Excise(ctx, span); err != nil {
			s.log.Warn("could not excise a damaged vault's keys; deleting them instead", "vault", ns.Short(), "err", err)
			if err := s.db.DeleteRange(span.Start, span.End, pebble.Sync); err != nil {
				return fmt.Errorf("vault %s: remove damaged data: %w", ns.Short(), err)
			}
		}
	}
	s.agentsMu.Lock()
	delete(s.agents, ns)
	s.agentsMu.Unlock()
	d.State = Rebuilding
	return s.setDamage(ns, &d)
}

// noteErr reports a read error that shows damage to OnCorruption.
func (s *Store) noteErr(err error) error {
	if err != nil && (errors.Is(err, ErrDamaged) || pebble.IsCorruptionError(err)) {
		s.corrupted()
	}
	return err
}

// corrupted tells OnCorruption (never from the caller's goroutine: Pebble
// calls its listener on read paths).
func (s *Store) corrupted() {
	s.corruptions.Add(1)
	if fn := s.opts.OnCorruption; fn != nil {
		go fn()
	}
}

// Corruptions counts the damage Pebble and the store's decoders reported.
func (s *Store) Corruptions() uint64 { return s.corruptions.Load() }

// PebbleErrors counts the errors Pebble logged.
func (s *Store) PebbleErrors() uint64 { return s.logger.Errors() }

// VerifyReport is what VerifyVault found.
type VerifyReport struct {
	Entries uint64
	Bytes   uint64
	// Problem is empty when the derived state matches the entries.
	Problem string
}

// verifyState accumulates what a vault's entries imply.
type verifyState struct {
	aggs    map[uint32]*Aggregate
	entries uint64
	bytes   uint64
	ihSum   Aggregate // sum of values' item hashes: the key index must give the same
	tombSum Aggregate // sum of tombstones' tombDigest: the tombstone index must give the same
}

func (v *verifyState) add(ih, fp *Hash, e *Entry) {
	for d := 0; d <= aggDepth; d++ {
		suf := nodeOf(ih, d).aggSuffix()
		a := v.aggs[suf]
		if a == nil {
			a = &Aggregate{}
			v.aggs[suf] = a
		}
		a.add(fp)
	}
	if e.IsTombstone() {
		d := tombDigest(ih, e.Timestamp)
		v.tombSum.add(&d)
	} else {
		v.ihSum.add(ih)
	}
	v.entries++
	v.bytes += e.Size
}

// VerifyVault recomputes ns's derived state (range aggregates, key and tombstone indexes,
// referenced bytes) from its entries, checking every entry decodes and
// matches its fingerprint, and compares it with what is stored. A read
// error (a damaged table) is returned as an error; a disagreement as
// VerifyReport.Problem. It reads the whole vault, never holding it in
// memory: aggregates are kept for the stored depths only.
func (s *Store) VerifyVault(ns NamespaceID) (VerifyReport, error) {
	release, err := s.acquire()
	if err != nil {
		return VerifyReport{}, err
	}
	defer release()
	v, err := s.deriveVault(ns)
	if err != nil {
		return VerifyReport{}, s.noteErr(err)
	}
	rep := VerifyReport{Entries: v.entries, Bytes: v.bytes}
	rep.Problem, err = s.compareDerived(ns, v)
	return rep, s.noteErr(err)
}

// deriveVault reads every entry of ns and sums what it implies.
func (s *Store) deriveVault(ns NamespaceID) (*verifyState, error) {
	v := &verifyState{aggs: map[uint32]*Aggregate{}}
	err := s.scan(ns, Root, func(ih, fp *Hash, raw []byte) error {
		it, err := decodeStoredItem(raw)
		if err != nil {
			return err
		}
		if it.Entry.Namespace != ns || it.Entry.ItemHash() != *ih || it.Entry.Fingerprint() != *fp {
			return fmt.Errorf("vault %s: entry record %x does not match its key or fingerprint: %w", ns.Short(), ih[:8], ErrDamaged)
		}
		v.add(ih, fp, &it.Entry.Entry)
		return nil
	})
	return v, err
}

// compareDerived compares the stored aggregates, key index and referenced
// bytes of ns with v.
func (s *Store) compareDerived(ns NamespaceID, v *verifyState) (string, error) {
	stored := 0
	var problem string
	err := s.iterate(nsKey(kindAgg, ns, 0), nsUpper(kindAgg, ns), func(k, val []byte) error {
		stored++
		got, err := decodeAggregate(val)
		if err != nil {
			return err
		}
		suf := uint32(k[len(k)-3])<<16 | uint32(k[len(k)-2])<<8 | uint32(k[len(k)-1])
		want := v.aggs[suf]
		if want == nil {
			want = &Aggregate{}
		}
		if got != *want && problem == "" {
			problem = fmt.Sprintf("stored sums disagree with the entries (node %06x: %d items stored, %d held)", suf, got.Count, want.Count)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if problem != "" {
		return problem, nil
	}
	nonzero := 0
	for _, a := range v.aggs {
		if a.Count != 0 {
			nonzero++
		}
	}
	if stored < nonzero {
		return fmt.Sprintf("stored sums are missing for %d ranges that hold entries", nonzero-stored), nil
	}
	var index Aggregate
	err = s.iterate(nsKey(kindKey, ns, 0), nsUpper(kindKey, ns), func(k, _ []byte) error {
		key, author, err := parseKeyIndexKey(k[1+idLen:])
		if err != nil {
			return fmt.Errorf("vault %s: %w: %w", ns.Short(), err, ErrDamaged)
		}
		ih := itemHash(key, author)
		index.add(&ih)
		return nil
	})
	if err != nil {
		return "", err
	}
	if index != v.ihSum {
		return fmt.Sprintf("the key index lists %d entries, the vault holds %d values (or other ones)", index.Count, v.ihSum.Count), nil
	}
	tombs, err := s.tombIndexSum(ns)
	if err != nil {
		return "", err
	}
	if tombs != v.tombSum {
		return fmt.Sprintf("the tombstone index lists %d tombstones, the vault holds %d (or other ones)", tombs.Count, v.tombSum.Count), nil
	}
	refBytes, err := s.referencedBytes(ns)
	if err != nil {
		return "", err
	}
	if refBytes != v.bytes {
		return fmt.Sprintf("referenced bytes recorded as %d, the entries refer to %d", refBytes, v.bytes), nil
	}
	return "", nil
}

// tombIndexSum sums tombDigest over ns's tombstone index.
func (s *Store) tombIndexSum(ns NamespaceID) (Aggregate, error) {
	var sum Aggregate
	err := s.iterate(nsKey(kindTomb, ns, 0), nsUpper(kindTomb, ns), func(k, v []byte) error {
		author, key, err := parseTombKey(k[1+idLen:])
		if err != nil || len(v) != 8 {
			return fmt.Errorf("vault %s: tombstone index record: %w", ns.Short(), ErrDamaged)
		}
		ih := tombstoneItemHash(key, author)
		d := tombDigest(&ih, binary.BigEndian.Uint64(v))
		sum.add(&d)
		return nil
	})
	return sum, err
}

// iterate calls fn for every key in [lo, hi).
func (s *Store) iterate(lo, hi []byte, fn func(k, v []byte) error) (err error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, it.Close()) }()
	for ok := it.First(); ok; ok = it.Next() {
		if err := fn(it.Key(), it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}

// Rederive rewrites ns's derived state (aggregates, key and tombstone indexes, referenced
// bytes) from its entries, in one batch: the entries it holds are sound,
// only what was computed from them disagreed.
func (s *Store) Rederive(ns NamespaceID) error {
	unlock, err := s.lockVault(ns)
	if err != nil {
		return err
	}
	defer unlock()
	b := s.db.NewBatch()
	defer b.Close()
	for _, kind := range []byte{kindKey, kindAgg, kindTomb} {
		if err := b.DeleteRange(nsKey(kind, ns, 0), nsUpper(kind, ns), nil); err != nil {
			return err
		}
	}
	v := &verifyState{aggs: map[uint32]*Aggregate{}}
	err = s.scan(ns, Root, func(ih, fp *Hash, raw []byte) error {
		it, err := decodeStoredItem(raw)
		if err != nil {
			return err
		}
		e := &it.Entry.Entry
		v.add(ih, fp, e)
		var val []byte
		if e.IsTombstone() {
			val = binary.BigEndian.AppendUint64(nil, e.Timestamp)
		}
		return b.Set(indexKey(ns, e), val, nil)
	})
	if err != nil {
		return s.noteErr(fmt.Errorf("vault %s: rederive: %w", ns.Short(), err))
	}
	var buf [aggLen]byte
	for suf, a := range v.aggs {
		if err := b.Set(aggKey(ns, suf), a.appendTo(buf[:0]), nil); err != nil {
			return err
		}
	}
	if v.entries == 0 {
		err = b.Delete(nsKey(kindMeta, ns, 0), nil)
	} else {
		err = b.Set(nsKey(kindMeta, ns, 0), binary.BigEndian.AppendUint64(nil, v.bytes), nil)
	}
	if err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("vault %s: rederive: %w", ns.Short(), err)
	}
	s.systemGen.Add(1) // after the commit: see SystemVersion
	s.agentsMu.Lock()
	delete(s.agents, ns)
	s.agentsMu.Unlock()
	s.changed(ns)
	return nil
}

// DiskUsage is the size of the store's files.
func (s *Store) DiskUsage() uint64 { return s.db.Metrics().DiskSpaceUsage() }
