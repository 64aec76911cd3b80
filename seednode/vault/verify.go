package vault

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// Limits bound what one vault accepts. Zero values mean "use the default".
type Limits struct {
	// MaxEntries is the most (key, author) slots a vault may hold.
	MaxEntries uint64
	// MaxBytes is the most value bytes (sum of entry sizes) a vault may reference.
	MaxBytes uint64
	// MaxKeyLen is the longest key accepted (never above MaxKeyLen).
	MaxKeyLen int
	// MaxClockSkew refuses entries timestamped further than this in the future.
	MaxClockSkew time.Duration
}

// DefaultLimits are generous for a personal agent and still bound a vault.
var DefaultLimits = Limits{
	MaxEntries:   10_000_000,
	MaxBytes:     64 << 30,
	MaxKeyLen:    MaxKeyLen,
	MaxClockSkew: 10 * time.Minute,
}

func (l Limits) withDefaults() Limits {
	if l.MaxEntries == 0 {
		l.MaxEntries = DefaultLimits.MaxEntries
	}
	if l.MaxBytes == 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	if l.MaxKeyLen <= 0 || l.MaxKeyLen > MaxKeyLen {
		l.MaxKeyLen = MaxKeyLen
	}
	if l.MaxClockSkew <= 0 {
		l.MaxClockSkew = DefaultLimits.MaxClockSkew
	}
	return l
}

// Verifier checks entries received from peers. Capabilities are verified once
// and remembered; author and per-entry namespace signatures are verified in
// batches spread over all cores, because signature checks dominate the cost
// of a sync.
type Verifier struct {
	now func() time.Time

	mu   sync.Mutex
	caps map[capKey]struct{} // verified capabilities, bounded by maxCachedCaps
	// Decompressing a public key costs as much as half a verification; a
	// vault has few authors, so their expanded keys are kept.
	keys map[[idLen]byte]*voi.ExpandedPublicKey

	// Counters, for benchmarks and metrics.
	SignatureChecks atomic.Uint64
}

type capKey struct {
	ns       NamespaceID
	author   AuthorID
	notAfter uint64
	sig      [sigLen]byte
}

const maxCachedCaps = 1 << 14

// NewVerifier returns a Verifier; now may be nil (time.Now).
func NewVerifier(now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	return &Verifier{now: now, caps: make(map[capKey]struct{}), keys: make(map[[idLen]byte]*voi.ExpandedPublicKey)}
}

// checkStatic applies the checks that need no signature: key length, clock
// skew and capability expiry.
func (v *Verifier) checkStatic(se *SignedEntry, lim Limits) error {
	if err := se.Validate(); err != nil {
		return err
	}
	if len(se.Key) > lim.MaxKeyLen {
		return fmt.Errorf("%w: %d bytes, this vault allows %d", ErrKeyTooLong, len(se.Key), lim.MaxKeyLen)
	}
	limit := uint64(v.now().Add(lim.MaxClockSkew).UnixMicro())
	if se.Timestamp > limit {
		return fmt.Errorf("%w: %s is after now + %s (check the writer's clock)",
			ErrFutureEntry, time.UnixMicro(int64(se.Timestamp)).UTC().Format(time.RFC3339), lim.MaxClockSkew)
	}
	if se.Consent.Kind == ConsentCapability && se.Consent.NotAfter != 0 && se.Timestamp > se.Consent.NotAfter {
		return ErrCapExpired
	}
	return nil
}

func (v *Verifier) capVerified(se *SignedEntry) (capKey, bool) {
	k := capKey{se.Namespace, se.Author, se.Consent.NotAfter, se.Consent.Sig}
	v.mu.Lock()
	_, ok := v.caps[k]
	v.mu.Unlock()
	return k, ok
}

// expanded returns the cached expanded form of pub, or nil for a key that
// does not decode (its signatures then fail).
func (v *Verifier) expanded(pub []byte) *voi.ExpandedPublicKey {
	var k [idLen]byte
	copy(k[:], pub)
	v.mu.Lock()
	x, ok := v.keys[k]
	v.mu.Unlock()
	if ok {
		return x
	}
	x, err := voi.NewExpandedPublicKey(voi.PublicKey(pub))
	if err != nil {
		x = nil
	}
	v.mu.Lock()
	if len(v.keys) >= maxCachedKeys {
		clear(v.keys)
	}
	v.keys[k] = x
	v.mu.Unlock()
	return x
}

const maxCachedKeys = 4096

func (v *Verifier) rememberCap(k capKey) {
	v.mu.Lock()
	if len(v.caps) >= maxCachedCaps {
		clear(v.caps) // crude but bounded; a miss only costs one re-verification
	}
	v.caps[k] = struct{}{}
	v.mu.Unlock()
}

// Verify checks one entry completely.
func (v *Verifier) Verify(se *SignedEntry, lim Limits) error {
	errs := v.VerifyBatch([]SignedEntry{*se}, lim)
	return errs[0]
}

// VerifyBatch checks entries and returns one error (or nil) per entry.
func (v *Verifier) VerifyBatch(entries []SignedEntry, lim Limits) []error {
	lim = lim.withDefaults()
	errs := make([]error, len(entries))
	const chunk = 128
	workers := min(runtime.GOMAXPROCS(0), (len(entries)+chunk-1)/chunk)
	if workers <= 1 {
		v.verifyChunk(entries, errs, lim)
		return errs
	}
	var wg sync.WaitGroup
	var next atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				start := int(next.Add(chunk)) - chunk
				if start >= len(entries) {
					return
				}
				end := min(start+chunk, len(entries))
				v.verifyChunk(entries[start:end], errs[start:end], lim)
			}
		}()
	}
	wg.Wait()
	return errs
}

type sigCheck struct {
	idx  int
	pub  []byte
	msg  []byte
	sig  []byte
	what string
	cap  *capKey
}

func (v *Verifier) verifyChunk(entries []SignedEntry, errs []error, lim Limits) {
	checks := make([]sigCheck, 0, 2*len(entries))
	queuedCaps := make(map[capKey]int) // capability -> index of its check in this batch
	var dupCaps [][2]int               // (entry, check index) for entries sharing a queued capability check
	for i := range entries {
		se := &entries[i]
		if err := v.checkStatic(se, lim); err != nil {
			errs[i] = err
			continue
		}
		msg := se.signingBytes()
		checks = append(checks, sigCheck{idx: i, pub: se.Author[:], msg: msg, sig: se.AuthorSig[:], what: "author"})
		switch se.Consent.Kind {
		case ConsentNamespaceSig:
			checks = append(checks, sigCheck{idx: i, pub: se.Namespace[:], msg: msg, sig: se.Consent.Sig[:], what: "namespace"})
		case ConsentCapability:
			if k, ok := v.capVerified(se); !ok {
				if j, dup := queuedCaps[k]; dup {
					dupCaps = append(dupCaps, [2]int{i, j})
					continue
				}
				queuedCaps[k] = len(checks)
				checks = append(checks, sigCheck{idx: i, pub: se.Namespace[:],
					msg: CapabilitySigningBytes(se.Namespace, se.Author, se.Consent.NotAfter),
					sig: se.Consent.Sig[:], what: "write capability", cap: &k})
			}
		case ConsentAgent:
			// Checked by the store against the vault's agent document.
		default:
			errs[i] = fmt.Errorf("%w: unknown consent kind %d", ErrMalformed, se.Consent.Kind)
		}
	}
	if len(checks) == 0 {
		return
	}
	v.SignatureChecks.Add(uint64(len(checks)))
	bv := voi.NewBatchVerifierWithCapacity(len(checks))
	for _, c := range checks {
		if x := v.expanded(c.pub); x != nil {
			bv.AddExpanded(x, c.msg, c.sig)
		} else {
			bv.Add(voi.PublicKey(c.pub), c.msg, c.sig) // fails verification, as it should
		}
	}
	// When a batch fails, voi re-verifies each signature on its own, so
	// valid[j] is exact either way.
	_, valid := bv.Verify(nil)
	for j, c := range checks {
		if !valid[j] {
			if errs[c.idx] == nil {
				errs[c.idx] = fmt.Errorf("%w: %s signature does not verify", ErrBadSignature, c.what)
			}
			continue
		}
		if c.cap != nil && errs[c.idx] == nil {
			v.rememberCap(*c.cap)
		}
	}
	for _, d := range dupCaps {
		if !valid[d[1]] && errs[d[0]] == nil {
			errs[d[0]] = fmt.Errorf("%w: write capability signature does not verify", ErrBadSignature)
		}
	}
}
