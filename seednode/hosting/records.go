package hosting

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/seedfleet/seedfleet/internal/wire"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/ticket"
)

// Records are the self-service hosting records a pod keeps in its own Pebble:
// one per subject (agent or plain vault) that the fleet admitted and whose
// placement includes this pod. Nothing about them lives anywhere else, so a
// pod that restarts keeps them and a pod that joins gets them from the pods
// that held them (see the fleet exchange).
//
// Keyspace, under the prefix the caller gives (one byte, unused by others in
// the same database):
//
//	prefix 's' subject(32)            -> Record
//	prefix 'v' namespace(32) subject  -> (empty): who claims a vault
//	prefix 'u' invite ID(16)          -> uvarint: admissions the invite made
//
// A vault may be claimed by several subjects (an agent may name any vault);
// it stays hosted while any claim remains, and counts against each claimant.
type Records struct {
	db     *pebble.DB
	prefix byte

	mu     sync.Mutex // serialises read-modify-write of records and counters
	vaults int        // distinct claimed vaults, counted at open
}

// Record is what the fleet holds for one subject.
type Record struct {
	Kind     SubjectKind
	Subject  ed25519.PublicKey
	AgentDoc []byte // the newest signed agent document seen (agents)
	Admitted time.Time
	// LastRequest is the newest request time accepted: older requests are
	// refused even after the replay window.
	LastRequest time.Time
	Invite      [ticket.InviteIDLen]byte // the invite that admitted it; zero if none
	Vaults      []VaultRecord
}

// VaultRecord is one hosted vault of a subject.
type VaultRecord struct {
	Namespace    [32]byte
	QuotaBytes   uint64
	QuotaEntries uint64
	Admitted     time.Time
	// ExpiryNotice is when the subject was first told (through status) that
	// idle expiry will release the vault; zero while it is in use.
	ExpiryNotice time.Time
}

// ErrCorruptRecord means a stored record does not decode: the store is damaged.
var ErrCorruptRecord = errors.New("hosting: stored record is damaged")

const recordVersion = 1

// MaxRecordVaults bounds the vaults one record holds (the policy's per-agent
// limit is lower).
const MaxRecordVaults = 4096

// OpenRecords uses db's keys under prefix.
func OpenRecords(db *pebble.DB, prefix byte) (*Records, error) {
	r := &Records{db: db, prefix: prefix}
	n, err := r.countVaults()
	if err != nil {
		return nil, err
	}
	r.vaults = n
	return r, nil
}

func (r *Records) key(kind byte, parts ...[]byte) []byte {
	k := []byte{r.prefix, kind}
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func upper(p []byte) []byte {
	u := bytes.Clone(p)
	for i := len(u) - 1; i >= 0; i-- {
		if u[i]++; u[i] != 0 {
			return u[:i+1]
		}
	}
	return nil
}

func (r *Records) countVaults() (int, error) {
	lo := r.key('v')
	it, err := r.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: upper(lo)})
	if err != nil {
		return 0, err
	}
	n := 0
	var last []byte
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != 2+32+32 {
			it.Close()
			return 0, fmt.Errorf("%w: vault claim key of %d bytes", ErrCorruptRecord, len(k))
		}
		if !bytes.Equal(last, k[2:34]) {
			n++
			last = append(last[:0], k[2:34]...)
		}
	}
	return n, errors.Join(it.Error(), it.Close())
}

// Vaults is the number of distinct vaults claimed on this pod.
func (r *Records) Vaults() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.vaults
}

// Get returns the subject's record, or nil if there is none.
func (r *Records) Get(subject ed25519.PublicKey) (*Record, error) {
	v, closer, err := r.db.Get(r.key('s', subject))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	rec, err := decodeRecord(v)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(rec.Subject, subject) {
		return nil, fmt.Errorf("%w: the record under %x names subject %x", ErrCorruptRecord, subject[:6], rec.Subject[:min(6, len(rec.Subject))])
	}
	return rec, nil
}

// Update reads the subject's record (nil if none), lets change edit it (or
// return nil to delete it), and writes the result durably with the vault
// claims it implies, all while holding the store's lock: the read-modify-
// write of one subject, invite counters included, never interleaves with
// another. change may return an error to leave everything as it was.
func (r *Records) Update(subject ed25519.PublicKey, change func(*Record, *Batch) (*Record, error)) (*Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, err := r.Get(subject)
	if err != nil {
		return nil, err
	}
	var before *Record
	if old != nil {
		c := *old
		c.Vaults = slices.Clone(old.Vaults)
		before = &c
	}
	b := &Batch{r: r, b: r.db.NewBatch()}
	defer b.b.Close()
	next, err := change(old, b)
	if err != nil {
		return nil, err
	}
	added, removed, err := r.writeClaims(b.b, subject, before, next)
	if err != nil {
		return nil, err
	}
	if next == nil {
		if err := b.b.Delete(r.key('s', subject), nil); err != nil {
			return nil, err
		}
	} else {
		if !bytes.Equal(next.Subject, subject) {
			return nil, fmt.Errorf("hosting: a record for %x was changed to name %x", subject[:6], next.Subject[:6])
		}
		if err := b.b.Set(r.key('s', subject), next.encode(), nil); err != nil {
			return nil, err
		}
	}
	if err := b.b.Commit(pebble.Sync); err != nil {
		return nil, err
	}
	r.vaults += added - removed
	return next, nil
}

// writeClaims adds and deletes the claim keys that differ between before and
// after, and reports how many distinct vaults appeared and disappeared.
func (r *Records) writeClaims(b *pebble.Batch, subject ed25519.PublicKey, before, after *Record) (added, removed int, err error) {
	had, has := nsSet(before), nsSet(after)
	for ns := range has {
		if had[ns] {
			continue
		}
		claimed, err := r.claimed(ns)
		if err != nil {
			return 0, 0, err
		}
		if !claimed {
			added++
		}
		if err := b.Set(r.key('v', ns[:], subject), nil, nil); err != nil {
			return 0, 0, err
		}
	}
	for ns := range had {
		if has[ns] {
			continue
		}
		if err := b.Delete(r.key('v', ns[:], subject), nil); err != nil {
			return 0, 0, err
		}
		others, err := r.claimants(ns)
		if err != nil {
			return 0, 0, err
		}
		if len(others) == 1 { // only this subject's claim, now deleted
			removed++
		}
	}
	return added, removed, nil
}

func nsSet(rec *Record) map[[32]byte]bool {
	out := map[[32]byte]bool{}
	if rec != nil {
		for _, v := range rec.Vaults {
			out[v.Namespace] = true
		}
	}
	return out
}

func (r *Records) claimed(ns [32]byte) (bool, error) {
	c, err := r.claimants(ns)
	return len(c) > 0, err
}

// Claimants are the subjects that claim vault ns.
func (r *Records) claimants(ns [32]byte) ([]ed25519.PublicKey, error) {
	lo := r.key('v', ns[:])
	it, err := r.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: upper(lo)})
	if err != nil {
		return nil, err
	}
	var out []ed25519.PublicKey
	for it.First(); it.Valid(); it.Next() {
		out = append(out, ed25519.PublicKey(bytes.Clone(it.Key()[len(lo):])))
	}
	return out, errors.Join(it.Error(), it.Close())
}

// Claimants are the subjects whose records claim vault ns.
func (r *Records) Claimants(ns [32]byte) ([]ed25519.PublicKey, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.claimants(ns)
}

// Each calls fn for every record, in subject order, until fn returns false.
func (r *Records) Each(fn func(*Record) bool) error {
	lo := r.key('s')
	it, err := r.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: upper(lo)})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		rec, err := decodeRecord(it.Value())
		if err != nil {
			it.Close()
			return fmt.Errorf("record %x: %w", it.Key()[2:min(8, len(it.Key()))], err)
		}
		if !fn(rec) {
			break
		}
	}
	return errors.Join(it.Error(), it.Close())
}

// Batch lets an Update change invite counters atomically with the record.
type Batch struct {
	r *Records
	b *pebble.Batch
}

// UseInvite counts one admission by invite id, refusing it when uses are
// exhausted. The count is written with the record.
func (b *Batch) UseInvite(id [ticket.InviteIDLen]byte, uses int) error {
	used, err := b.r.inviteUses(id)
	if err != nil {
		return err
	}
	if used >= uint64(uses) {
		return fmt.Errorf("%w: the invite was used %d of %d times", errInviteUsed, used, uses)
	}
	return b.b.Set(b.r.key('u', id[:]), binary.AppendUvarint(nil, used+1), nil)
}

var errInviteUsed = errors.New("invite used up")

func (r *Records) inviteUses(id [ticket.InviteIDLen]byte) (uint64, error) {
	v, closer, err := r.db.Get(r.key('u', id[:]))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	n, l := binary.Uvarint(v)
	if l <= 0 || l != len(v) {
		return 0, fmt.Errorf("%w: invite counter", ErrCorruptRecord)
	}
	return n, nil
}

func (rec *Record) encode() []byte {
	b := []byte{recordVersion, byte(rec.Kind)}
	b = appendBytes(b, rec.Subject)
	b = appendBytes(b, rec.AgentDoc)
	b = binary.AppendUvarint(b, micros(rec.Admitted))
	b = binary.AppendUvarint(b, micros(rec.LastRequest))
	b = append(b, rec.Invite[:]...)
	b = binary.AppendUvarint(b, uint64(len(rec.Vaults)))
	for _, v := range rec.Vaults {
		b = append(b, v.Namespace[:]...)
		b = binary.AppendUvarint(b, v.QuotaBytes)
		b = binary.AppendUvarint(b, v.QuotaEntries)
		b = binary.AppendUvarint(b, micros(v.Admitted))
		b = binary.AppendUvarint(b, micros(v.ExpiryNotice))
	}
	return b
}

// decodeRecord reads a stored record; the disk is as hostile as a peer.
func decodeRecord(p []byte) (*Record, error) {
	d := &wire.Decoder{B: p, Sentinel: ErrCorruptRecord}
	if v := d.Byte("version"); d.Err == nil && v != recordVersion {
		return nil, fmt.Errorf("%w: record version %d, this seed reads %d", ErrCorruptRecord, v, recordVersion)
	}
	rec := &Record{Kind: SubjectKind(d.Byte("kind"))}
	rec.Subject = key(d, "subject")
	rec.AgentDoc = bytes.Clone(d.LenBytes("agent document", identity.MaxAgentDocumentSize))
	rec.Admitted = timeField(d, "admitted")
	rec.LastRequest = timeField(d, "last request")
	d.Fixed(rec.Invite[:], "invite")
	n := d.Uvarint("vault count")
	if n > MaxRecordVaults {
		return nil, fmt.Errorf("%w: %d vaults, at most %d", ErrCorruptRecord, n, MaxRecordVaults)
	}
	for i := uint64(0); i < n && d.Err == nil; i++ {
		var v VaultRecord
		d.Fixed(v.Namespace[:], "vault namespace")
		v.QuotaBytes = d.Uvarint("quota bytes")
		v.QuotaEntries = d.Uvarint("quota entries")
		v.Admitted = timeField(d, "vault admitted")
		v.ExpiryNotice = timeField(d, "expiry notice")
		rec.Vaults = append(rec.Vaults, v)
	}
	if err := d.Done("vaults"); err != nil {
		// key() and others wrap ErrMalformed for wire input; on disk it is damage.
		if !errors.Is(err, ErrCorruptRecord) {
			err = fmt.Errorf("%w: %w", ErrCorruptRecord, err)
		}
		return nil, err
	}
	if rec.Kind != SubjectAgent && rec.Kind != SubjectVault {
		return nil, fmt.Errorf("%w: subject kind %d", ErrCorruptRecord, rec.Kind)
	}
	return rec, nil
}

// Vault returns the record's entry for ns.
func (rec *Record) Vault(ns [32]byte) (VaultRecord, bool) {
	i := slices.IndexFunc(rec.Vaults, func(v VaultRecord) bool { return v.Namespace == ns })
	if i < 0 {
		return VaultRecord{}, false
	}
	return rec.Vaults[i], true
}

// QuotaBytes is the sum of the record's vault quotas in bytes.
func (rec *Record) QuotaBytes() uint64 {
	var sum uint64
	for _, v := range rec.Vaults {
		sum = addSat(sum, v.QuotaBytes)
	}
	return sum
}

func addSat(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}
