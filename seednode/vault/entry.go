package vault

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/zeebo/blake3"
)

// Sizes and limits of the entry encoding. They are part of the wire format:
// changing them needs a new encoding version.
const (
	// MaxKeyLen is the longest entry key, in bytes.
	MaxKeyLen = 1024
	// EncodingVersion is the version byte that starts every canonical entry
	// that writes a value.
	EncodingVersion = 1
	// TombstoneVersion is the version byte that starts every canonical
	// tombstone (see Entry.IsTombstone): the same layout, so the signature,
	// the fingerprint and the stored form tell a deletion from a write.
	TombstoneVersion = 2

	idLen  = 32
	sigLen = ed25519.SignatureSize
	// canonical header: version, namespace, author, hash, size, timestamp, key length.
	entryHeaderLen = 1 + idLen + idLen + idLen + 8 + 8 + 2
)

// Domain separators keep a signature over one kind of object from being valid
// for another.
var (
	entryDomain = []byte("seedfleet/vault/entry/v1\x00")
	capDomain   = []byte("seedfleet/vault/write-capability/v1\x00")
)

// Sentinel errors that callers test with errors.Is.
var (
	ErrMalformed      = errors.New("malformed entry")
	ErrBadSignature   = errors.New("invalid signature")
	ErrKeyTooLong     = fmt.Errorf("entry key longer than %d bytes", MaxKeyLen)
	ErrFutureEntry    = errors.New("entry timestamp is too far in the future")
	ErrQuota          = errors.New("vault quota exceeded")
	ErrCapExpired     = errors.New("write capability expired before the entry's timestamp")
	ErrNotHosted      = errors.New("vault not hosted")
	ErrContentInvalid = errors.New("inline content does not match the entry")
)

// NamespaceID is a vault's Ed25519 public key; it is the read capability.
type NamespaceID [idLen]byte

// AuthorID is the Ed25519 public key of an entry's author (a device or app).
type AuthorID [idLen]byte

// Hash is a BLAKE3-256 digest.
type Hash [idLen]byte

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func encodeID(b []byte) string { return strings.ToLower(idEncoding.EncodeToString(b)) }

func decodeID(kind, s string) ([idLen]byte, error) {
	var out [idLen]byte
	raw, err := idEncoding.DecodeString(strings.ToUpper(strings.TrimSpace(s)))
	if err != nil || len(raw) != idLen {
		return out, fmt.Errorf("%s %q: want 52 base32 characters (a-z, 2-7)", kind, s)
	}
	copy(out[:], raw)
	return out, nil
}

// String is the 52-character lowercase base32 form used on command lines and in configs.
func (n NamespaceID) String() string { return encodeID(n[:]) }

// Short is a prefix for logs and progress lines.
func (n NamespaceID) Short() string { return n.String()[:10] }

// PublicKey returns the namespace's Ed25519 public key.
func (n NamespaceID) PublicKey() ed25519.PublicKey { return ed25519.PublicKey(n[:]) }

// ParseNamespaceID parses the String form.
func ParseNamespaceID(s string) (NamespaceID, error) {
	b, err := decodeID("namespace ID", s)
	return NamespaceID(b), err
}

func (a AuthorID) String() string               { return encodeID(a[:]) }
func (a AuthorID) Short() string                { return a.String()[:10] }
func (a AuthorID) PublicKey() ed25519.PublicKey { return ed25519.PublicKey(a[:]) }
func (h Hash) String() string                   { return encodeID(h[:]) }
func (h Hash) Short() string                    { return h.String()[:10] }
func HashOf(data []byte) Hash                   { return Hash(blake3.Sum256(data)) }
func ParseAuthorID(s string) (AuthorID, error) {
	b, err := decodeID("author ID", s)
	return AuthorID(b), err
}
func ParseHash(s string) (Hash, error) { b, err := decodeID("hash", s); return Hash(b), err }

// Entry is the signed unit of a vault: the latest value of Key written by
// Author, referring to its value by BLAKE3 hash and size.
type Entry struct {
	Namespace NamespaceID
	Key       []byte
	Author    AuthorID
	Hash      Hash
	Size      uint64
	Timestamp uint64 // microseconds since the Unix epoch
}

// ConsentKind says how the namespace key consented to an entry.
type ConsentKind uint8

const (
	// ConsentNamespaceSig: the namespace key signed this entry itself.
	ConsentNamespaceSig ConsentKind = 1
	// ConsentCapability: the namespace key signed, once, a write capability
	// for the author; it is verified once per process and cached, which halves
	// the signature checks of a sync.
	ConsentCapability ConsentKind = 2
	// ConsentAgent: the vault is bound to an agent (its agent document is
	// stored under AgentDocKey with the namespace's signature) and the author
	// is one of the agent's listed, unrevoked keys. It carries no signature of
	// its own: the store checks it against the agent document it holds.
	ConsentAgent ConsentKind = 3
)

// Consent proves that the namespace key allows the entry.
type Consent struct {
	Kind ConsentKind
	// NotAfter (µs, 0 = never) bounds the entry timestamps a capability covers.
	NotAfter uint64
	Sig      [sigLen]byte
}

// SignedEntry is an entry with its author signature and namespace consent.
type SignedEntry struct {
	Entry
	AuthorSig [sigLen]byte
	Consent   Consent
}

// IsTombstone reports whether e deletes instead of writing: a tombstone has
// the zero hash (which no value hashes to) and size 0, and removes its
// author's older entries under its key (see the package documentation).
func (e *Entry) IsTombstone() bool { return e.Size == 0 && e.Hash == (Hash{}) }

// version is the first byte of e's canonical encoding.
func (e *Entry) version() byte {
	if e.IsTombstone() {
		return TombstoneVersion
	}
	return EncodingVersion
}

// AppendCanonical appends the canonical, versioned encoding of e: the exact
// bytes that are signed and that identify the entry's version in a set.
func (e *Entry) AppendCanonical(b []byte) []byte {
	b = append(b, e.version())
	b = append(b, e.Namespace[:]...)
	b = append(b, e.Author[:]...)
	b = append(b, e.Hash[:]...)
	b = binary.BigEndian.AppendUint64(b, e.Size)
	b = binary.BigEndian.AppendUint64(b, e.Timestamp)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Key)))
	return append(b, e.Key...)
}

func (e *Entry) signingBytes() []byte {
	b := make([]byte, 0, len(entryDomain)+entryHeaderLen+len(e.Key))
	return e.AppendCanonical(append(b, entryDomain...))
}

// ItemHash places the entry in the reconciliation tree: one slot per
// (key, author) for values and another for tombstones, so a newer version
// replaces an older one in place, and a value written after a deletion of
// its key leaves the tombstone (and what it covers) in place.
func (e *Entry) ItemHash() Hash {
	if e.IsTombstone() {
		return tombstoneItemHash(e.Key, e.Author)
	}
	return itemHash(e.Key, e.Author)
}

func itemHash(key []byte, author AuthorID) Hash { return slotHash(key, author, nil) }

// tombstoneItemHash hashes one byte more than itemHash: the length prefix
// makes the two inputs differ for every key.
func tombstoneItemHash(key []byte, author AuthorID) Hash {
	return slotHash(key, author, []byte{TombstoneVersion})
}

func slotHash(key []byte, author AuthorID, suffix []byte) Hash {
	h := blake3.New()
	var l [2]byte
	binary.BigEndian.PutUint16(l[:], uint16(len(key)))
	_, _ = h.Write(l[:])
	_, _ = h.Write(key)
	_, _ = h.Write(author[:])
	_, _ = h.Write(suffix)
	var out Hash
	h.Sum(out[:0])
	return out
}

// Covers reports whether e is a tombstone that deletes o: the same author,
// e's key a prefix of o's (or equal), and o strictly older. An entry of the
// tombstone's own timestamp stays, on every replica alike.
func (e *Entry) Covers(o *Entry) bool {
	return e.IsTombstone() && e.Author == o.Author && o.Timestamp < e.Timestamp && bytes.HasPrefix(o.Key, e.Key)
}

// Fingerprint identifies this exact version of the entry in a set; range
// fingerprints are sums of these.
func (e *Entry) Fingerprint() Hash {
	var buf [entryHeaderLen + MaxKeyLen]byte
	return Hash(blake3.Sum256(e.AppendCanonical(buf[:0])))
}

// Newer reports whether e should replace old for the same (key, author):
// the later timestamp wins, ties go to the larger hash so every replica picks
// the same version.
func (e *Entry) Newer(old *Entry) bool {
	if e.Timestamp != old.Timestamp {
		return e.Timestamp > old.Timestamp
	}
	return bytes.Compare(e.Hash[:], old.Hash[:]) > 0
}

// Validate checks the structural limits that do not depend on a vault's policy.
func (e *Entry) Validate() error {
	if len(e.Key) == 0 {
		return fmt.Errorf("%w: empty key", ErrMalformed)
	}
	if len(e.Key) > MaxKeyLen {
		return fmt.Errorf("%w (%d bytes)", ErrKeyTooLong, len(e.Key))
	}
	return nil
}

// CapabilitySigningBytes is what a namespace key signs to let author write.
func CapabilitySigningBytes(ns NamespaceID, author AuthorID, notAfter uint64) []byte {
	b := make([]byte, 0, len(capDomain)+2*idLen+8)
	b = append(b, capDomain...)
	b = append(b, ns[:]...)
	b = append(b, author[:]...)
	return binary.BigEndian.AppendUint64(b, notAfter)
}

// NewCapability lets author write into the namespace nsKey owns, for entries
// timestamped up to notAfter (0 = no limit).
func NewCapability(nsKey ed25519.PrivateKey, author AuthorID, notAfter uint64) Consent {
	ns := NamespaceID(nsKey.Public().(ed25519.PublicKey))
	c := Consent{Kind: ConsentCapability, NotAfter: notAfter}
	copy(c.Sig[:], ed25519.Sign(nsKey, CapabilitySigningBytes(ns, author, notAfter)))
	return c
}

// AgentConsent is the consent of an entry in a vault bound to an agent.
func AgentConsent() Consent { return Consent{Kind: ConsentAgent} }

// Sign signs e with the author key and attaches the namespace consent. With a
// capability or agent consent the namespace key is not needed (pass nil).
func Sign(e Entry, authorKey ed25519.PrivateKey, consent Consent, nsKey ed25519.PrivateKey) (SignedEntry, error) {
	if err := e.Validate(); err != nil {
		return SignedEntry{}, err
	}
	if !bytes.Equal(authorKey.Public().(ed25519.PublicKey), e.Author[:]) {
		return SignedEntry{}, errors.New("sign entry: author key does not match the entry's author")
	}
	se := SignedEntry{Entry: e, Consent: consent}
	msg := e.signingBytes()
	copy(se.AuthorSig[:], ed25519.Sign(authorKey, msg))
	if consent.Kind == ConsentNamespaceSig {
		if nsKey == nil || !bytes.Equal(nsKey.Public().(ed25519.PublicKey), e.Namespace[:]) {
			return SignedEntry{}, errors.New("sign entry: namespace signature needs the namespace key")
		}
		copy(se.Consent.Sig[:], ed25519.Sign(nsKey, msg))
	}
	return se, nil
}

// MarshalBinary is the stored form: canonical entry, author signature,
// consent kind and its fields.
func (se *SignedEntry) MarshalBinary() ([]byte, error) {
	return se.AppendBinary(nil), nil
}

// AppendBinary appends the stored form of se.
func (se *SignedEntry) AppendBinary(b []byte) []byte {
	b = se.AppendCanonical(b)
	b = append(b, se.AuthorSig[:]...)
	b = append(b, byte(se.Consent.Kind))
	switch se.Consent.Kind {
	case ConsentAgent:
		return b
	case ConsentCapability:
		b = binary.BigEndian.AppendUint64(b, se.Consent.NotAfter)
	}
	return append(b, se.Consent.Sig[:]...)
}

// UnmarshalSignedEntry decodes the stored form strictly: unknown versions or
// consent kinds, oversized keys and trailing bytes are errors.
func UnmarshalSignedEntry(b []byte) (SignedEntry, error) {
	var se SignedEntry
	n, err := decodeCanonical(b, &se.Entry)
	if err != nil {
		return se, err
	}
	b = b[n:]
	if len(b) < sigLen+1 {
		return se, fmt.Errorf("%w: truncated signatures", ErrMalformed)
	}
	copy(se.AuthorSig[:], b)
	se.Consent.Kind = ConsentKind(b[sigLen])
	b = b[sigLen+1:]
	switch se.Consent.Kind {
	case ConsentNamespaceSig:
	case ConsentAgent:
		if len(b) != 0 {
			return se, fmt.Errorf("%w: %d bytes after an agent consent", ErrMalformed, len(b))
		}
		return se, nil
	case ConsentCapability:
		if len(b) < 8 {
			return se, fmt.Errorf("%w: truncated capability", ErrMalformed)
		}
		se.Consent.NotAfter = binary.BigEndian.Uint64(b)
		b = b[8:]
	default:
		return se, fmt.Errorf("%w: unknown consent kind %d", ErrMalformed, se.Consent.Kind)
	}
	if len(b) != sigLen {
		return se, fmt.Errorf("%w: consent signature is %d bytes, want %d", ErrMalformed, len(b), sigLen)
	}
	copy(se.Consent.Sig[:], b)
	return se, nil
}

func decodeCanonical(b []byte, e *Entry) (int, error) {
	if len(b) < entryHeaderLen {
		return 0, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrMalformed, len(b), entryHeaderLen)
	}
	if b[0] != EncodingVersion && b[0] != TombstoneVersion {
		return 0, fmt.Errorf("%w: encoding version %d, this build reads %d and %d", ErrMalformed, b[0], EncodingVersion, TombstoneVersion)
	}
	p := 1
	copy(e.Namespace[:], b[p:])
	p += idLen
	copy(e.Author[:], b[p:])
	p += idLen
	copy(e.Hash[:], b[p:])
	p += idLen
	e.Size = binary.BigEndian.Uint64(b[p:])
	p += 8
	e.Timestamp = binary.BigEndian.Uint64(b[p:])
	p += 8
	kl := int(binary.BigEndian.Uint16(b[p:]))
	p += 2
	if kl > MaxKeyLen {
		return 0, fmt.Errorf("%w (%d bytes)", ErrKeyTooLong, kl)
	}
	if kl == 0 {
		return 0, fmt.Errorf("%w: empty key", ErrMalformed)
	}
	if len(b) < p+kl {
		return 0, fmt.Errorf("%w: truncated key", ErrMalformed)
	}
	e.Key = append([]byte(nil), b[p:p+kl]...)
	if e.version() != b[0] {
		// Either a tombstone that claims a value or a value that claims
		// the tombstone's zero hash: one form per meaning.
		return 0, fmt.Errorf("%w: version %d with hash %s and size %d", ErrMalformed, b[0], e.Hash.Short(), e.Size)
	}
	return p + kl, nil
}
