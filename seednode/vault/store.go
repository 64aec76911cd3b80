package vault

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"

	"github.com/seedfleet/seedfleet/internal/pebblecache"
	"github.com/seedfleet/seedfleet/internal/pebblelog"
	"github.com/seedfleet/seedfleet/internal/pebblesched"
	"github.com/seedfleet/seedfleet/seednode/identity"
)

// Pebble keyspaces. Every key of a vault starts with its kind byte and the
// 32-byte namespace ID, so a vault is a contiguous range of each keyspace.
const (
	kindEntry = 'e' // e | ns | itemHash -> fingerprint(32) | u16 len | signed entry | inline value
	kindKey   = 'k' // k | ns | escaped key | 0x00 0x01 | author -> (empty)
	kindAgg   = 'a' // a | ns | depth | first 2 prefix bytes -> Aggregate
	kindMeta  = 'm' // m | ns -> referenced bytes (u64)
	kindTomb  = 't' // t | ns | author | key -> timestamp (u64): tombstones (see tombstone.go)
)

// ErrClosed is returned by a Store after Close.
var ErrClosed = errors.New("vault store closed")

// StoreOptions configure Open.
type StoreOptions struct {
	// CacheSize is Pebble's block cache for table blocks (the memtables
	// come on top); default 32 MiB.
	CacheSize int64
	// LimitsFor returns the limits of a vault; nil means DefaultLimits.
	LimitsFor func(NamespaceID) Limits
	// NoSync makes every commit skip fsync (benchmark fixtures only).
	NoSync bool
	// IDFile holds the store's ID outside Pebble (default: the store
	// directory's path plus ".id").
	IDFile string
	// Rebuild, when the store on disk is not the one IDFile names, moves it
	// aside and starts an empty store whose vaults are all rebuilt
	// (PendingRebuild). Without it Open refuses with ErrStoreMismatch.
	Rebuild bool
	// OnCorruption is called (on a goroutine of its own) when Pebble or the
	// store's decoders find damaged data: the caller verifies its vaults and
	// quarantines those whose reads fail.
	OnCorruption func()
	// Logger receives Pebble's errors and the store's repairs (default slog.Default()).
	Logger *slog.Logger
	// OnChange, if set, is called after every commit that may have changed
	// a vault's entry set (an insert, a purge, a drop, a rederive), with the
	// vault's lock held: it must return quickly and not use the store.
	OnChange func(NamespaceID)
}

// Store keeps vault entries in one Pebble database.
type Store struct {
	db     *pebble.DB
	dir    string
	opts   StoreOptions
	log    *slog.Logger
	logger *pebblelog.Logger
	feed   feed
	locks  [64]sync.Mutex // writers of one vault are serialised; vaults proceed in parallel
	// life is read-locked by every operation on db and write-locked by
	// Close, so nothing touches Pebble after it closed.
	life   sync.RWMutex
	closed atomic.Bool

	agentsMu sync.Mutex
	agents   agentCache

	// damage holds the damaged vaults (copy on write: read on every insert).
	damage      atomic.Pointer[map[NamespaceID]Damage]
	damageMu    sync.Mutex // serializes writers of damage
	needsVerify bool
	corruptions atomic.Uint64

	// systemGen counts the changes that may have touched some vault's
	// system entries (see SystemVersion).
	systemGen atomic.Uint64
}

// acquire starts an operation on the database; release it when done.
func (s *Store) acquire() (release func(), err error) {
	s.life.RLock()
	if s.closed.Load() {
		s.life.RUnlock()
		return nil, ErrClosed
	}
	return s.life.RUnlock, nil
}

// lockVault acquires the store and ns's writers' lock (writers of one vault
// are serialised; vaults proceed in parallel); unlock releases both.
func (s *Store) lockVault(ns NamespaceID) (unlock func(), err error) {
	release, err := s.acquire()
	if err != nil {
		return nil, err
	}
	mu := &s.locks[ns[0]%64]
	mu.Lock()
	return func() { mu.Unlock(); release() }, nil
}

// Open opens (creating if needed) the store in dir, checking it is the
// store its data directory held (see StoreOptions.IDFile and Rebuild). A
// write-ahead log damaged before its tail is moved aside (next to dir) and
// the store opens from its tables: what the log held is lost, so every vault
// is rebuilt (PendingRebuild).
func Open(dir string, opts StoreOptions) (*Store, error) {
	if opts.CacheSize <= 0 {
		opts.CacheSize = 32 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Store{dir: dir, opts: opts, log: opts.Logger, logger: pebblelog.New(opts.Logger, "vaults")}
	empty := map[NamespaceID]Damage{}
	s.damage.Store(&empty)
	var rebuild string
	err := s.openPebble()
	if err != nil && pebble.IsCorruptionError(err) && strings.Contains(err.Error(), "WAL") {
		aside, merr := moveWALsAside(dir)
		if merr != nil {
			return nil, fmt.Errorf("open vault store %s: %w (and moving its write-ahead log aside failed: %w)", dir, err, merr)
		}
		s.log.Error("the vault store's write-ahead log is damaged before its end: moved it aside; "+
			"the entries it held are lost here and every vault will be rebuilt from its other replicas",
			"store", dir, "movedTo", aside, "err", err.Error())
		rebuild = "the store's write-ahead log was damaged: entries written shortly before " + time.Now().UTC().Format(time.RFC3339) + " may be lost"
		err = s.openPebble()
	}
	if err != nil {
		return nil, fmt.Errorf("open vault store %s: %w", dir, err)
	}
	if err := s.checkIdentity(); err != nil {
		s.db.Close()
		if !errors.Is(err, ErrStoreMismatch) || !opts.Rebuild {
			if errors.Is(err, ErrStoreMismatch) {
				err = fmt.Errorf("%w; to rebuild this seed's vaults from their other replicas, start it with --rebuild-store "+
					"(the store is moved aside, not deleted)", err)
			}
			return nil, fmt.Errorf("open vault store %s: %w", dir, err)
		}
		aside, merr := moveAside(dir)
		if merr != nil {
			return nil, fmt.Errorf("open vault store %s: %w", dir, merr)
		}
		s.log.Warn("rebuilding the vault store: moved the store on disk aside", "movedTo", aside, "why", err.Error())
		if err := os.Remove(s.idFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("open vault store %s: %w", dir, err)
		}
		if err := s.openPebble(); err != nil {
			return nil, fmt.Errorf("open vault store %s: %w", dir, err)
		}
		if err := s.checkIdentity(); err != nil {
			s.db.Close()
			return nil, fmt.Errorf("open vault store %s: %w", dir, err)
		}
		rebuild = "the store was rebuilt (--rebuild-store): " + err.Error()
	}
	if rebuild != "" {
		if err := s.setPendingRebuild(rebuild); err != nil {
			s.db.Close()
			return nil, fmt.Errorf("open vault store %s: %w", dir, err)
		}
	}
	if err := s.loadDamage(); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("open vault store %s: %w", dir, err)
	}
	return s, nil
}

// memTableSize is the store's memtable size (two at most, one filling and
// one flushing), on top of which the block cache holds CacheSize of table
// blocks (see internal/pebblecache).
const memTableSize = 32 << 20

func (s *Store) openPebble() error {
	po := &pebble.Options{Logger: s.logger, MemTableSize: memTableSize, MemTableStopWritesThreshold: 2,
		// Sync offsets in WAL chunks let Pebble tell a torn last write from
		// a log damaged before its end; virtual tables allow Excise.
		FormatMajorVersion: pebble.FormatNewest,
		EventListener: &pebble.EventListener{
			DataCorruption: func(info pebble.DataCorruptionInfo) {
				s.log.Error("damaged file in the vault store", "file", info.Path, "err", info.Details.Error())
				s.corrupted()
			},
		}}
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		// Signatures, hashes and (encrypted) values do not compress.
		po.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.NoCompression }
	}
	po.Experimental.CompactionScheduler = pebblesched.New()
	release := pebblecache.Attach(po, s.opts.CacheSize)
	defer release()
	po.EnsureDefaults()
	db, err := pebble.Open(s.dir, po)
	if err != nil {
		return err
	}
	s.db = db
	return nil
}

// Close flushes and closes the database. It is safe to call more than once.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.feed.closeAll()
	// Wait for every operation in flight (a batch half-way through its
	// commit, an iterator) before closing.
	s.life.Lock()
	defer s.life.Unlock()
	// Flushed, the next start replays no log and the tables hold everything.
	return errors.Join(s.db.Flush(), s.db.Close())
}

func (s *Store) limits(ns NamespaceID) Limits {
	if s.opts.LimitsFor == nil {
		return DefaultLimits
	}
	return s.opts.LimitsFor(ns).withDefaults()
}

func nsKey(kind byte, ns NamespaceID, extra int) []byte {
	k := make([]byte, 1+idLen, 1+idLen+extra)
	k[0] = kind
	copy(k[1:], ns[:])
	return k
}

// nsUpper is the first key after every key of kind for ns.
func nsUpper(kind byte, ns NamespaceID) []byte {
	k := nsKey(kind, ns, 0)
	for i := len(k) - 1; i >= 1; i-- {
		k[i]++
		if k[i] != 0 {
			return k
		}
	}
	return []byte{kind + 1}
}

func entryKey(ns NamespaceID, ih *Hash) []byte {
	return append(nsKey(kindEntry, ns, idLen), ih[:]...)
}

func aggKey(ns NamespaceID, suffix uint32) []byte {
	return append(nsKey(kindAgg, ns, 3), byte(suffix>>16), byte(suffix>>8), byte(suffix))
}

// escapeKey makes entry keys order-preserving and prefix-preserving inside a
// composite index key: 0x00 becomes 0x00 0xff and the key ends with 0x00 0x01.
func escapeKey(b []byte, key []byte) []byte {
	for _, c := range key {
		if c == 0 {
			b = append(b, 0, 0xff)
		} else {
			b = append(b, c)
		}
	}
	return b
}

func keyIndexKey(ns NamespaceID, key []byte, author AuthorID) []byte {
	k := escapeKey(nsKey(kindKey, ns, len(key)+2+idLen), key)
	k = append(k, 0, 1)
	return append(k, author[:]...)
}

// parseKeyIndexKey splits the part after the namespace into key and author.
func parseKeyIndexKey(b []byte) ([]byte, AuthorID, error) {
	var author AuthorID
	key := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			key = append(key, b[i])
			continue
		}
		if i+1 >= len(b) {
			break
		}
		switch b[i+1] {
		case 0xff:
			key = append(key, 0)
			i++
		case 1:
			if len(b)-(i+2) != idLen {
				return nil, author, errors.New("key index: bad author length")
			}
			copy(author[:], b[i+2:])
			return key, author, nil
		default:
			return nil, author, errors.New("key index: bad escape")
		}
	}
	return nil, author, errors.New("key index: unterminated key")
}

// Item is an entry as it travels and is stored: the signed entry and, for
// values up to MaxInlineValue, the value itself (checked against the entry's
// hash before it is stored). Larger values are blobs, fetched separately.
type Item struct {
	Entry   SignedEntry
	Content []byte
}

// InsertResult says what happened to a batch of items.
type InsertResult struct {
	Stored int // new or newer versions written
	// Stale: already had this version or a newer one, or a tombstone
	// deletes it.
	Stale   int
	Refused int // refused by the vault's limits
	// Deleted counts stored entries removed by the tombstones stored.
	Deleted int
	// FirstRefusal explains the first refused item.
	FirstRefusal error
	// Purged counts stored entries deleted because a new agent document no
	// longer allows them (their author was revoked before writing them).
	Purged int
	// StoredItems are the items that were written, in order.
	StoredItems []Item
}

func (r *InsertResult) refuse(err error) {
	r.Refused++
	if r.FirstRefusal == nil {
		r.FirstRefusal = err
	}
}

// Origin tags the source of an insert so a live session does not echo
// entries back to the peer they came from. Zero is "local".
type Origin uint64

var nextOrigin atomic.Uint64

// NewOrigin returns a process-unique origin tag.
func NewOrigin() Origin { return Origin(nextOrigin.Add(1)) }

// Insert stores verified items of one vault atomically: the newest version
// per (key, author) wins, limits are enforced, and the range aggregates are
// updated in the same batch. Items must already have passed a Verifier (or
// be signed locally). With durable set the batch is fsynced before Insert
// returns.
func (s *Store) Insert(items []Item, origin Origin, durable bool) (InsertResult, error) {
	if len(items) == 0 {
		return InsertResult{}, nil
	}
	ns := items[0].Entry.Namespace
	unlock, err := s.lockVault(ns)
	if err != nil {
		return InsertResult{}, err
	}
	defer unlock()
	if s.quarantined(ns) {
		return InsertResult{}, fmt.Errorf("vault %s: %w", ns.Short(), ErrQuarantined)
	}
	tx, err := s.beginInsert(ns)
	if err != nil {
		return InsertResult{}, err
	}
	defer tx.close()
	order := docFirst(items)
	for k := range items {
		i := k
		if order != nil {
			i = order[k]
		}
		if err := tx.add(&items[i]); err != nil {
			return tx.res, err
		}
	}
	if tx.res.Stored == 0 {
		return tx.res, nil
	}
	if err := tx.commit(durable); err != nil {
		return tx.res, err
	}
	if tx.docChanged {
		s.setAgentDoc(ns, tx.doc)
	}
	for _, it := range tx.res.StoredItems { // after the commit: see SystemVersion
		if IsSystemKey(it.Entry.Key) || it.Entry.IsTombstone() {
			s.systemGen.Add(1)
			break
		}
	}
	s.feed.publish(ns, origin, tx.res.StoredItems)
	s.changed(ns)
	return tx.res, nil
}

// SystemVersion changes whenever a vault's system entries (its agent
// document, the envelopes of its content keys) may have changed: an insert
// that stored one or a tombstone, a repair, a dropped vault. It moves after
// such a change is committed: a cache of what the system entries give (a
// device's keyring) that reads the version before reading the entries is
// never stale unnoticed.
func (s *Store) SystemVersion() uint64 { return s.systemGen.Load() }

// insertTx is one Insert under way: its batch, and the vault's counters and
// agent document as the batch changes them.
type insertTx struct {
	s          *Store
	ns         NamespaceID
	lim        Limits
	entries    uint64 // (key, author) slots held
	refBytes   uint64 // value bytes referenced
	doc        *identity.AgentDocument
	docChanged bool
	batch      *pebble.Batch
	deltas     map[uint32]*aggDelta // aggregate changes, by suffix
	// pending holds the entries written by this batch, by item hash, and
	// nil for those it removed.
	pending  map[Hash]*SignedEntry
	tombs    []Hash           // item hashes of the tombstones written by this batch
	tombIter *pebble.Iterator // over the stored tombstone index, opened when first needed
	// noStoredTombs: tombIter found the stored tombstone index empty.
	noStoredTombs bool
	val           []byte // encoding buffer, reused
	res           InsertResult
}

func (tx *insertTx) close() {
	if tx.tombIter != nil {
		_ = tx.tombIter.Close() // a read-only iterator: nothing to lose
	}
	_ = tx.batch.Close()
}

// beginInsert reads the vault's counters and agent document and opens the
// batch. The caller holds the vault's lock and closes the batch.
func (s *Store) beginInsert(ns NamespaceID) (*insertTx, error) {
	count, err := s.aggregate(ns, Root)
	if err != nil {
		return nil, err
	}
	refBytes, err := s.referencedBytes(ns)
	if err != nil {
		return nil, err
	}
	doc, err := s.agentDocLocked(ns, true)
	if err != nil {
		return nil, err
	}
	return &insertTx{
		s: s, ns: ns, lim: s.limits(ns),
		entries: count.Count, refBytes: refBytes, doc: doc,
		batch:   s.db.NewBatch(),
		deltas:  make(map[uint32]*aggDelta),
		pending: make(map[Hash]*SignedEntry),
	}, nil
}

// add stages one item: a refused or stale item is counted in tx.res and
// skipped; an error (an item of another vault, content that does not match
// its entry, a storage failure) fails the whole Insert.
func (tx *insertTx) add(it *Item) error {
	e := &it.Entry
	if e.Namespace != tx.ns {
		return fmt.Errorf("insert: items from vaults %s and %s in one batch", tx.ns.Short(), e.Namespace.Short())
	}
	if len(e.Key) > tx.lim.MaxKeyLen {
		tx.res.refuse(keyErr(e, fmt.Errorf("%w: key of %d bytes, this vault allows %d", ErrKeyTooLong, len(e.Key), tx.lim.MaxKeyLen)))
		return nil
	}
	if it.Content != nil && !contentMatches(it) {
		return fmt.Errorf("insert %q: %w", e.Key, ErrContentInvalid)
	}
	ih := e.ItemHash()
	old, err := tx.current(&ih)
	if err != nil {
		return err
	}
	if stale, err := tx.superseded(&e.Entry, old); err != nil || stale {
		return err
	}
	doc, err := tx.authorize(it)
	if err != nil {
		tx.res.refuse(keyErr(e, err))
		return nil
	}
	if e.IsTombstone() {
		// What it deletes goes first: a vault at its entry limit takes the
		// tombstone in the place of what it removed.
		if err := tx.removeCovered(&e.Entry); err != nil {
			return err
		}
		if old, err = tx.current(&ih); err != nil {
			return err
		}
	}
	if err := tx.reserve(e, old); err != nil {
		tx.res.refuse(keyErr(e, err))
		return nil
	}
	if doc != nil {
		// Only a document that is stored governs the entries after it.
		tx.doc, tx.docChanged = doc, true
	}
	return tx.stage(it, &ih, old)
}

// contentMatches reports whether an inline value is the one its entry
// names: within the inline limit, of the entry's size and hash.
func contentMatches(it *Item) bool {
	e := &it.Entry
	n := uint64(len(it.Content))
	return n <= InlineLimit(e.Key) && n == e.Size && HashOf(it.Content) == e.Hash
}

// current returns the stored version of an item (this batch's, if it
// wrote or removed one), or nil.
func (tx *insertTx) current(ih *Hash) (*SignedEntry, error) {
	if cur, ok := tx.pending[*ih]; ok {
		return cur, nil
	}
	return tx.s.getByItemHash(tx.ns, ih)
}

// superseded counts e as stale if the vault holds a newer version of it
// (old) or a tombstone that deletes it.
func (tx *insertTx) superseded(e *Entry, old *SignedEntry) (bool, error) {
	stale := old != nil && !e.Newer(&old.Entry)
	if !stale {
		var err error
		if stale, err = tx.covered(e); err != nil {
			return false, err
		}
	}
	if stale {
		tx.res.Stale++
	}
	return stale, nil
}

// authorize checks an entry against the agent document: an agent document
// must be a valid successor of the current one, and is returned to become
// the document the entries after it are checked against once it is
// admitted; any other entry's author must be allowed by the current one.
func (tx *insertTx) authorize(it *Item) (*identity.AgentDocument, error) {
	if !bytes.Equal(it.Entry.Key, AgentDocKey) || it.Entry.IsTombstone() {
		return nil, authorize(&it.Entry, tx.doc)
	}
	return checkAgentDocItem(it, tx.doc)
}

// reserve checks that the vault's limits hold the entry (replacing old, if
// any) and counts it.
func (tx *insertTx) reserve(e, old *SignedEntry) error {
	entries, refBytes := tx.entries, tx.refBytes+e.Size
	if old == nil {
		entries++
	} else {
		refBytes -= old.Size
	}
	if entries > tx.lim.MaxEntries {
		return fmt.Errorf("%w: the vault holds its limit of %d entries", ErrQuota, tx.lim.MaxEntries)
	}
	if refBytes > tx.lim.MaxBytes || refBytes < e.Size { // second test: overflow
		return fmt.Errorf("%w: %d referenced bytes would exceed the vault's limit of %d", ErrQuota, refBytes, tx.lim.MaxBytes)
	}
	tx.entries, tx.refBytes = entries, refBytes
	return nil
}

// stage writes the item to the batch, with its index record (a value's,
// if it is new; a tombstone's, which holds its timestamp, always), and
// records its aggregate change.
func (tx *insertTx) stage(it *Item, ih *Hash, old *SignedEntry) error {
	e := &it.Entry
	fp := e.Fingerprint()
	tx.val = appendStoredItem(tx.val[:0], &fp, it)
	if err := tx.batch.Set(entryKey(tx.ns, ih), tx.val, nil); err != nil {
		return err
	}
	if err := tx.stageIndex(&e.Entry, ih, old == nil); err != nil {
		return err
	}
	var oldFP *Hash
	if old != nil {
		f := old.Fingerprint()
		oldFP = &f
	}
	addDelta(tx.deltas, ih, &fp, oldFP)
	tx.pending[*ih] = e
	tx.res.Stored++
	tx.res.StoredItems = append(tx.res.StoredItems, *it)
	return nil
}

func (tx *insertTx) stageIndex(e *Entry, ih *Hash, isNew bool) error {
	if e.IsTombstone() {
		tx.tombs = append(tx.tombs, *ih)
		return tx.batch.Set(indexKey(tx.ns, e), binary.BigEndian.AppendUint64(nil, e.Timestamp), nil)
	}
	if !isNew {
		return nil
	}
	return tx.batch.Set(indexKey(tx.ns, e), nil, nil)
}

// commit applies a new agent document to the entries already stored,
// writes the aggregates and the referenced bytes, and commits the batch.
func (tx *insertTx) commit(durable bool) error {
	if tx.docChanged {
		var err error
		if tx.res.Purged, err = tx.purgeUnauthorized(); err != nil {
			return fmt.Errorf("vault %s: apply agent document: %w", tx.ns.Short(), err)
		}
	}
	if err := tx.writeAggregates(); err != nil {
		return err
	}
	if err := tx.batch.Set(nsKey(kindMeta, tx.ns, 0), binary.BigEndian.AppendUint64(nil, tx.refBytes), nil); err != nil {
		return err
	}
	wo := pebble.NoSync
	if durable && !tx.s.opts.NoSync {
		wo = pebble.Sync
	}
	if err := tx.batch.Commit(wo); err != nil {
		return fmt.Errorf("vault %s: commit: %w", tx.ns.Short(), err)
	}
	return nil
}

// writeAggregates adds the batch's changes to the stored range aggregates.
func (tx *insertTx) writeAggregates() error {
	for suf, dl := range tx.deltas {
		k := aggKey(tx.ns, suf)
		cur, err := tx.s.getAggregate(k)
		if err != nil {
			return err
		}
		cur.merge(&dl.plus)
		dl.minus.negate()
		cur.merge(&dl.minus)
		var buf [aggLen]byte
		if err := tx.batch.Set(k, cur.appendTo(buf[:0]), nil); err != nil {
			return err
		}
	}
	return nil
}

// docFirst orders a batch so that agent documents come first: the entries
// after them are checked against the newest document. It returns nil (keep
// the order) for the usual batch, which holds no document.
func docFirst(items []Item) []int {
	if !slices.ContainsFunc(items, func(it Item) bool { return bytes.Equal(it.Entry.Key, AgentDocKey) }) {
		return nil
	}
	order := make([]int, 0, len(items))
	for i := range items {
		if bytes.Equal(items[i].Entry.Key, AgentDocKey) {
			order = append(order, i)
		}
	}
	for i := range items {
		if !bytes.Equal(items[i].Entry.Key, AgentDocKey) {
			order = append(order, i)
		}
	}
	return order
}

type aggDelta struct{ plus, minus Aggregate }

// negate turns a into its additive inverse (sum and count), so merging it subtracts.
func (a *Aggregate) negate() {
	var c uint64 = 1
	for i := 0; i < 4; i++ {
		a.Sum[i], c = addCarry(^a.Sum[i], c)
	}
	a.Count = -a.Count
}

func addCarry(x, c uint64) (uint64, uint64) {
	s := x + c
	if s < x {
		return s, 1
	}
	return s, 0
}

// Sync makes every earlier commit durable (one WAL fsync).
func (s *Store) Sync() error {
	release, err := s.acquire()
	if err != nil {
		return err
	}
	defer release()
	if s.opts.NoSync {
		return nil
	}
	return s.db.LogData(nil, pebble.Sync)
}

func (s *Store) get(key []byte, fn func([]byte) error) (bool, error) {
	return s.getFrom(s.db, key, fn)
}

// getFrom is get through r: the store, or a snapshot of it.
func (s *Store) getFrom(r pebble.Reader, key []byte, fn func([]byte) error) (bool, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, s.noteErr(err)
	}
	defer closer.Close()
	return true, s.noteErr(fn(v))
}

func (s *Store) getAggregate(k []byte) (Aggregate, error) {
	var a Aggregate
	_, err := s.get(k, func(v []byte) (err error) { a, err = decodeAggregate(v); return })
	return a, err
}

func (s *Store) referencedBytes(ns NamespaceID) (uint64, error) {
	var n uint64
	_, err := s.get(nsKey(kindMeta, ns, 0), func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("vault meta: bad length: %w", ErrDamaged)
		}
		n = binary.BigEndian.Uint64(v)
		return nil
	})
	return n, err
}

func (s *Store) getByItemHash(ns NamespaceID, ih *Hash) (*SignedEntry, error) {
	it, err := s.getItem(ns, ih)
	if it == nil {
		return nil, err
	}
	return &it.Entry, err
}

func (s *Store) getItem(ns NamespaceID, ih *Hash) (*Item, error) {
	return s.getItemFrom(s.db, ns, ih)
}

func (s *Store) getItemFrom(r pebble.Reader, ns NamespaceID, ih *Hash) (*Item, error) {
	var it *Item
	_, err := s.getFrom(r, entryKey(ns, ih), func(v []byte) error {
		if len(v) < idLen {
			return fmt.Errorf("stored entry too short: %w", ErrDamaged)
		}
		dec, err := decodeStoredItem(v[idLen:])
		it = &dec
		return err
	})
	return it, err
}

// appendStoredItem lays out an entry record: fingerprint, signed entry, value.
func appendStoredItem(b []byte, fp *Hash, it *Item) []byte {
	b = append(b, fp[:]...)
	mark := len(b)
	b = append(b, 0, 0) // length of the signed entry, filled in below
	b = it.Entry.AppendBinary(b)
	binary.BigEndian.PutUint16(b[mark:], uint16(len(b)-mark-2))
	return append(b, it.Content...)
}

// decodeStoredItem decodes a record after its fingerprint.
func decodeStoredItem(raw []byte) (Item, error) {
	var it Item
	if len(raw) < 2 || len(raw)-2 < int(binary.BigEndian.Uint16(raw)) {
		return it, fmt.Errorf("stored entry record is truncated: %w", ErrDamaged)
	}
	n := int(binary.BigEndian.Uint16(raw))
	var err error
	if it.Entry, err = UnmarshalSignedEntry(raw[2 : 2+n]); err != nil {
		return it, fmt.Errorf("stored entry does not decode: %w: %w", err, ErrDamaged)
	}
	if rest := raw[2+n:]; len(rest) > 0 {
		it.Content = bytes.Clone(rest)
	}
	return it, nil
}

// Stats describes a vault in the store.
type Stats struct {
	Entries uint64
	Bytes   uint64
	// Fingerprint identifies the vault's whole entry set: two replicas with
	// equal fingerprints hold the same entries (every replica computes it the
	// same way, from the set alone).
	Fingerprint Hash
}

// Stats returns entry count, referenced bytes and set fingerprint of a vault.
func (s *Store) Stats(ns NamespaceID) (Stats, error) {
	release, err := s.acquire()
	if err != nil {
		return Stats{}, err
	}
	defer release()
	a, err := s.aggregate(ns, Root)
	if err != nil {
		return Stats{}, err
	}
	b, err := s.referencedBytes(ns)
	return Stats{Entries: a.Count, Bytes: b, Fingerprint: a.setFingerprint()}, err
}

// Get returns every author's latest entry for key, with inline values.
func (s *Store) Get(ns NamespaceID, key []byte) ([]Item, error) {
	return s.listIndex(ns, keyPrefix(ns, key), nil, 0)
}

// keyPrefix is the index prefix of every author's slot of key.
func keyPrefix(ns NamespaceID, key []byte) []byte {
	return append(escapeKey(nsKey(kindKey, ns, len(key)+2), key), 0, 1)
}

// List returns the entries whose key starts with prefix, ordered by (key,
// author), at most limit of them (0 = no limit).
func (s *Store) List(ns NamespaceID, prefix []byte, limit int) ([]Item, error) {
	lo := escapeKey(nsKey(kindKey, ns, len(prefix)), prefix)
	hi := prefixUpper(lo)
	if len(prefix) == 0 {
		hi = nsUpper(kindKey, ns)
	}
	return s.listIndex(ns, lo, hi, limit)
}

func prefixUpper(p []byte) []byte {
	u := append([]byte(nil), p...)
	for i := len(u) - 1; i >= 0; i-- {
		u[i]++
		if u[i] != 0 {
			return u[:i+1]
		}
	}
	return nil
}

// listIndex lists index keys in [lo, hi) (hi nil: every key starting with lo).
func (s *Store) listIndex(ns NamespaceID, lo, hi []byte, limit int) (out []Item, err error) {
	release, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer release()
	return s.listIndexAcquired(ns, lo, hi, limit)
}

func (s *Store) listIndexAcquired(ns NamespaceID, lo, hi []byte, limit int) (out []Item, err error) {
	if hi == nil {
		hi = prefixUpper(lo)
	}
	// Index and entries are read from one snapshot: an entry deleted (by a
	// tombstone) after the index was read is not taken for damage.
	snap := s.db.NewSnapshot()
	defer snap.Close()
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := it.Close(); err == nil {
			err = cerr
		}
	}()
	for ok := it.First(); ok; ok = it.Next() {
		key, author, err := parseKeyIndexKey(it.Key()[1+idLen:])
		if err != nil {
			return nil, err
		}
		ih := itemHash(key, author)
		it, err := s.getItemFrom(snap, ns, &ih)
		if err != nil {
			return nil, err
		}
		if it == nil {
			return nil, s.noteErr(fmt.Errorf("vault %s: key index names a missing entry: %w", ns.Short(), ErrDamaged))
		}
		out = append(out, *it)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, it.Error()
}

// nodeAggregate reads a stored aggregate or, below aggDepth, sums the node.
func (s *Store) nodeAggregate(ns NamespaceID, n Node) (Aggregate, error) {
	release, err := s.acquire()
	if err != nil {
		return Aggregate{}, err
	}
	defer release()
	return s.aggregate(ns, n)
}

func (s *Store) aggregate(ns NamespaceID, n Node) (Aggregate, error) {
	if n.Depth <= aggDepth {
		return s.getAggregate(aggKey(ns, n.aggSuffix()))
	}
	var a Aggregate
	err := s.scan(ns, n, func(_ *Hash, fp *Hash, _ []byte) error {
		a.add(fp)
		return nil
	})
	return a, err
}

// childAggregates returns the aggregates of n's 16 children.
func (s *Store) childAggregates(ns NamespaceID, n Node) (out [fanout]Aggregate, err error) {
	release, err := s.acquire()
	if err != nil {
		return out, err
	}
	defer release()
	if int(n.Depth) < aggDepth {
		first := n.Child(0).aggSuffix()
		step := uint32(1) << (4 * (aggDepth - 1 - int(n.Depth)))
		it, err := s.db.NewIter(&pebble.IterOptions{
			LowerBound: aggKey(ns, first),
			UpperBound: aggKey(ns, first+fanout*step),
		})
		if err != nil {
			return out, err
		}
		defer func() {
			if cerr := it.Close(); err == nil {
				err = cerr
			}
		}()
		// Seek to each child rather than step with Next: a vault written
		// often has many superseded versions of its aggregates in the
		// memtable, which Next walks through one by one (it was a tenth of
		// a seed's CPU with devices syncing a large shared vault), while a
		// seek lands on the newest version.
		for c := uint32(0); c < fanout; c++ {
			if !it.SeekGE(aggKey(ns, first+c*step)) {
				break
			}
			k := it.Key()
			suf := uint32(k[len(k)-3])<<16 | uint32(k[len(k)-2])<<8 | uint32(k[len(k)-1])
			c = (suf - first) / step // the next child present
			if out[c], err = decodeAggregate(it.Value()); err != nil {
				return out, err
			}
		}
		return out, it.Error()
	}
	err = s.scan(ns, n, func(ih *Hash, fp *Hash, _ []byte) error {
		out[nibble(ih, int(n.Depth))].add(fp)
		return nil
	})
	return out, err
}

// scanNode calls fn for every item of n in item-hash order. raw is the stored
// record after the fingerprint (decodeStoredItem) and is only valid during
// the call.
func (s *Store) scanNode(ns NamespaceID, n Node, fn func(ih *Hash, fp *Hash, raw []byte) error) error {
	release, err := s.acquire()
	if err != nil {
		return err
	}
	defer release()
	return s.scan(ns, n, fn)
}

func (s *Store) scan(ns NamespaceID, n Node, fn func(ih *Hash, fp *Hash, raw []byte) error) (err error) {
	lo, hi := n.prefixBounds()
	opts := &pebble.IterOptions{LowerBound: append(nsKey(kindEntry, ns, len(lo)), lo...)}
	if hi != nil {
		opts.UpperBound = append(nsKey(kindEntry, ns, len(hi)), hi...)
	} else {
		opts.UpperBound = nsUpper(kindEntry, ns)
	}
	it, err := s.db.NewIter(opts)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := it.Close(); err == nil {
			err = cerr
		}
	}()
	var ih, fp Hash
	for ok := it.First(); ok; ok = it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != 1+2*idLen || len(v) < idLen {
			return s.noteErr(fmt.Errorf("vault %s: malformed stored entry: %w", ns.Short(), ErrDamaged))
		}
		copy(ih[:], k[1+idLen:])
		copy(fp[:], v[:idLen])
		if err := fn(&ih, &fp, v[idLen:]); err != nil {
			return s.noteErr(err)
		}
	}
	return s.noteErr(it.Error())
}

// Checkpoint writes a consistent copy of the store to dir (benchmark fixtures, backups).
func (s *Store) Checkpoint(dir string) error {
	release, err := s.acquire()
	if err != nil {
		return err
	}
	defer release()
	return s.db.Checkpoint(dir)
}

// ForEach calls fn for every entry of ns (in item-hash order). The entry is
// only valid during the call.
func (s *Store) ForEach(ns NamespaceID, fn func(e *SignedEntry) error) error {
	return s.scanNode(ns, Root, func(_ *Hash, _ *Hash, raw []byte) error {
		it, err := decodeStoredItem(raw)
		if err != nil {
			return err
		}
		return fn(&it.Entry)
	})
}

// Namespaces lists the vaults that have entries in the store.
func (s *Store) Namespaces() (out []NamespaceID, err error) {
	release, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer release()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindMeta}, UpperBound: []byte{kindMeta + 1}})
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := it.Close(); err == nil {
			err = cerr
		}
	}()
	for ok := it.First(); ok; ok = it.Next() {
		if k := it.Key(); len(k) == 1+idLen {
			out = append(out, NamespaceID(k[1:]))
		}
	}
	return out, it.Error()
}

// changed calls StoreOptions.OnChange.
func (s *Store) changed(ns NamespaceID) {
	if s.opts.OnChange != nil {
		s.opts.OnChange(ns)
	}
}

// DropVault deletes every entry, index and aggregate of ns.
func (s *Store) DropVault(ns NamespaceID) error {
	unlock, err := s.lockVault(ns)
	if err != nil {
		return err
	}
	defer unlock()
	b := s.db.NewBatch()
	defer b.Close()
	for _, kind := range []byte{kindEntry, kindKey, kindAgg, kindTomb} {
		if err := b.DeleteRange(nsKey(kind, ns, 0), nsUpper(kind, ns), nil); err != nil {
			return err
		}
	}
	if err := b.Delete(nsKey(kindMeta, ns, 0), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	s.systemGen.Add(1) // after the commit: see SystemVersion
	s.agentsMu.Lock()
	delete(s.agents, ns)
	s.agentsMu.Unlock()
	s.changed(ns)
	if _, ok := s.Damage(ns); ok {
		return s.setDamage(ns, nil) // nothing of it is left to repair
	}
	return nil
}
