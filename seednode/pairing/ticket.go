package pairing

import (
	"bytes"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/zeebo/blake3"

	"github.com/seedfleet/seedfleet/internal/wire"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/ticket"
)

// Ticket is what the new device shows, as text and as a QR code, so that
// the approving device can dial it.
type Ticket struct {
	// Peer is the new device: its peer ID (an Ed25519 key) and up to
	// MaxTicketAddrs addresses (none for a device the approver finds by
	// other means).
	Peer peer.AddrInfo
	// Code is the pairing code, optional: put it only in the QR form, never
	// in the printed text, so that approving from text means reading the
	// code from the new device's screen.
	Code Code
}

// Limits of the ticket encoding, as in package seednode/ticket.
const (
	// TicketPrefix starts a ticket's text form.
	TicketPrefix = "pair"
	// MaxTicketAddrs is the most addresses a ticket carries.
	MaxTicketAddrs = 16

	ticketVersion  = 1
	maxPeerIDLen   = 64
	maxAddrLen     = ticket.MaxAddrLen
	checksumLen    = 4
	maxTicketBytes = 1 + 1 + maxPeerIDLen + 1 + MaxTicketAddrs*(2+maxAddrLen) + 1 + codeBytes + checksumLen
	// maxTicketText bounds the text ParseTicket looks at, whitespace included.
	maxTicketText = 4 * maxTicketBytes
)

// Binary form (version 1); bytes(x) is uvarint(len(x)) followed by x, with
// minimal uvarints:
//
//	payload:  0x01 | bytes(peer ID) | uvarint(n) | n × bytes(multiaddr) | bytes(code: 0 or 5)
//	binary:   payload | first 4 bytes of BLAKE3("pair" | payload)
//
// The code is its 40 bits, big-endian. The text form is "pair" and the
// binary form in lowercase RFC 4648 base32 without padding; ParseTicket
// ignores whitespace and case, and the encoding is canonical.

// ErrInvalidTicket is wrapped by every error that refuses a ticket. The
// messages never quote the ticket, which may carry the code.
var ErrInvalidTicket = errors.New("invalid pairing ticket")

func invalidTicket(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidTicket, fmt.Sprintf(format, args...))
}

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Validate reports whether t is within the limits of the encoding, so that
// its String form parses back to it. The error wraps ErrInvalidTicket.
func (t Ticket) Validate() error {
	if err := validDevicePeerID([]byte(t.Peer.ID)); err != nil {
		return invalidTicket("%v", err)
	}
	if len(t.Peer.Addrs) > MaxTicketAddrs {
		return invalidTicket("%d addresses, at most %d fit in a ticket", len(t.Peer.Addrs), MaxTicketAddrs)
	}
	for i, a := range t.Peer.Addrs {
		if a == nil {
			return invalidTicket("address %d is empty", i+1)
		}
		if err := ticket.ValidAddr(a.Bytes()); err != nil {
			return invalidTicket("address %d: %v", i+1, err)
		}
		if slices.ContainsFunc(t.Peer.Addrs[:i], a.Equal) {
			return invalidTicket("address %s is listed twice", a)
		}
	}
	if t.Code != "" {
		if _, err := t.Code.canonical(); err != nil {
			return invalidTicket("%v", err)
		}
	}
	return nil
}

// String returns the ticket's text form, "pair" and lowercase base32. It
// carries the code if t.Code is set. It does not validate: a ticket that
// Validate refuses gives a string ParseTicket refuses.
func (t Ticket) String() string {
	payload := t.appendBinary(nil)
	sum := ticketChecksum(payload)
	return TicketPrefix + b32.EncodeToString(append(payload, sum[:]...))
}

func (t Ticket) appendBinary(b []byte) []byte {
	b = append(b, ticketVersion)
	b = wire.AppendLenBytes(b, t.Peer.ID)
	b = binary.AppendUvarint(b, uint64(len(t.Peer.Addrs)))
	for _, a := range t.Peer.Addrs {
		var ab []byte
		if a != nil {
			ab = a.Bytes()
		}
		b = wire.AppendLenBytes(b, ab)
	}
	switch c, err := t.Code.canonical(); {
	case t.Code == "":
		b = wire.AppendLenBytes(b, []byte(nil))
	case err != nil:
		b = wire.AppendLenBytes(b, []byte(t.Code)) // not 5 bytes: ParseTicket refuses it
	default:
		cb := c.bytes()
		b = wire.AppendLenBytes(b, cb[:])
	}
	return b
}

func ticketChecksum(payload []byte) [checksumLen]byte {
	full := blake3.Sum256(append([]byte(TicketPrefix), payload...))
	return [checksumLen]byte(full[:checksumLen])
}

// ParseTicket parses a ticket's text form. It ignores ASCII whitespace and
// letter case; every other damage is refused with an error wrapping
// ErrInvalidTicket.
func ParseTicket(s string) (Ticket, error) {
	if len(s) > maxTicketText {
		return Ticket{}, invalidTicket("%d characters is too long for a pairing ticket", len(s))
	}
	n := normalizeTicket(s)
	if !strings.HasPrefix(n, TicketPrefix) {
		switch {
		case n == "":
			return Ticket{}, invalidTicket("empty ticket")
		case strings.HasPrefix(n, "blob"), strings.HasPrefix(n, "doc"):
			return Ticket{}, invalidTicket("this is a blob or vault ticket, not a pairing ticket (those start with %q)", TicketPrefix)
		}
		return Ticket{}, invalidTicket("a pairing ticket starts with %q", TicketPrefix)
	}
	body := n[len(TicketPrefix):]
	if b32.DecodedLen(len(body)) > maxTicketBytes {
		return Ticket{}, invalidTicket("ticket is longer than %d bytes", maxTicketBytes)
	}
	for i := 0; i < len(body); i++ {
		if c := body[i]; !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			if c >= 0x80 {
				return Ticket{}, invalidTicket("a non-ASCII character at position %d (not counting whitespace); tickets contain only a-z and 2-7", len(TicketPrefix)+i+1)
			}
			return Ticket{}, invalidTicket("character %q at position %d (not counting whitespace) is not used in tickets; they contain only a-z and 2-7", c, len(TicketPrefix)+i+1)
		}
	}
	switch len(body) % 8 {
	case 1, 3, 6: // no number of bytes has this many base32 characters
		return Ticket{}, invalidTicket("a ticket cannot have %d characters after its prefix; part of it is missing or extra", len(body))
	}
	raw, err := b32.DecodeString(body)
	if err != nil {
		return Ticket{}, invalidTicket("bad base32: %v", err)
	}
	if b32.EncodeToString(raw) != body {
		return Ticket{}, invalidTicket("bad base32: the last character is not one a ticket can end with")
	}
	if len(raw) == 0 {
		return Ticket{}, invalidTicket("ticket is truncated: nothing follows %q", TicketPrefix)
	}
	if raw[0] != ticketVersion {
		return Ticket{}, invalidTicket("unsupported ticket version %d (this Seedfleet reads version %d; the ticket comes from a newer release, or is mistyped)", raw[0], ticketVersion)
	}
	if len(raw) < 1+checksumLen {
		return Ticket{}, invalidTicket("ticket is truncated: %d bytes, too short for a version and a checksum", len(raw))
	}
	payload, sum := raw[:len(raw)-checksumLen], raw[len(raw)-checksumLen:]
	if want := ticketChecksum(payload); !bytes.Equal(sum, want[:]) {
		return Ticket{}, invalidTicket("checksum mismatch: the ticket was altered or mistyped")
	}
	return decodeTicket(payload)
}

// decodeTicket decodes a payload whose version and checksum are checked.
func decodeTicket(payload []byte) (Ticket, error) {
	d := ticketDecoder{b: payload[1:]}
	var t Ticket
	idb := d.bytes("peer ID", maxPeerIDLen)
	if d.err == nil {
		if err := validDevicePeerID(idb); err != nil {
			return Ticket{}, invalidTicket("%v", err)
		}
		t.Peer.ID = peer.ID(idb)
	}
	n := d.uvarint("address count")
	if d.err == nil && n > MaxTicketAddrs {
		return Ticket{}, invalidTicket("%d addresses, at most %d allowed", n, MaxTicketAddrs)
	}
	for i := 0; d.err == nil && i < int(n); i++ {
		ab := d.bytes(fmt.Sprintf("address %d", i+1), maxAddrLen)
		if d.err != nil {
			break
		}
		if err := ticket.ValidAddr(ab); err != nil {
			return Ticket{}, invalidTicket("address %d: %v", i+1, err)
		}
		a, _ := ma.NewMultiaddrBytes(bytes.Clone(ab)) // validated above
		if slices.ContainsFunc(t.Peer.Addrs, a.Equal) {
			return Ticket{}, invalidTicket("address %s is listed twice", a)
		}
		t.Peer.Addrs = append(t.Peer.Addrs, a)
	}
	cb := d.bytes("code", codeBytes)
	if d.err == nil {
		switch len(cb) {
		case 0:
		case codeBytes:
			t.Code = codeFromBytes([codeBytes]byte(cb))
		default:
			return Ticket{}, invalidTicket("code is %d bytes, want %d", len(cb), codeBytes)
		}
	}
	if d.err == nil && len(d.b) != 0 {
		return Ticket{}, invalidTicket("%d trailing bytes after the last field", len(d.b))
	}
	if d.err != nil {
		return Ticket{}, d.err
	}
	return t, nil
}

// ticketDecoder is a bounds-checked cursor over a ticket payload; its
// errors wrap ErrInvalidTicket.
type ticketDecoder struct {
	b   []byte
	err error
}

func (d *ticketDecoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || n != wire.UvarintLen(v) {
		d.err = invalidTicket("%s is truncated or not a minimal varint", what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *ticketDecoder) bytes(what string, max int) []byte {
	l := d.uvarint(what + " length")
	switch {
	case d.err != nil:
		return nil
	case l > uint64(max):
		d.err = invalidTicket("%s is %d bytes, at most %d allowed", what, l, max)
		return nil
	case l > uint64(len(d.b)):
		d.err = invalidTicket("ticket is truncated: %s is cut off", what)
		return nil
	}
	out := d.b[:l:l]
	d.b = d.b[l:]
	return out
}

// validDevicePeerID accepts the peer ID of an Ed25519 key in its canonical
// (identity multihash) form: the only kind of key a device has.
func validDevicePeerID(b []byte) error {
	if len(b) == 0 {
		return errors.New("empty peer ID")
	}
	if len(b) > maxPeerIDLen {
		return fmt.Errorf("peer ID is %d bytes, at most %d allowed", len(b), maxPeerIDLen)
	}
	pub, err := identity.PublicKeyFromPeerID(peer.ID(b))
	if err != nil {
		return fmt.Errorf("the peer ID is not a device's: %v", err)
	}
	if id, err := identity.PeerID(pub); err != nil || string(id) != string(b) {
		return errors.New("the peer ID is not in canonical form")
	}
	return nil
}

// normalizeTicket drops ASCII whitespace and lowers ASCII letters; anything
// else is left for the base32 check to refuse.
func normalizeTicket(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r':
		case 'A' <= c && c <= 'Z':
			b.WriteByte(c + ('a' - 'A'))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
