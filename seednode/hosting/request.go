package hosting

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/seedfleet/seedfleet/internal/wire"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/ticket"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// ProtocolID is the libp2p protocol of hosting requests.
const ProtocolID = "/seedfleet/host/1.0.0"

// Limits of a request.
const (
	// MaxVaultsPerRequest bounds the vaults one request names.
	MaxVaultsPerRequest = 64
	// MaxInviteLen bounds an invite ticket's text.
	MaxInviteLen = 1024
	// MaxRequestSize bounds an encoded request.
	MaxRequestSize = identity.MaxAgentDocumentSize + MaxVaultsPerRequest*(32+20) + MaxInviteLen + ticket.MaxFleetNameLen + 256
	// MaxClockSkew is how far a request's time may be from the seed's clock.
	MaxClockSkew = 2 * time.Minute
	// NonceLen is the length of a request's random nonce.
	NonceLen = 16
)

// ErrMalformed is wrapped by every error that refuses a request's or
// answer's encoding.
var ErrMalformed = errors.New("hosting: malformed message")

// ErrUnauthorized is wrapped by every error that refuses a well-formed
// request: bad signature, key not listed or revoked, stale or replayed.
var ErrUnauthorized = errors.New("hosting: request not authorized")

// Op is what a request asks.
type Op uint8

const (
	// OpHost asks the fleet to host the named vaults (or change their quota).
	OpHost Op = 1
	// OpStatus asks what the fleet holds for the subject.
	OpStatus Op = 2
	// OpRelease gives the named vaults back (all of the subject's if none).
	OpRelease Op = 3
)

func (o Op) valid() bool { return o >= OpHost && o <= OpRelease }

func (o Op) String() string {
	switch o {
	case OpHost:
		return "host"
	case OpStatus:
		return "status"
	case OpRelease:
		return "release"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// SubjectKind says whose vaults a request is about.
type SubjectKind uint8

const (
	// SubjectAgent: an agent, named by its root key; its device keys may sign.
	SubjectAgent SubjectKind = 1
	// SubjectVault: a plain vault, named by its namespace key, which signs.
	SubjectVault SubjectKind = 2
)

// VaultAsk is one vault a request names, with the quota asked for (zero:
// the fleet's default).
type VaultAsk struct {
	Namespace    [32]byte
	QuotaBytes   uint64
	QuotaEntries uint64
}

// Request is a signed hosting request.
type Request struct {
	Op      Op
	Kind    SubjectKind
	Subject ed25519.PublicKey // the agent's root key, or the vault's namespace key
	Signer  ed25519.PublicKey // the root key, a device key of the agent, or the namespace key
	// AgentDoc is the agent's signed document; required when a device key
	// signs, so the seed can tell the key is listed.
	AgentDoc []byte
	Vaults   []VaultAsk
	Invite   string // an invite ticket's text, for fleets that admit by invite
	Fleet    string // the fleet's name, from its fleet ticket
	Time     time.Time
	Nonce    [NonceLen]byte
	Sig      []byte
}

const requestDomain = "seedfleet host request v1\x00"

const requestVersion = 1

// Sign fills in the signer and signature. key is the root key, a device key
// listed in r.AgentDoc, or the vault's namespace key.
func (r *Request) Sign(key ed25519.PrivateKey) {
	r.Signer = key.Public().(ed25519.PublicKey)
	r.Sig = ed25519.Sign(key, r.signed())
}

func micros(t time.Time) uint64 {
	if t.Before(time.UnixMicro(0)) {
		return 0
	}
	return uint64(t.UnixMicro())
}

// body is the encoding without the signature.
func (r *Request) body(b []byte) []byte {
	b = append(b, requestVersion, byte(r.Op), byte(r.Kind))
	b = wire.AppendLenBytes(b, r.Subject)
	b = wire.AppendLenBytes(b, r.Signer)
	b = wire.AppendLenBytes(b, r.AgentDoc)
	b = binary.AppendUvarint(b, uint64(len(r.Vaults)))
	for _, v := range r.Vaults {
		b = append(b, v.Namespace[:]...)
		b = binary.AppendUvarint(b, v.QuotaBytes)
		b = binary.AppendUvarint(b, v.QuotaEntries)
	}
	b = wire.AppendLenBytes(b, r.Invite)
	b = wire.AppendLenBytes(b, r.Fleet)
	b = binary.AppendUvarint(b, micros(r.Time))
	return append(b, r.Nonce[:]...)
}

func (r *Request) signed() []byte { return r.body([]byte(requestDomain)) }

// Marshal encodes a signed request.
func (r *Request) Marshal() []byte { return wire.AppendLenBytes(r.body(nil), r.Sig) }

// UnmarshalRequest decodes a request. It checks the encoding only: Verify
// checks what the request claims.
func UnmarshalRequest(p []byte) (*Request, error) {
	if len(p) > MaxRequestSize {
		return nil, fmt.Errorf("%w: request of %d bytes, at most %d", ErrMalformed, len(p), MaxRequestSize)
	}
	d := &wire.Decoder{B: p, Sentinel: ErrMalformed}
	if v := d.Byte("version"); d.Err == nil && v != requestVersion {
		return nil, fmt.Errorf("%w: request version %d, this seed reads %d", ErrMalformed, v, requestVersion)
	}
	r := &Request{Op: Op(d.Byte("op")), Kind: SubjectKind(d.Byte("subject kind"))}
	r.Subject = key(d, "subject")
	r.Signer = key(d, "signer")
	r.AgentDoc = bytes.Clone(d.LenBytes("agent document", identity.MaxAgentDocumentSize))
	n := d.Uvarint("vault count")
	if n > MaxVaultsPerRequest {
		return nil, fmt.Errorf("%w: %d vaults in one request, at most %d", ErrMalformed, n, MaxVaultsPerRequest)
	}
	for i := uint64(0); i < n && d.Err == nil; i++ {
		var v VaultAsk
		d.Fixed(v.Namespace[:], "vault namespace")
		v.QuotaBytes = d.Uvarint("quota bytes")
		v.QuotaEntries = d.Uvarint("quota entries")
		r.Vaults = append(r.Vaults, v)
	}
	r.Invite = string(d.LenBytes("invite", MaxInviteLen))
	r.Fleet = string(d.LenBytes("fleet name", ticket.MaxFleetNameLen))
	t := d.Uvarint("time")
	if t > math.MaxInt64 {
		d.Fail("time")
	}
	r.Time = time.UnixMicro(int64(t)).UTC()
	d.Fixed(r.Nonce[:], "nonce")
	r.Sig = bytes.Clone(d.LenBytes("signature", ed25519.SignatureSize))
	if err := d.Done("signature"); err != nil {
		return nil, err
	}
	if err := r.checkShape(); err != nil {
		return nil, err
	}
	return r, nil
}

func key(d *wire.Decoder, what string) ed25519.PublicKey {
	b := d.LenBytes(what, ed25519.PublicKeySize)
	if d.Err == nil && len(b) != ed25519.PublicKeySize {
		d.Err = fmt.Errorf("%w: %s is %d bytes, want %d", ErrMalformed, what, len(b), ed25519.PublicKeySize)
	}
	return bytes.Clone(b)
}

// checkShape checks what needs no keys or clock: fields that fit together.
func (r *Request) checkShape() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	switch {
	case !r.Op.valid():
		return bad("unknown operation %d", r.Op)
	case r.Kind != SubjectAgent && r.Kind != SubjectVault:
		return bad("unknown subject kind %d", r.Kind)
	case len(r.Subject) != ed25519.PublicKeySize || len(r.Signer) != ed25519.PublicKeySize:
		return bad("subject and signer must be Ed25519 public keys")
	case len(r.Sig) != ed25519.SignatureSize:
		return bad("signature is %d bytes, want %d", len(r.Sig), ed25519.SignatureSize)
	case r.Fleet == "":
		return bad("no fleet named")
	case r.Op == OpHost && len(r.Vaults) == 0:
		return bad("a host request names no vault")
	case r.Op == OpStatus && len(r.Vaults) != 0:
		return bad("a status request names vaults")
	}
	seen := make(map[[32]byte]bool, len(r.Vaults))
	for _, v := range r.Vaults {
		if seen[v.Namespace] {
			return bad("vault %s named twice", vault.NamespaceID(v.Namespace).Short())
		}
		seen[v.Namespace] = true
	}
	if r.Kind == SubjectVault {
		if !bytes.Equal(r.Signer, r.Subject) {
			return bad("a plain vault's request must be signed by its namespace key")
		}
		for _, v := range r.Vaults {
			if !bytes.Equal(v.Namespace[:], r.Subject) {
				return bad("a plain vault's request may name only that vault")
			}
		}
		if len(r.AgentDoc) != 0 {
			return bad("a plain vault's request carries an agent document")
		}
	}
	return nil
}

// Verify checks that the request is for fleet, its signature, the signer's
// authority and the time against now. held is the newest agent document the fleet already knows for the
// subject (nil if none); the newer of it and the request's is used. It
// returns the document used (nil for plain vaults, or a root-signed request
// without one). Replays are the caller's to refuse (see Replay).
func (r *Request) Verify(fleet string, now time.Time, held *identity.AgentDocument) (*identity.AgentDocument, error) {
	return r.verify(fleet, now, held, true)
}

// verify is Verify; without checkSig it trusts the request's signature,
// which a home pod of the fleet checked before passing the request on.
func (r *Request) verify(fleet string, now time.Time, held *identity.AgentDocument, checkSig bool) (*identity.AgentDocument, error) {
	if err := r.checkShape(); err != nil {
		return nil, err
	}
	if r.Fleet != fleet {
		return nil, fmt.Errorf("%w: the request is for fleet %q, this is %q: use this fleet's ticket", ErrUnauthorized, r.Fleet, fleet)
	}
	if skew := r.Time.Sub(now); skew > MaxClockSkew || skew < -MaxClockSkew {
		return nil, fmt.Errorf("%w: the request was signed at %s, %s from this seed's clock (at most %s): check the device's clock",
			ErrUnauthorized, r.Time.Format(time.RFC3339), skew.Round(time.Second).Abs(), MaxClockSkew)
	}
	if checkSig && !ed25519.Verify(r.Signer, r.signed(), r.Sig) {
		return nil, fmt.Errorf("%w: the signature does not verify", ErrUnauthorized)
	}
	if r.Kind == SubjectVault {
		return nil, nil
	}
	doc, err := r.document(held)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(r.Signer, r.Subject) {
		return doc, nil
	}
	if doc == nil {
		return nil, fmt.Errorf("%w: a device key signed but the request carries no agent document: send the agent's document", ErrUnauthorized)
	}
	// A revoked key is refused whatever time it claims: the request is fresh.
	if err := doc.Authorized(r.Signer, math.MaxUint64); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	return doc, nil
}

// document picks the newer of the held document and the request's.
func (r *Request) document(held *identity.AgentDocument) (*identity.AgentDocument, error) {
	var sent *identity.AgentDocument
	if len(r.AgentDoc) != 0 {
		d, err := identity.ParseAgentDocument(r.AgentDoc)
		if err != nil {
			return nil, fmt.Errorf("%w: the agent document: %w", ErrUnauthorized, err)
		}
		if !bytes.Equal(d.Root, r.Subject) {
			return nil, fmt.Errorf("%w: the agent document belongs to another agent", ErrUnauthorized)
		}
		sent = d
	}
	if held != nil && !bytes.Equal(held.Root, r.Subject) {
		held = nil // not this agent's: ignore rather than trust
	}
	switch {
	case held == nil:
		return sent, nil
	case sent == nil || held.Version >= sent.Version:
		return held, nil
	}
	return sent, nil
}
