package hosting

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/seedfleet/seedfleet/internal/pebblecache"
	"github.com/seedfleet/seedfleet/internal/pebblelog"
	"github.com/seedfleet/seedfleet/internal/pebblesched"
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
//	prefix 'u' invite ID(16) subject  -> (empty): an admission the invite made
//
// A vault may be claimed by several subjects (an agent may name any vault);
// it stays hosted while any claim remains, and counts against each claimant.
//
// A subject that released its last vault keeps a record with no vaults (a
// tombstone, Released) for ReleasedLifetime after the release, so that the
// release wins over the older record a pod that was away still holds (see
// reconcile.go); PurgeReleased deletes it after that.
//
// Updates of different subjects run concurrently, so their durable commits
// share WAL syncs; the claim and invite counts they decide on are kept in
// memory (loaded at open) and reserved before the commit, so two concurrent
// updates never both take the last vault slot or invite use.
type Records struct {
	db     *pebble.DB
	prefix byte
	ownDB  bool                                                // opened by OpenRecordsDir: Close closes it
	notify []func(subject ed25519.PublicKey, old, rec *Record) // called after every committed update (OnChange)

	subjects [64]sync.Mutex // per-subject stripes, held across an update's commit

	mu      sync.Mutex
	claims  map[[32]byte]int32               // vault -> claims, committed or reserved
	invites map[[ticket.InviteIDLen]byte]int // invite -> uses, committed or reserved; loaded on first use
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

// OpenRecordsDir opens (or creates) a Pebble database of its own in dir for
// the records. A pod keeps them apart from its vault store, so a vault store
// rebuilt from replicas keeps the fleet's records.
func OpenRecordsDir(dir string, log *slog.Logger) (*Records, error) {
	opts := &pebble.Options{Logger: pebblelog.New(log, "hosting records "+dir)}
	// Most lookups are of subjects not held yet (every admission's): bloom
	// filters answer those without reading each level's blocks.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	opts.Experimental.CompactionScheduler = pebblesched.New()
	release := pebblecache.Attach(opts, 8<<20)
	db, err := pebble.Open(dir, opts)
	release()
	if err != nil {
		return nil, fmt.Errorf("hosting records %s: %w", dir, err)
	}
	r, err := OpenRecords(db, 'h')
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("hosting records %s: %w", dir, err)
	}
	r.ownDB = true
	return r, nil
}

// Close closes the database if OpenRecordsDir opened it.
func (r *Records) Close() error {
	if r.ownDB {
		return r.db.Close()
	}
	return nil
}

// OnChange adds fn to be called after every committed update with the
// subject, its record before (nil: none) and after (nil: deleted), from the
// updating goroutine, without locks held, in commit order for one subject
// (updates of a subject are serialised until every fn returns). Add it
// before updates start.
func (r *Records) OnChange(fn func(subject ed25519.PublicKey, old, rec *Record)) {
	r.notify = append(r.notify, fn)
}

// OpenRecords uses db's keys under prefix.
func OpenRecords(db *pebble.DB, prefix byte) (*Records, error) {
	r := &Records{db: db, prefix: prefix, claims: map[[32]byte]int32{}, invites: map[[ticket.InviteIDLen]byte]int{}}
	if err := r.loadClaims(); err != nil {
		return nil, err
	}
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

// loadClaims counts every vault's claims.
func (r *Records) loadClaims() error {
	lo := r.key('v')
	it, err := r.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: upper(lo)})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != 2+32+ed25519.PublicKeySize {
			it.Close()
			return fmt.Errorf("%w: vault claim key of %d bytes", ErrCorruptRecord, len(k))
		}
		r.claims[[32]byte(k[2:34])]++
	}
	return errors.Join(it.Error(), it.Close())
}

// Vaults is the number of distinct vaults claimed on this pod.
func (r *Records) Vaults() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.claims)
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

// ErrPodFull refuses an update that would make the pod hold more distinct
// vaults than UpdateLimits.MaxVaults.
var ErrPodFull = errors.New("hosting: the pod holds as many vaults as it may")

// Update reads the subject's record (nil if none), lets change edit it (or
// return nil to delete it), and writes the result durably with the vault
// claims it implies. Updates of one subject are serialised; change may
// return an error to leave everything as it was. With maxVaults > 0, an
// update that would make the pod hold more distinct vaults fails with
// ErrPodFull.
func (r *Records) Update(subject ed25519.PublicKey, maxVaults int, change func(*Record, *Batch) (*Record, error)) (*Record, error) {
	if len(subject) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("hosting: a subject is an Ed25519 public key, not %d bytes", len(subject))
	}
	stripe := &r.subjects[subject[0]%byte(len(r.subjects))]
	stripe.Lock()
	defer stripe.Unlock()
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
	b := &Batch{r: r, b: r.db.NewBatch(), subject: subject}
	defer b.b.Close()
	committed := false
	defer func() {
		if !committed {
			b.release()
		}
	}()
	next, err := change(old, b)
	if err != nil {
		return nil, err
	}
	if next != nil && !bytes.Equal(next.Subject, subject) {
		return nil, fmt.Errorf("hosting: a record for %x was changed to name %x", subject[:6], next.Subject[:6])
	}
	if err := r.reserveClaims(b, nsSet(before), nsSet(next), maxVaults); err != nil {
		return nil, err
	}
	if next == nil {
		err = b.b.Delete(r.key('s', subject), nil)
	} else {
		err = b.b.Set(r.key('s', subject), next.encode(), nil)
	}
	if err != nil {
		return nil, err
	}
	if err := b.b.Commit(pebble.Sync); err != nil {
		return nil, err
	}
	committed = true
	// The stripe stays held while the change is told, so that whoever
	// listens sees one subject's changes in commit order.
	for _, fn := range r.notify {
		fn(subject, before, next)
	}
	return next, nil
}

// Copy stores rec, a record another pod of the fleet holds, unless the one
// held here is at least as new (by LastRequest, then Admitted), or rec is a
// tombstone past its lifetime and nothing is held. It reports whether it
// stored it. A copy is never refused for the pod's vault limit: it is a
// subject the fleet already admitted, moving here as the fleet scales or
// repaired by the record exchange.
func (r *Records) Copy(rec *Record) (bool, error) {
	if rec == nil {
		return false, errors.New("hosting: Copy of no record")
	}
	stored := false
	_, err := r.Update(rec.Subject, 0, func(old *Record, _ *Batch) (*Record, error) {
		if old != nil && !newerRecord(rec, old) || old == nil && rec.purgeable(time.Now()) {
			return nil, errUnchanged
		}
		stored = true
		c := *rec
		c.Vaults = slices.Clone(rec.Vaults)
		return &c, nil
	})
	if errors.Is(err, errUnchanged) {
		return false, nil
	}
	return stored, err
}

// Drop deletes the subject's record (its vaults are no longer this pod's to
// host); it reports whether there was one.
func (r *Records) Drop(subject ed25519.PublicKey) (bool, error) {
	had := false
	_, err := r.Update(subject, 0, func(old *Record, _ *Batch) (*Record, error) {
		if old == nil {
			return nil, errUnchanged
		}
		had = true
		return nil, nil
	})
	if errors.Is(err, errUnchanged) {
		return false, nil
	}
	return had, err
}

var errUnchanged = errors.New("unchanged")

// ReleasedLifetime is how long a tombstone (the record of a subject that
// released every vault) is kept after the release: a pod that was away
// for less learns of the release from the others; one away for longer
// must not bring its old records back (start it on an empty records store).
const ReleasedLifetime = 30 * 24 * time.Hour

// Released reports whether the record is a tombstone: the subject released
// every vault, and the fleet hosts nothing for it.
func (rec *Record) Released() bool { return len(rec.Vaults) == 0 }

// purgeable reports whether rec is a tombstone past its lifetime at now:
// counted from the release (LastRequest), or from the idle expiry that
// emptied it (Admitted, see Admitter.ExpireIdle).
func (rec *Record) purgeable(now time.Time) bool {
	at := rec.LastRequest
	if rec.Admitted.After(at) {
		at = rec.Admitted
	}
	return rec.Released() && now.Sub(at) > ReleasedLifetime
}

// PurgeReleased deletes the tombstones past ReleasedLifetime at now and
// returns how many it deleted.
func (r *Records) PurgeReleased(now time.Time) (int, error) {
	var old []ed25519.PublicKey
	if err := r.Each(func(rec *Record) bool {
		if rec.purgeable(now) {
			old = append(old, rec.Subject)
		}
		return true
	}); err != nil {
		return 0, err
	}
	purged := 0
	for _, s := range old {
		_, err := r.Update(s, 0, func(rec *Record, _ *Batch) (*Record, error) {
			if rec == nil || !rec.purgeable(now) {
				return nil, errUnchanged
			}
			purged++
			return nil, nil
		})
		if err != nil && !errors.Is(err, errUnchanged) {
			return purged, err
		}
	}
	return purged, nil
}

// Version is what every home pod of the subject agrees on about its
// record: the time of the newest request applied (the subject signed it),
// as microseconds, big-endian, after the subject kind. Two pods that
// applied the same requests hold the same version, whatever their clocks
// wrote in the rest of the record (admission times) or what they decided
// alone (idle expiry); see reconcile.go.
func (rec *Record) Version() [32]byte {
	var v [32]byte
	v[0] = byte(rec.Kind)
	binary.BigEndian.PutUint64(v[1:9], micros(rec.LastRequest))
	return v
}

// newerRecord reports whether a is a later state of the subject than b.
func newerRecord(a, b *Record) bool {
	if !a.LastRequest.Equal(b.LastRequest) {
		return a.LastRequest.After(b.LastRequest)
	}
	return a.Admitted.After(b.Admitted) && !a.Admitted.Equal(b.Admitted)
}

// Encode is the record's stored form, which DecodeRecord reads back: what
// one pod sends another when the fleet scales.
func (rec *Record) Encode() []byte { return rec.encode() }

// DecodeRecord reads an encoded record; p is hostile (from disk or a peer).
func DecodeRecord(p []byte) (*Record, error) { return decodeRecord(p) }

// reserveClaims writes the claim keys that differ between the sets had and
// has into b, and counts them in memory at once (undone by b.release if the
// commit does not happen).
func (r *Records) reserveClaims(b *Batch, had, has map[[32]byte]bool, maxVaults int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	added := 0
	for ns := range has {
		if !had[ns] && r.claims[ns] == 0 {
			added++
		}
	}
	if added > 0 && maxVaults > 0 && len(r.claims)+added > maxVaults {
		return fmt.Errorf("%w (%d)", ErrPodFull, len(r.claims))
	}
	for ns := range has {
		if !had[ns] {
			if err := b.b.Set(r.key('v', ns[:], b.subject), nil, nil); err != nil {
				return err
			}
			r.claims[ns]++
			b.claimed = append(b.claimed, ns)
		}
	}
	for ns := range had {
		if !has[ns] {
			if err := b.b.Delete(r.key('v', ns[:], b.subject), nil); err != nil {
				return err
			}
			if r.claims[ns]--; r.claims[ns] <= 0 {
				delete(r.claims, ns)
			}
			b.unclaimed = append(b.unclaimed, ns)
		}
	}
	return nil
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

// Batch is one Update's pending writes, and the counts it reserved.
type Batch struct {
	r         *Records
	b         *pebble.Batch
	subject   ed25519.PublicKey
	claimed   [][32]byte
	unclaimed [][32]byte
	invite    *[ticket.InviteIDLen]byte
}

// UseInvite counts one admission by invite id, refusing it when its uses
// are spent. The use is written with the record.
func (b *Batch) UseInvite(id [ticket.InviteIDLen]byte, uses int) error {
	r := b.r
	r.mu.Lock()
	defer r.mu.Unlock()
	used, ok := r.invites[id]
	if !ok {
		n, err := r.countInviteUses(id, uses)
		if err != nil {
			return err
		}
		used = n
	}
	if used >= uses {
		r.invites[id] = used
		return fmt.Errorf("%w: the invite was used %d of %d times", errInviteUsed, used, uses)
	}
	if err := b.b.Set(r.key('u', id[:], b.subject), nil, nil); err != nil {
		return err
	}
	r.invites[id] = used + 1
	b.invite = &id
	return nil
}

var errInviteUsed = errors.New("invite used up")

// countInviteUses counts an invite's committed uses, up to limit.
func (r *Records) countInviteUses(id [ticket.InviteIDLen]byte, limit int) (int, error) {
	lo := r.key('u', id[:])
	it, err := r.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: upper(lo)})
	if err != nil {
		return 0, err
	}
	n := 0
	for it.First(); it.Valid() && n < limit; it.Next() {
		n++
	}
	return n, errors.Join(it.Error(), it.Close())
}

// release undoes the counts an uncommitted batch reserved.
func (b *Batch) release() {
	r := b.r
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ns := range b.claimed {
		if r.claims[ns]--; r.claims[ns] <= 0 {
			delete(r.claims, ns)
		}
	}
	for _, ns := range b.unclaimed {
		r.claims[ns]++
	}
	if b.invite != nil {
		r.invites[*b.invite]--
	}
}

func (rec *Record) encode() []byte {
	b := []byte{recordVersion, byte(rec.Kind)}
	b = wire.AppendLenBytes(b, rec.Subject)
	b = wire.AppendLenBytes(b, rec.AgentDoc)
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
