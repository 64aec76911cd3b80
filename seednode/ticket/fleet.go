package ticket

import (
	"crypto/ed25519"
	"encoding/binary"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/seednode/fleet"

	"github.com/seedfleet/seedfleet/internal/wire"
)

// Fleet and invite tickets: what a foundation running a public fleet
// publishes, and what it hands an agent it invites.
const (
	FleetPrefix  = "fleet"
	InvitePrefix = "invite"

	// MaxFleetNameLen bounds a fleet's name, in bytes.
	MaxFleetNameLen = 128
	// MaxFleetReplicas bounds the replicas a fleet keeps of a vault.
	MaxFleetReplicas = 16
	// MaxFleetPods bounds the pods a fleet ticket may say the fleet has.
	MaxFleetPods = 1 << 16
	// InviteIDLen is the length of an invite's random ID.
	InviteIDLen = 16
)

// FleetTicket is a public fleet's calling card: its name, admission policy,
// replicas per vault, size, and some of its seeds (up to MaxPeers, in ordinal
// order). Any seed of a fleet answers a hosting request for the whole fleet,
// so a device needs only one that it can reach.
type FleetTicket struct {
	Name      string
	Admission fleet.Admission
	Replicas  int
	Pods      int
	Peers     []peer.AddrInfo
}

// Validate reports whether t is within the encoding's limits.
func (t FleetTicket) Validate() error {
	if err := validName("fleet name", t.Name); err != nil {
		return err
	}
	if !t.Admission.Valid() {
		return invalid("unknown admission policy %q", t.Admission)
	}
	if t.Replicas < 1 || t.Replicas > MaxFleetReplicas {
		return invalid("replicas %d outside 1..%d", t.Replicas, MaxFleetReplicas)
	}
	if t.Pods < 1 || t.Pods > MaxFleetPods {
		return invalid("pods %d outside 1..%d", t.Pods, MaxFleetPods)
	}
	if len(t.Peers) == 0 {
		return invalid("a fleet ticket needs at least one seed")
	}
	if len(t.Peers) > t.Pods {
		return invalid("%d seeds listed in a fleet of %d pods", len(t.Peers), t.Pods)
	}
	if err := validatePeers(t.Peers); err != nil {
		return err
	}
	if n := len(t.appendBinary(nil)) + checksumLen; n > MaxEncodedLen {
		return invalid("ticket would be %d bytes, at most %d fit; use fewer seeds or addresses", n, MaxEncodedLen)
	}
	return nil
}

// String returns the text form without validating (see MarshalText).
func (t FleetTicket) String() string { return seal(FleetPrefix, t.appendBinary(nil)) }

// MarshalText validates t and returns its text form.
func (t FleetTicket) MarshalText() ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return []byte(t.String()), nil
}

// Binary form (version 1), after the common version byte:
//
//	fleet:  bytes(name) | admission: 1 byte | uvarint(replicas) | uvarint(pods) | peers
//	invite: bytes(fleet name) | bytes(id: 16) | uvarint(not after: unix seconds) |
//	        uvarint(uses) | bytes(fleet key: 32) | bytes(signature: 64)
func (t FleetTicket) appendBinary(b []byte) []byte {
	b = append(b, Version)
	b = wire.AppendLenBytes(b, t.Name)
	b = append(b, t.Admission.Code())
	b = binary.AppendUvarint(b, uint64(t.Replicas))
	b = binary.AppendUvarint(b, uint64(t.Pods))
	return appendPeers(b, t.Peers)
}

// ParseFleetTicket parses a fleet ticket's text form.
func ParseFleetTicket(s string) (FleetTicket, error) {
	payload, err := open(FleetPrefix, s)
	if err != nil {
		return FleetTicket{}, err
	}
	var t FleetTicket
	r := reader{b: payload, off: 1}
	name, err := r.bytes("fleet name", MaxFleetNameLen)
	if err != nil {
		return FleetTicket{}, err
	}
	t.Name = string(name)
	a, err := r.byte("admission policy")
	if err != nil {
		return FleetTicket{}, err
	}
	if t.Admission, _ = fleet.AdmissionFromCode(a); t.Admission == "" {
		return FleetTicket{}, invalid("unknown admission policy %d", a)
	}
	replicas, err := r.count("replicas", MaxFleetReplicas, func(n uint64) error {
		return invalid("replicas %d outside 1..%d", n, MaxFleetReplicas)
	})
	if err != nil {
		return FleetTicket{}, err
	}
	pods, err := r.count("pods", MaxFleetPods, func(n uint64) error {
		return invalid("pods %d outside 1..%d", n, MaxFleetPods)
	})
	if err != nil {
		return FleetTicket{}, err
	}
	t.Replicas, t.Pods = replicas, pods
	if t.Peers, err = r.peers(); err != nil {
		return FleetTicket{}, err
	}
	if err := r.end(); err != nil {
		return FleetTicket{}, err
	}
	if err := t.Validate(); err != nil {
		return FleetTicket{}, err
	}
	return t, nil
}

// Equal reports whether t and o are the same ticket.
func (t FleetTicket) Equal(o FleetTicket) bool {
	return t.Name == o.Name && t.Admission == o.Admission && t.Replicas == o.Replicas &&
		t.Pods == o.Pods && peersEqual(t.Peers, o.Peers)
}

// InviteTicket lets an agent be admitted by a fleet whose policy is Invite. It
// is signed by the fleet's key, so every pod checks it alone; how often it was
// used is counted by the fleet (see the hosting package).
type InviteTicket struct {
	Fleet    string
	ID       [InviteIDLen]byte
	NotAfter time.Time // second precision
	Uses     int       // admissions it allows, at least 1
	FleetKey ed25519.PublicKey
	Sig      []byte
}

const inviteDomain = "seedfleet invite v1\x00"

// NewInviteTicket signs an invite with the fleet's key.
func NewInviteTicket(fleetName string, id [InviteIDLen]byte, notAfter time.Time, uses int, key ed25519.PrivateKey) (InviteTicket, error) {
	t := InviteTicket{Fleet: fleetName, ID: id, NotAfter: notAfter.Truncate(time.Second), Uses: uses,
		FleetKey: key.Public().(ed25519.PublicKey)}
	if err := t.validFields(); err != nil {
		return InviteTicket{}, err
	}
	t.Sig = ed25519.Sign(key, t.signed())
	return t, nil
}

func (t InviteTicket) validFields() error {
	if err := validName("fleet name", t.Fleet); err != nil {
		return err
	}
	if t.Uses < 1 || t.Uses > 1<<20 {
		return invalid("uses %d outside 1..%d", t.Uses, 1<<20)
	}
	if t.NotAfter.Unix() <= 0 {
		return invalid("an invite needs an expiry")
	}
	if len(t.FleetKey) != ed25519.PublicKeySize {
		return invalid("fleet key is %d bytes, want %d", len(t.FleetKey), ed25519.PublicKeySize)
	}
	return nil
}

// signed is what the fleet key signs: everything but the signature.
func (t InviteTicket) signed() []byte {
	b := []byte(inviteDomain)
	b = wire.AppendLenBytes(b, t.Fleet)
	b = wire.AppendLenBytes(b, t.ID[:])
	b = binary.AppendUvarint(b, uint64(t.NotAfter.Unix()))
	b = binary.AppendUvarint(b, uint64(t.Uses))
	return wire.AppendLenBytes(b, t.FleetKey)
}

// Verify checks the signature and that the invite is for fleet, signed by
// key, and unexpired at now. It does not count uses.
func (t InviteTicket) Verify(fleetName string, key ed25519.PublicKey, now time.Time) error {
	if err := t.validFields(); err != nil {
		return err
	}
	switch {
	case t.Fleet != fleetName:
		return invalid("the invite is for fleet %q, not %q", t.Fleet, fleetName)
	case !key.Equal(t.FleetKey):
		return invalid("the invite was not signed by this fleet's key")
	case len(t.Sig) != ed25519.SignatureSize || !ed25519.Verify(t.FleetKey, t.signed(), t.Sig):
		return invalid("the invite's signature is not valid")
	case now.After(t.NotAfter):
		return invalid("the invite expired at %s", t.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// String returns the text form.
func (t InviteTicket) String() string {
	b := append([]byte{Version}, t.signed()[len(inviteDomain):]...)
	return seal(InvitePrefix, wire.AppendLenBytes(b, t.Sig))
}

// ParseInviteTicket parses an invite's text form. The signature is checked by
// Verify, which needs the fleet's key.
func ParseInviteTicket(s string) (InviteTicket, error) {
	payload, err := open(InvitePrefix, s)
	if err != nil {
		return InviteTicket{}, err
	}
	var t InviteTicket
	r := reader{b: payload, off: 1}
	name, err := r.bytes("fleet name", MaxFleetNameLen)
	if err != nil {
		return InviteTicket{}, err
	}
	t.Fleet = string(name)
	if err := r.fixed("invite ID", t.ID[:]); err != nil {
		return InviteTicket{}, err
	}
	notAfter, err := r.uvarint("expiry")
	if err != nil {
		return InviteTicket{}, err
	}
	if notAfter > 1<<40 {
		return InviteTicket{}, invalid("expiry %d is too far in the future", notAfter)
	}
	t.NotAfter = time.Unix(int64(notAfter), 0)
	uses, err := r.uvarint("uses")
	if err != nil {
		return InviteTicket{}, err
	}
	if uses > 1<<20 {
		return InviteTicket{}, invalid("uses %d outside 1..%d", uses, 1<<20)
	}
	t.Uses = int(uses)
	t.FleetKey = make(ed25519.PublicKey, ed25519.PublicKeySize)
	if err := r.fixed("fleet key", t.FleetKey); err != nil {
		return InviteTicket{}, err
	}
	t.Sig = make([]byte, ed25519.SignatureSize)
	if err := r.fixed("signature", t.Sig); err != nil {
		return InviteTicket{}, err
	}
	if err := r.end(); err != nil {
		return InviteTicket{}, err
	}
	if err := t.validFields(); err != nil {
		return InviteTicket{}, err
	}
	return t, nil
}

// validName accepts 1..MaxFleetNameLen bytes of printable UTF-8.
func validName(what, s string) error {
	if s == "" || len(s) > MaxFleetNameLen {
		return invalid("%s must be 1 to %d bytes", what, MaxFleetNameLen)
	}
	if !utf8.ValidString(s) {
		return invalid("%s is not UTF-8", what)
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return invalid("%s holds a control character", what)
		}
	}
	return nil
}
