package ticket

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"
)

// Limits of the ticket encoding. A ticket that exceeds one is refused when it
// is built (New*, WithWriteSecret, Validate, MarshalText) and when it is parsed.
const (
	// MaxPeers is the largest number of peers in one ticket.
	MaxPeers = 16
	// MaxAddrsPerPeer is the largest number of multiaddrs of one peer.
	MaxAddrsPerPeer = 16
	// MaxPeerIDLen is the longest peer ID, in bytes. Peer IDs are identity
	// multihashes of keys of at most 42 bytes, or SHA-256 multihashes (34 bytes).
	MaxPeerIDLen = 64
	// MaxAddrLen is the longest multiaddr, in bytes.
	MaxAddrLen = 512
	// MaxEncodedLen is the longest binary form (payload and checksum), in bytes.
	MaxEncodedLen = 16 << 10
	// MaxTextLen is the longest text Parse looks at, whitespace included.
	MaxTextLen = 64 << 10

	// Version is the version byte that starts every ticket's binary form.
	Version = 1

	// BlobPrefix and DocPrefix start the text form of the two ticket kinds.
	BlobPrefix = "blob"
	DocPrefix  = "doc"

	// WriteSecretLen is the length of a namespace's Ed25519 seed.
	WriteSecretLen = ed25519.SeedSize
)

// WriteWarning is the text a CLI prints next to a ticket that carries a write
// secret (see DocTicket.WithWriteSecret).
const WriteWarning = "this ticket lets anyone who sees it write to the vault; share it only with your own devices"

// ErrInvalidTicket is wrapped by every error that refuses a ticket, whether
// parsed or being built. The messages never quote the ticket text, which may
// carry a write secret; they may name a peer ID or multiaddr.
var ErrInvalidTicket = errors.New("invalid ticket")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidTicket, fmt.Sprintf(format, args...))
}

// Format says how to read a blob.
type Format uint8

const (
	// FormatRaw is a single blob.
	FormatRaw Format = 0
	// FormatCollection is a blob that lists name → hash pairs; fetching it
	// means fetching the blobs it lists too.
	FormatCollection Format = 1
)

func (f Format) valid() bool { return f == FormatRaw || f == FormatCollection }

func (f Format) String() string {
	switch f {
	case FormatRaw:
		return "raw"
	case FormatCollection:
		return "collection"
	}
	return fmt.Sprintf("format(%d)", uint8(f))
}

// BlobTicket is everything needed to fetch a blob: its BLAKE3 hash, size and
// format, and one or more peers that serve it. A peer may come without
// addresses, for a device that can find it by other means.
type BlobTicket struct {
	Hash   [32]byte
	Size   uint64
	Format Format
	Peers  []peer.AddrInfo
}

// NewBlobTicket returns a validated ticket holding its own copy of peers.
// Entries of peers with the same ID are merged into one (addresses in order,
// repeats dropped), as p2p addresses of one peer given one by one would be.
func NewBlobTicket(hash [32]byte, size uint64, format Format, peers []peer.AddrInfo) (BlobTicket, error) {
	t := BlobTicket{Hash: hash, Size: size, Format: format, Peers: mergePeers(peers)}
	if err := t.Validate(); err != nil {
		return BlobTicket{}, err
	}
	return t, nil
}

// Validate reports whether t is within the limits of the encoding, so that its
// String form parses back to t. The error wraps ErrInvalidTicket.
func (t BlobTicket) Validate() error {
	if !t.Format.valid() {
		return invalid("unknown blob format %d (want 0 = raw or 1 = collection)", uint8(t.Format))
	}
	if len(t.Peers) == 0 {
		return invalid("a blob ticket needs at least one peer to fetch from")
	}
	if err := validatePeers(t.Peers); err != nil {
		return err
	}
	if n := len(t.appendBinary(nil)) + checksumLen; n > MaxEncodedLen {
		return invalid("ticket would be %d bytes, at most %d fit; use fewer peers or addresses", n, MaxEncodedLen)
	}
	return nil
}

// String returns the ticket's text form. It does not validate: a ticket built
// without NewBlobTicket that exceeds a limit gives a string Parse refuses; use
// MarshalText to get an error instead.
func (t BlobTicket) String() string { return seal(BlobPrefix, t.appendBinary(nil)) }

// MarshalText validates t and returns its text form.
func (t BlobTicket) MarshalText() ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return []byte(t.String()), nil
}

// UnmarshalText parses a text form, as ParseBlobTicket does.
func (t *BlobTicket) UnmarshalText(text []byte) error {
	parsed, err := ParseBlobTicket(string(text))
	if err != nil {
		return err
	}
	*t = parsed
	return nil
}

// Equal reports whether t and o name the same blob and the same peers in the
// same order. A nil and an empty list are equal.
func (t BlobTicket) Equal(o BlobTicket) bool {
	return t.Hash == o.Hash && t.Size == o.Size && t.Format == o.Format && peersEqual(t.Peers, o.Peers)
}

// DocTicket is a vault ticket: the namespace ID (the vault's Ed25519 public
// key, which is its read capability) and the seeds that host it. WriteSecret,
// the namespace key's 32-byte Ed25519 seed, is empty unless the ticket was
// made with WithWriteSecret.
type DocTicket struct {
	Namespace   [32]byte
	Peers       []peer.AddrInfo
	WriteSecret []byte
}

// NewDocTicket returns a validated read-only ticket holding its own copy of
// peers, merged by ID as NewBlobTicket does. Peers may be empty: the namespace
// alone is enough for a device that already knows seeds hosting the vault.
func NewDocTicket(ns [32]byte, peers []peer.AddrInfo) (DocTicket, error) {
	t := DocTicket{Namespace: ns, Peers: mergePeers(peers)}
	if err := t.Validate(); err != nil {
		return DocTicket{}, err
	}
	return t, nil
}

// WithWriteSecret returns a copy of t that also carries seed, the namespace
// key's Ed25519 seed (ed25519.PrivateKey.Seed()), together with WriteWarning,
// which the caller must show to whoever is about to share the ticket. The seed
// must belong to t.Namespace. t itself is not changed.
func (t DocTicket) WithWriteSecret(seed []byte) (DocTicket, string, error) {
	w := DocTicket{Namespace: t.Namespace, Peers: clonePeers(t.Peers), WriteSecret: bytes.Clone(seed)}
	if len(seed) == 0 {
		return DocTicket{}, "", invalid("empty write secret")
	}
	if err := w.Validate(); err != nil {
		return DocTicket{}, "", err
	}
	return w, WriteWarning, nil
}

// HasWrite reports whether the ticket carries a write secret.
func (t DocTicket) HasWrite() bool { return len(t.WriteSecret) > 0 }

// ReadOnly returns a copy of t without the write secret.
func (t DocTicket) ReadOnly() DocTicket {
	return DocTicket{Namespace: t.Namespace, Peers: clonePeers(t.Peers)}
}

// Validate reports whether t is within the limits of the encoding and its
// write secret, if any, belongs to its namespace. The error wraps
// ErrInvalidTicket.
func (t DocTicket) Validate() error {
	if err := validatePeers(t.Peers); err != nil {
		return err
	}
	if err := checkWriteSecret(t.Namespace, t.WriteSecret); err != nil {
		return err
	}
	if n := len(t.appendBinary(nil)) + checksumLen; n > MaxEncodedLen {
		return invalid("ticket would be %d bytes, at most %d fit; use fewer peers or addresses", n, MaxEncodedLen)
	}
	return nil
}

func checkWriteSecret(ns [32]byte, seed []byte) error {
	switch {
	case len(seed) == 0:
		return nil
	case len(seed) > WriteSecretLen:
		return invalid("write secret is %d bytes, longer than the %d of an Ed25519 seed", len(seed), WriteSecretLen)
	case len(seed) != WriteSecretLen:
		return invalid("write secret is %d bytes, want the %d of an Ed25519 seed", len(seed), WriteSecretLen)
	}
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	if !bytes.Equal(pub, ns[:]) {
		return invalid("the write secret is not the key of this vault's namespace")
	}
	return nil
}

// String returns the ticket's text form. If the ticket carries a write secret,
// so does the string. It does not validate: use MarshalText to get an error for
// a ticket beyond the limits.
func (t DocTicket) String() string { return seal(DocPrefix, t.appendBinary(nil)) }

// MarshalText validates t and returns its text form.
func (t DocTicket) MarshalText() ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return []byte(t.String()), nil
}

// UnmarshalText parses a text form, as ParseDocTicket does.
func (t *DocTicket) UnmarshalText(text []byte) error {
	parsed, err := ParseDocTicket(string(text))
	if err != nil {
		return err
	}
	*t = parsed
	return nil
}

// Equal reports whether t and o name the same namespace, peers (in the same
// order) and write secret.
func (t DocTicket) Equal(o DocTicket) bool {
	return t.Namespace == o.Namespace && bytes.Equal(t.WriteSecret, o.WriteSecret) && peersEqual(t.Peers, o.Peers)
}

// ParseBlobTicket parses the text form of a blob ticket. It ignores ASCII
// whitespace anywhere and letter case; every other damage is refused with an
// error wrapping ErrInvalidTicket.
func ParseBlobTicket(s string) (BlobTicket, error) {
	payload, err := open(BlobPrefix, s)
	if err != nil {
		return BlobTicket{}, err
	}
	return decodeBlob(payload)
}

// ParseDocTicket parses the text form of a vault ticket, as ParseBlobTicket
// does for blob tickets.
func ParseDocTicket(s string) (DocTicket, error) {
	payload, err := open(DocPrefix, s)
	if err != nil {
		return DocTicket{}, err
	}
	return decodeDoc(payload)
}

// Parse parses any kind of ticket, choosing by its prefix, and returns a
// BlobTicket, DocTicket, FleetTicket or InviteTicket (not a pointer).
func Parse(s string) (any, error) {
	if len(s) > MaxTextLen {
		return nil, tooLong(len(s))
	}
	n := normalize(s)
	switch {
	case hasPrefix(n, BlobPrefix):
		return ParseBlobTicket(n)
	case hasPrefix(n, DocPrefix):
		return ParseDocTicket(n)
	case hasPrefix(n, FleetPrefix):
		return ParseFleetTicket(n)
	case hasPrefix(n, InvitePrefix):
		return ParseInviteTicket(n)
	}
	return nil, unknownPrefix(n)
}

// validatePeers checks everything the decoder checks about peers except their
// number being nonzero, which only blob tickets require.
func validatePeers(peers []peer.AddrInfo) error {
	if len(peers) > MaxPeers {
		return invalid("too many peers: %d, at most %d fit in a ticket", len(peers), MaxPeers)
	}
	for i, p := range peers {
		if err := validPeerID([]byte(p.ID)); err != nil {
			return invalid("peer %d: %v", i+1, err)
		}
		if slices.IndexFunc(peers[:i], func(q peer.AddrInfo) bool { return q.ID == p.ID }) >= 0 {
			return invalid("peer %d: peer %s is listed twice", i+1, p.ID)
		}
		if len(p.Addrs) > MaxAddrsPerPeer {
			return invalid("peer %s: too many addresses: %d, at most %d fit in a ticket", p.ID, len(p.Addrs), MaxAddrsPerPeer)
		}
		for j, a := range p.Addrs {
			if err := ValidAddr(a.Bytes()); err != nil {
				return invalid("peer %s address %d: %v", p.ID, j+1, err)
			}
			if slices.IndexFunc(p.Addrs[:j], a.Equal) >= 0 {
				return invalid("peer %s: address %s is listed twice", p.ID, a)
			}
		}
	}
	return nil
}

// validPeerID accepts the peer IDs libp2p makes: an identity multihash of a
// public key it can decode, or a SHA-256 multihash. Its errors are details for
// invalid to wrap.
func validPeerID(b []byte) error {
	if len(b) == 0 {
		return errors.New("empty peer ID")
	}
	if len(b) > MaxPeerIDLen {
		return fmt.Errorf("peer ID is %d bytes, at most %d allowed", len(b), MaxPeerIDLen)
	}
	dm, err := mh.Decode(b)
	if err != nil {
		return fmt.Errorf("invalid peer ID: %v", err)
	}
	switch dm.Code {
	case mh.IDENTITY:
		if _, err := peer.ID(b).ExtractPublicKey(); err != nil {
			return fmt.Errorf("invalid peer ID: the key it holds does not decode: %v", err)
		}
	case mh.SHA2_256:
		if len(dm.Digest) != 32 {
			return fmt.Errorf("invalid peer ID: SHA-256 digest of %d bytes", len(dm.Digest))
		}
	default:
		return fmt.Errorf("invalid peer ID: multihash code 0x%x is neither identity nor sha2-256", dm.Code)
	}
	return nil
}

// ValidAddr checks a multiaddr's binary form (at most MaxAddrLen bytes) and
// that it is canonical, so that re-encoding a parsed ticket gives back the
// same bytes. Its errors are details for a caller's invalid-ticket error to
// wrap. The pairing ticket uses it too.
func ValidAddr(b []byte) error {
	if len(b) == 0 {
		return errors.New("empty multiaddr")
	}
	if len(b) > MaxAddrLen {
		return fmt.Errorf("multiaddr is %d bytes, at most %d allowed", len(b), MaxAddrLen)
	}
	a, err := ma.NewMultiaddrBytes(b)
	if err != nil {
		return fmt.Errorf("invalid multiaddr: %v", err)
	}
	if !bytes.Equal(a.Bytes(), b) {
		return errors.New("multiaddr is not in canonical form")
	}
	return nil
}

func clonePeers(peers []peer.AddrInfo) []peer.AddrInfo {
	if peers == nil {
		return nil
	}
	out := make([]peer.AddrInfo, len(peers))
	for i, p := range peers {
		out[i] = peer.AddrInfo{ID: p.ID, Addrs: slices.Clone(p.Addrs)}
	}
	return out
}

// mergePeers copies peers, merging entries with the same ID into the first
// one and dropping repeated addresses of a peer. A nil multiaddr is kept for
// validatePeers to refuse.
func mergePeers(peers []peer.AddrInfo) []peer.AddrInfo {
	if peers == nil {
		return nil
	}
	out := make([]peer.AddrInfo, 0, len(peers))
	for _, p := range peers {
		i := slices.IndexFunc(out, func(q peer.AddrInfo) bool { return q.ID == p.ID })
		if i < 0 {
			out = append(out, peer.AddrInfo{ID: p.ID})
			i = len(out) - 1
		}
		for _, a := range p.Addrs {
			if a == nil || !slices.ContainsFunc(out[i].Addrs, a.Equal) {
				out[i].Addrs = append(out[i].Addrs, a)
			}
		}
	}
	return out
}

func peersEqual(a, b []peer.AddrInfo) bool {
	return slices.EqualFunc(a, b, func(p, q peer.AddrInfo) bool {
		return p.ID == q.ID && slices.EqualFunc(p.Addrs, q.Addrs, ma.Multiaddr.Equal)
	})
}
