package pairing

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/seedfleet/seedfleet/internal/wire"
)

// ProtocolID is the libp2p protocol of pairing.
const ProtocolID = "/seedfleet/pair/1.0.0"

// ServiceName is the resource-manager service of pairing streams.
const ServiceName = "seedfleet.pairing"

// Bounds of the protocol.
const (
	// MaxWelcomeSize is the largest welcome payload.
	MaxWelcomeSize = 64 << 10
	// MaxNameLen is the longest Request.Name.
	MaxNameLen = 64
	// StepTimeout bounds each step of an exchange (one message sent or
	// received), on both sides.
	StepTimeout = 30 * time.Second
	// DecideTimeout bounds the approving device's Decide; the new device
	// waits this much longer than a step for the welcome.
	DecideTimeout = 60 * time.Second

	// maxReasonLen bounds a refusal's text.
	maxReasonLen = 1024
	// maxFrameSize bounds any frame: a welcome, its type, length and tag.
	maxFrameSize = MaxWelcomeSize + 64
	// maxSmallFrameSize bounds every frame but a welcome.
	maxSmallFrameSize = 2 + 3 + maxReasonLen + macLen
	readBufSize       = 1024
)

// Errors of the protocol. Approve and Await return errors that wrap them,
// with details for the user.
var (
	// ErrWrongCode: the code typed on the approving device is not the one
	// the new device shows (or a man in the middle does not know it).
	// Check the code shown on the new device and try again.
	ErrWrongCode = errors.New("pairing code does not match")
	// ErrTooManyAttempts: the new device gave up after MaxAttempts failed
	// attempts; start pairing again on it for a new code.
	ErrTooManyAttempts = errors.New("too many wrong pairing codes")
	// ErrRefused: the approving device's Decide refused the new device;
	// the error carries its reason.
	ErrRefused = errors.New("pairing refused by the approving device")
	// ErrProtocol: the peer broke the protocol (garbage, oversized or
	// out-of-order messages, invalid points or MACs after key
	// confirmation).
	ErrProtocol = errors.New("pairing protocol violation")
	// ErrBusy: the new device is running another approval attempt; try
	// again in a moment.
	ErrBusy = errors.New("the new device is busy with another pairing attempt")
)

// MaxAttempts is how many failed attempts (each one guess at the code) the
// new device allows before Await gives up.
const MaxAttempts = 3

// The wire format. Each frame is a minimal uvarint length (1..maxFrameSize),
// then that many bytes (see wire.ReadFrame): a message type and its fields. bytes(x) is uvarint(len)
// followed by x; uvarints are minimal. tag is HMAC-SHA256 under the message
// key (see keys) of everything before it, type included.
//
//	1 hello    A→B  sid (16) | Ya (32)
//	2 reply    B→A  Yb (32) | MAC_B (32)
//	3 confirm  A→B  MAC_A (32)
//	4 request  B→A  bytes(name) | tag
//	5 welcome  A→B  bytes(payload) | tag
//	6 refusal  ↔    reason code (1) | bytes(reason) | [tag]
//	7 ack      B→A  tag
//
// A refusal carries a tag if and only if it is sent after key confirmation.
const (
	msgHello   = 1
	msgReply   = 2
	msgConfirm = 3
	msgRequest = 4
	msgWelcome = 5
	msgRefusal = 6
	msgAck     = 7
)

var msgNames = [...]string{msgHello: "hello", msgReply: "reply", msgConfirm: "confirm", msgRequest: "request",
	msgWelcome: "welcome", msgRefusal: "refusal", msgAck: "ack"}

func msgName(t byte) string {
	if int(t) < len(msgNames) && msgNames[t] != "" {
		return msgNames[t]
	}
	return fmt.Sprintf("message type %d", t)
}

// Reasons of a refusal.
const (
	reasonBusy       = 1 // another attempt is running
	reasonNotWaiting = 2 // the new device no longer waits (approved, gave up, stopped)
	reasonInvalid    = 3 // the peer's message broke the protocol
	reasonDenied     = 4 // Decide refused
)

// message is any message; which fields are set depends on typ.
type message struct {
	typ     byte
	sid     [sidLen]byte   // hello
	point   [pointLen]byte // hello, reply
	mac     [macLen]byte   // reply (MAC_B), confirm (MAC_A)
	name    string         // request
	payload []byte         // welcome
	reason  byte           // refusal
	text    string         // refusal
	tagged  bool
	tag     [macLen]byte
}

// appendBody appends the encoding of m without its tag.
func (m *message) appendBody(b []byte) []byte {
	b = append(b, m.typ)
	switch m.typ {
	case msgHello:
		b = append(append(b, m.sid[:]...), m.point[:]...)
	case msgReply:
		b = append(append(b, m.point[:]...), m.mac[:]...)
	case msgConfirm:
		b = append(b, m.mac[:]...)
	case msgRequest:
		b = wire.AppendLenBytes(b, m.name)
	case msgWelcome:
		b = wire.AppendLenBytes(b, m.payload)
	case msgRefusal:
		b = wire.AppendLenBytes(append(b, m.reason), m.text)
	}
	return b
}

// append appends the encoding of m, tag included if m is tagged.
func (m *message) append(b []byte) []byte {
	b = m.appendBody(b)
	if m.tagged {
		b = append(b, m.tag[:]...)
	}
	return b
}

// decodeMessage decodes a frame's body. It checks the encoding and bounds
// only: points, MACs, tags and names are checked by the protocol. Errors
// wrap ErrProtocol.
func decodeMessage(b []byte) (message, error) {
	d := wire.Decoder{B: b, Sentinel: ErrProtocol}
	m := message{typ: d.Byte("message type")}
	switch m.typ {
	case msgHello:
		d.Fixed(m.sid[:], "session ID")
		d.Fixed(m.point[:], "point Ya")
	case msgReply:
		d.Fixed(m.point[:], "point Yb")
		d.Fixed(m.mac[:], "MAC_B")
	case msgConfirm:
		d.Fixed(m.mac[:], "MAC_A")
	case msgRequest:
		m.name = string(d.LenBytes("device name", MaxNameLen))
		m.tagged = true
	case msgWelcome:
		if p := d.LenBytes("welcome", MaxWelcomeSize); p != nil {
			m.payload = slices.Clip(p)
		}
		m.tagged = true
	case msgRefusal:
		m.reason = d.Byte("refusal reason code")
		m.text = string(d.LenBytes("refusal reason", maxReasonLen))
		m.tagged = d.Err == nil && len(d.B) == macLen
	case msgAck:
		m.tagged = true
	default:
		if d.Err == nil {
			return message{}, fmt.Errorf("%w: unknown message type %d (this device speaks %s)", ErrProtocol, m.typ, ProtocolID)
		}
	}
	if m.tagged {
		d.Fixed(m.tag[:], msgName(m.typ)+" tag")
	}
	if err := d.Done(msgName(m.typ)); err != nil {
		return message{}, err
	}
	return m, nil
}
