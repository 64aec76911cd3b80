package rendezvous

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/seedfleet/seedfleet/internal/wire"
	"github.com/seedfleet/seedfleet/seednode/identity"
)

// Limits of a record. They are part of the wire format: changing them needs
// a new encoding version.
const (
	// RecordVersion is the first byte of every encoded record.
	RecordVersion = 1
	// MaxAgentDIDLen is the longest AgentDID, in bytes (an Ed25519 did:key
	// has 56).
	MaxAgentDIDLen = 128
	// MaxContextLen is the longest Context, in bytes.
	MaxContextLen = 64
	// MaxAddrs is how many addresses a record may carry.
	MaxAddrs = 16
	// MaxAddrLen is the longest address, in bytes of its binary form.
	MaxAddrLen = 256

	sigLen = ed25519.SignatureSize
	keyLen = ed25519.PublicKeySize
	// maxRecordLen bounds an encoded record: version, DID, context, key,
	// timestamp, addresses, signature (each length a uvarint of 1-2 bytes).
	maxRecordLen = 1 + 2 + MaxAgentDIDLen + 1 + MaxContextLen + keyLen + 8 +
		1 + MaxAddrs*(2+MaxAddrLen) + sigLen
)

// recordDomain separates record signatures from every other signature a
// device key makes.
var recordDomain = []byte("seedfleet/rendezvous/record/v1\x00")

// Errors that callers test with errors.Is.
var (
	// ErrInvalidRecord marks a record that breaks the format's rules (bad
	// DID, context, key or addresses; a truncated or non-canonical
	// encoding).
	ErrInvalidRecord = errors.New("invalid rendezvous record")
	// ErrBadSignature marks a record whose signature does not verify
	// under its device key.
	ErrBadSignature = errors.New("rendezvous record signature does not verify")
)

// Record says: device Device, operational context Context of agent
// AgentDID, was reachable at Addrs at Timestamp. It is signed by the device
// key, so anyone can check it without trusting the seed that served it.
type Record struct {
	// AgentDID is the agent's bare did:key (no fragment).
	AgentDID string
	// Context is the operational context: the fragment that names the
	// device's key in the agent document (did:key:z6Mk…#laptop). 1..64
	// characters of [A-Za-z0-9._-].
	Context string
	// Device is the device's Ed25519 public key; its libp2p peer ID
	// derives from it.
	Device ed25519.PublicKey
	// Addrs are where the device can be dialled (direct or circuit
	// addresses), at most MaxAddrs of at most MaxAddrLen bytes each.
	Addrs []ma.Multiaddr
	// Timestamp is when the record was made, in µs since the Unix epoch.
	Timestamp uint64
	// Signature is the device key's signature over the domain separator
	// and every other field (SignedBytes).
	Signature [sigLen]byte
}

// NewRecord returns a record of the device with key deviceKey, signed by
// it, stamped with now.
func NewRecord(agentDID, context string, deviceKey ed25519.PrivateKey, addrs []ma.Multiaddr, now time.Time) (Record, error) {
	if len(deviceKey) != ed25519.PrivateKeySize {
		return Record{}, fmt.Errorf("rendezvous: new record: device key is %d bytes, want %d", len(deviceKey), ed25519.PrivateKeySize)
	}
	if now.UnixMicro() <= 0 {
		return Record{}, fmt.Errorf("rendezvous: new record: time %s is not after the Unix epoch", now)
	}
	r := Record{
		AgentDID:  agentDID,
		Context:   context,
		Device:    bytes.Clone(deviceKey.Public().(ed25519.PublicKey)),
		Addrs:     append([]ma.Multiaddr(nil), addrs...),
		Timestamp: uint64(now.UnixMicro()),
	}
	if err := r.check(); err != nil {
		return Record{}, fmt.Errorf("rendezvous: new record: %w", err)
	}
	msg, _ := r.SignedBytes()
	copy(r.Signature[:], ed25519.Sign(deviceKey, msg))
	return r, nil
}

// Verify checks the record's fields and its signature. Errors wrap
// ErrInvalidRecord or ErrBadSignature.
func (r Record) Verify() error {
	if err := r.check(); err != nil {
		return err
	}
	msg, _ := r.SignedBytes()
	if !ed25519.Verify(r.Device, msg, r.Signature[:]) {
		return fmt.Errorf("%w (device %s)", ErrBadSignature, shortKey(r.Device))
	}
	return nil
}

// SignedBytes returns what the device key signs: the domain separator and
// the record's encoding without its signature.
func (r Record) SignedBytes() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(recordDomain)+r.encodedLen())
	b = append(b, recordDomain...)
	return r.appendUnsigned(b), nil
}

// MarshalBinary returns the canonical encoding of the record. It refuses
// records that break the format's rules (it does not check the signature).
func (r Record) MarshalBinary() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	return r.appendBinary(make([]byte, 0, r.encodedLen())), nil
}

// DecodeRecord decodes a record encoded by MarshalBinary. It accepts only
// canonical encodings of records that pass the format's rules, so an
// accepted input re-encodes to itself; it does not check the signature
// (Verify does). Errors wrap ErrInvalidRecord.
func DecodeRecord(b []byte) (Record, error) {
	if len(b) > maxRecordLen {
		return Record{}, fmt.Errorf("%w: %d bytes, max %d", ErrInvalidRecord, len(b), maxRecordLen)
	}
	d := recordDecoder(b)
	if v := d.Byte("version"); d.Err == nil && v != RecordVersion {
		return Record{}, fmt.Errorf("%w: encoding version %d, want %d", ErrInvalidRecord, v, RecordVersion)
	}
	var r Record
	r.AgentDID = string(d.LenBytes("agent DID", MaxAgentDIDLen))
	r.Context = string(d.LenBytes("context", MaxContextLen))
	if k := d.Bytes(keyLen, "device key"); k != nil {
		r.Device = ed25519.PublicKey(bytes.Clone(k))
	}
	if t := d.Bytes(8, "timestamp"); t != nil {
		r.Timestamp = binary.BigEndian.Uint64(t)
	}
	n := d.Uvarint("address count")
	if d.Err == nil && n > MaxAddrs {
		return Record{}, fmt.Errorf("%w: %d addresses, max %d", ErrInvalidRecord, n, MaxAddrs)
	}
	for i := uint64(0); i < n && d.Err == nil; i++ {
		raw := d.LenBytes("address", MaxAddrLen)
		if d.Err != nil {
			break
		}
		a, err := parseAddr(raw)
		if err != nil {
			return Record{}, fmt.Errorf("%w: address %d: %v", ErrInvalidRecord, i+1, err)
		}
		r.Addrs = append(r.Addrs, a)
	}
	copy(r.Signature[:], d.Bytes(sigLen, "signature"))
	if err := d.Done("record"); err != nil {
		return Record{}, err
	}
	if err := r.check(); err != nil {
		return Record{}, err
	}
	return r, nil
}

// parseAddr accepts the binary form of a multiaddr only if it is canonical
// (it re-encodes to the same bytes). go-multiaddr v0.16 keeps each
// component's bytes as read, so this holds today; the check keeps records'
// encodings unique should a later version normalise.
func parseAddr(raw []byte) (ma.Multiaddr, error) {
	if len(raw) == 0 {
		return nil, errors.New("empty")
	}
	a, err := ma.NewMultiaddrBytes(raw)
	if err != nil {
		return nil, truncErr(err)
	}
	if !bytes.Equal(a.Bytes(), raw) {
		return nil, errors.New("not in canonical binary form")
	}
	return a, nil
}

// PeerID returns the device's libp2p peer ID.
func (r Record) PeerID() (peer.ID, error) { return identity.PeerID(r.Device) }

// AddrInfo returns the device's peer ID and addresses, ready for
// host.Connect.
func (r Record) AddrInfo() (peer.AddrInfo, error) {
	id, err := r.PeerID()
	if err != nil {
		return peer.AddrInfo{}, err
	}
	return peer.AddrInfo{ID: id, Addrs: append([]ma.Multiaddr(nil), r.Addrs...)}, nil
}

// Time returns the record's timestamp as a time.
func (r Record) Time() time.Time { return time.UnixMicro(int64(min(r.Timestamp, 1<<63-1))) }

// DIDURL returns the device's verification method ID, AgentDID#Context.
func (r Record) DIDURL() string { return r.AgentDID + "#" + r.Context }

// check enforces the format's rules on every field but the signature.
func (r Record) check() error {
	if err := CheckAgentDID(r.AgentDID); err != nil {
		return err
	}
	if err := checkContext(r.Context); err != nil {
		return err
	}
	if len(r.Device) != keyLen {
		return fmt.Errorf("%w: device key is %d bytes, want %d", ErrInvalidRecord, len(r.Device), keyLen)
	}
	if len(r.Addrs) > MaxAddrs {
		return fmt.Errorf("%w: %d addresses, max %d", ErrInvalidRecord, len(r.Addrs), MaxAddrs)
	}
	for i, a := range r.Addrs {
		n := len(a.Bytes())
		if n == 0 {
			return fmt.Errorf("%w: address %d is empty", ErrInvalidRecord, i+1)
		}
		if n > MaxAddrLen {
			return fmt.Errorf("%w: address %d is %d bytes, max %d", ErrInvalidRecord, i+1, n, MaxAddrLen)
		}
	}
	return nil
}

// CheckAgentDID accepts a bare Ed25519 did:key in its canonical spelling
// (what identity.DIDKey returns), at most MaxAgentDIDLen bytes. Errors wrap
// ErrInvalidRecord.
func CheckAgentDID(did string) error {
	if did == "" {
		return fmt.Errorf("%w: agent DID is empty", ErrInvalidRecord)
	}
	if len(did) > MaxAgentDIDLen {
		return fmt.Errorf("%w: agent DID is %d bytes, max %d", ErrInvalidRecord, len(did), MaxAgentDIDLen)
	}
	bare, frag := identity.SplitDIDURL(did)
	if frag != "" || bare != did {
		return fmt.Errorf("%w: agent DID %q has a fragment; the agent DID must be bare and the fragment goes in the context", ErrInvalidRecord, wire.Truncate(did, 100))
	}
	pub, err := identity.ParseDIDKey(did)
	if err != nil {
		return fmt.Errorf("%w: agent DID: %v", ErrInvalidRecord, err)
	}
	if identity.DIDKey(pub) != did {
		return fmt.Errorf("%w: agent DID %q is not in canonical form", ErrInvalidRecord, wire.Truncate(did, 100))
	}
	return nil
}

func checkContext(c string) error {
	if c == "" {
		return fmt.Errorf("%w: context is empty", ErrInvalidRecord)
	}
	if len(c) > MaxContextLen {
		return fmt.Errorf("%w: context is %d bytes, max %d", ErrInvalidRecord, len(c), MaxContextLen)
	}
	for i := 0; i < len(c); i++ {
		switch ch := c[i]; {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9', ch == '.', ch == '_', ch == '-':
		default:
			return fmt.Errorf("%w: context contains %q; allowed are A-Z a-z 0-9 . _ -", ErrInvalidRecord, ch)
		}
	}
	return nil
}

func (r *Record) encodedLen() int {
	n := 1 + wire.UvarintLen(uint64(len(r.AgentDID))) + len(r.AgentDID) +
		wire.UvarintLen(uint64(len(r.Context))) + len(r.Context) + keyLen + 8 +
		wire.UvarintLen(uint64(len(r.Addrs))) + sigLen
	for _, a := range r.Addrs {
		l := len(a.Bytes())
		n += wire.UvarintLen(uint64(l)) + l
	}
	return n
}

// appendUnsigned appends the encoding of every field but the signature. It
// assumes check passed (a device key of any other length would shift the
// fields after it).
func (r *Record) appendUnsigned(b []byte) []byte {
	b = append(b, RecordVersion)
	b = wire.AppendLenBytes(b, r.AgentDID)
	b = wire.AppendLenBytes(b, r.Context)
	b = append(b, r.Device...)
	b = binary.BigEndian.AppendUint64(b, r.Timestamp)
	b = binary.AppendUvarint(b, uint64(len(r.Addrs)))
	for _, a := range r.Addrs {
		b = wire.AppendLenBytes(b, a.Bytes())
	}
	return b
}

func (r *Record) appendBinary(b []byte) []byte {
	b = r.appendUnsigned(b)
	return append(b, r.Signature[:]...)
}

func shortKey(k []byte) string {
	if len(k) != keyLen {
		return fmt.Sprintf("<%d-byte key>", len(k))
	}
	return fmt.Sprintf("%x", k[:6])
}
