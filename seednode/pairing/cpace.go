package pairing

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/oasisprotocol/curve25519-voi/curve"
	"github.com/oasisprotocol/curve25519-voi/curve/scalar"
)

// CPace over ristretto255 (draft-irtf-cfrg-cpace, with SHA-512):
//
//	G    = ristretto255 from 64 uniform bytes:
//	       SHA-512(cpaceDomain || lv(code) || lv(CI) || lv(sid))
//	Y    = y·G for a random scalar y on each side (Ya from A, Yb from B)
//	K    = y·X, X the other side's point
//	ISK  = SHA-512(iskDomain || sid || K || Ya || Yb)
//	MAC_B = HMAC-SHA256(ISK, "B" || sid || Ya || Yb), MAC_A likewise with "A"
//
// lv(x) is uvarint(len(x)) || x. code is the canonical 8 symbols, CI the
// approver's peer ID followed by the new device's (multihashes, so the
// concatenation is unambiguous) as the libp2p secure channel authenticated
// them, sid 16 random bytes from the approver. Binding CI into G means a man
// in the middle who relays between A and B computes with another generator
// than either of them, so relaying gains him nothing.
const (
	cpaceDomain = "seedfleet/pair/cpace/v1"
	iskDomain   = "seedfleet/pair/cpace/v1/isk"
	// msgKeyLabel derives the key that tags the messages after key
	// confirmation.
	msgKeyLabel = "seedfleet/pair/v1/messages"

	sidLen   = 16
	pointLen = curve.CompressedPointSize
	macLen   = sha256.Size
)

// Roles in the confirmation MACs.
const (
	roleApprover = 'A'
	roleDevice   = 'B'
)

// channelID is CI: the approver's peer ID, then the new device's.
func channelID(approver, device peer.ID) []byte {
	return append([]byte(approver), device...)
}

// generator derives G from the code (canonical), CI and the session ID.
func generator(code Code, ci []byte, sid []byte) *curve.RistrettoPoint {
	h := sha512.New()
	h.Write([]byte(cpaceDomain))
	for _, f := range [][]byte{[]byte(code), ci, sid} {
		h.Write(binary.AppendUvarint(nil, uint64(len(f))))
		h.Write(f)
	}
	g, err := curve.NewRistrettoPoint().SetUniformBytes(h.Sum(nil))
	if err != nil {
		panic("pairing: SetUniformBytes of a 64-byte hash: " + err.Error()) // cannot happen: the input size is right
	}
	return g
}

// share is one side's ephemeral CPace secret and public point.
type share struct {
	y      *scalar.Scalar
	public [pointLen]byte
}

// newShare picks y at random and computes y·g.
func newShare(g *curve.RistrettoPoint) (share, error) {
	y, err := scalar.New().SetRandom(nil)
	if err != nil {
		return share{}, fmt.Errorf("random scalar: %w", err)
	}
	return newShareFrom(g, y)
}

func newShareFrom(g *curve.RistrettoPoint, y *scalar.Scalar) (share, error) {
	p := curve.NewRistrettoPoint().Mul(g, y)
	if p.IsIdentity() { // y = 0, probability 2⁻²⁵²
		return share{}, fmt.Errorf("random scalar is zero")
	}
	var c curve.CompressedRistretto
	c.SetRistrettoPoint(p)
	return share{y: y, public: c}, nil
}

// decodePoint decodes the peer's point, refusing invalid encodings and the
// identity. Errors wrap ErrProtocol.
func decodePoint(b [pointLen]byte, what string) (*curve.RistrettoPoint, error) {
	c := curve.CompressedRistretto(b)
	p, err := curve.NewRistrettoPoint().SetCompressed(&c)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not a valid ristretto255 point", ErrProtocol, what)
	}
	if p.IsIdentity() {
		return nil, fmt.Errorf("%w: %s is the identity point", ErrProtocol, what)
	}
	return p, nil
}

// sessionKeys are what both sides share after CPace.
type sessionKeys struct {
	isk    [sha512.Size]byte
	msgKey [sha256.Size]byte
	// transcript is sid || Ya || Yb.
	transcript []byte
}

// deriveKeys computes K = s.y·peerPoint and the keys of the session. ya and
// yb are the points as sent on the wire (A's and B's).
func deriveKeys(s share, peerPoint *curve.RistrettoPoint, sid [sidLen]byte, ya, yb [pointLen]byte) (*sessionKeys, error) {
	k := curve.NewRistrettoPoint().Mul(peerPoint, s.y)
	if k.IsIdentity() { // cannot happen in a prime-order group with valid inputs
		return nil, fmt.Errorf("%w: shared point is the identity", ErrProtocol)
	}
	var kc curve.CompressedRistretto
	kc.SetRistrettoPoint(k)

	keys := &sessionKeys{transcript: make([]byte, 0, sidLen+2*pointLen)}
	keys.transcript = append(append(append(keys.transcript, sid[:]...), ya[:]...), yb[:]...)
	h := sha512.New()
	h.Write([]byte(iskDomain))
	h.Write(sid[:])
	h.Write(kc[:])
	h.Write(ya[:])
	h.Write(yb[:])
	h.Sum(keys.isk[:0])
	m := hmac.New(sha256.New, keys.isk[:])
	m.Write([]byte(msgKeyLabel))
	m.Sum(keys.msgKey[:0])
	return keys, nil
}

// confirmMAC is MAC_A or MAC_B.
func (k *sessionKeys) confirmMAC(role byte) [macLen]byte {
	m := hmac.New(sha256.New, k.isk[:])
	m.Write([]byte{role})
	m.Write(k.transcript)
	var out [macLen]byte
	m.Sum(out[:0])
	return out
}

// seal tags m with the message key.
func (k *sessionKeys) seal(m *message) {
	m.tag = k.tagOf(m)
	m.tagged = true
}

// open checks m's tag. Errors wrap ErrProtocol.
func (k *sessionKeys) open(m *message) error {
	want := k.tagOf(m)
	if !m.tagged || !hmac.Equal(m.tag[:], want[:]) {
		return fmt.Errorf("%w: %s does not carry this session's tag", ErrProtocol, msgName(m.typ))
	}
	return nil
}

func (k *sessionKeys) tagOf(m *message) [macLen]byte {
	h := hmac.New(sha256.New, k.msgKey[:])
	h.Write(m.appendBody(nil))
	var out [macLen]byte
	h.Sum(out[:0])
	return out
}

// randomSID returns a fresh session ID.
func randomSID() ([sidLen]byte, error) {
	var sid [sidLen]byte
	_, err := rand.Read(sid[:])
	return sid, err
}
