package ticket

import (
	"bytes"
	"encoding/base32"
	"encoding/binary"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/zeebo/blake3"

	"github.com/seedfleet/seedfleet/internal/wire"
)

// Binary form (version 1). uvarint is an unsigned LEB128 varint in its
// shortest form; bytes(x) is uvarint(len(x)) followed by x.
//
//	blob payload: 0x01 | bytes(hash: 32) | uvarint(size) | format: 1 byte | peers
//	doc payload:  0x01 | bytes(namespace: 32) | peers | bytes(write secret: 0 or 32)
//	peers:        uvarint(n) then n × ( bytes(peer ID) | uvarint(m) | m × bytes(multiaddr) )
//	binary form:  payload | checksum: first 4 bytes of BLAKE3(prefix | payload)
//
// The text form is the prefix followed by the binary form in RFC 4648 base32
// with the lowercase alphabet and no padding. The encoding is canonical: a
// text that parses re-encodes to itself once whitespace is removed and letters
// are lowered.

const checksumLen = 4

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func checksum(prefix string, payload []byte) [checksumLen]byte {
	full := blake3.Sum256(append([]byte(prefix), payload...))
	return [checksumLen]byte(full[:checksumLen])
}

// seal returns the text form of a payload.
func seal(prefix string, payload []byte) string {
	sum := checksum(prefix, payload)
	return prefix + b32.EncodeToString(append(payload[:len(payload):len(payload)], sum[:]...))
}

func appendPeers(b []byte, peers []peer.AddrInfo) []byte {
	b = binary.AppendUvarint(b, uint64(len(peers)))
	for _, p := range peers {
		b = wire.AppendLenBytes(b, p.ID)
		b = binary.AppendUvarint(b, uint64(len(p.Addrs)))
		for _, a := range p.Addrs {
			b = wire.AppendLenBytes(b, a.Bytes())
		}
	}
	return b
}

func (t BlobTicket) appendBinary(b []byte) []byte {
	b = append(b, Version)
	b = wire.AppendLenBytes(b, t.Hash[:])
	b = binary.AppendUvarint(b, t.Size)
	b = append(b, byte(t.Format))
	return appendPeers(b, t.Peers)
}

func (t DocTicket) appendBinary(b []byte) []byte {
	b = append(b, Version)
	b = wire.AppendLenBytes(b, t.Namespace[:])
	b = appendPeers(b, t.Peers)
	return wire.AppendLenBytes(b, t.WriteSecret)
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// normalize drops ASCII whitespace and lowers ASCII letters. Anything else is
// left for the base32 decoder to refuse.
func normalize(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; isSpace(c) || 'A' <= c && c <= 'Z' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isSpace(c):
		case 'A' <= c && c <= 'Z':
			b = append(b, c+('a'-'A'))
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// prefixes are every ticket kind's, for telling one kind from another.
var prefixes = []string{BlobPrefix, DocPrefix, FleetPrefix, InvitePrefix}

func hasPrefix(s, prefix string) bool { return len(s) >= len(prefix) && s[:len(prefix)] == prefix }

func tooLong(n int) error {
	return invalid("text of %d bytes is too long for a ticket (at most %d)", n, MaxTextLen)
}

func unknownPrefix(n string) error {
	if n == "" {
		return invalid("empty ticket")
	}
	return invalid("unknown ticket prefix: a Seedfleet ticket starts with %q, %q, %q or %q", BlobPrefix, DocPrefix, FleetPrefix, InvitePrefix)
}

// open checks a ticket's text form up to its checksum and returns its payload
// (version byte included).
func open(prefix, s string) ([]byte, error) {
	if len(s) > MaxTextLen {
		return nil, tooLong(len(s))
	}
	n := normalize(s)
	if !hasPrefix(n, prefix) {
		for _, other := range prefixes {
			if other != prefix && hasPrefix(n, other) {
				return nil, invalid("this is a %q ticket, not a %q ticket", other, prefix)
			}
		}
		return nil, unknownPrefix(n)
	}
	body := n[len(prefix):]
	if b32.DecodedLen(len(body)) > MaxEncodedLen {
		return nil, invalid("ticket is longer than %d bytes", MaxEncodedLen)
	}
	for i := 0; i < len(body); i++ {
		if c := body[i]; !isB32(c) {
			at := len(prefix) + i + 1
			if c >= 0x80 {
				return nil, invalid("bad base32: a non-ASCII character at position %d (not counting whitespace); tickets contain only a-z and 2-7", at)
			}
			return nil, invalid("bad base32: character %q at position %d (not counting whitespace) is not used in tickets; they contain only a-z and 2-7", c, at)
		}
	}
	switch len(body) % 8 {
	case 1, 3, 6: // no number of bytes has this many base32 characters
		return nil, invalid("bad base32: a ticket cannot have %d characters after its prefix; part of it is missing or extra", len(body))
	}
	raw, err := b32.DecodeString(body)
	if err != nil {
		return nil, invalid("bad base32: %v", err)
	}
	if b32.EncodeToString(raw) != body {
		// Unused low bits of the last character are set: not what String makes.
		return nil, invalid("bad base32: the last character is not one a ticket can end with")
	}
	if len(raw) == 0 {
		return nil, invalid("ticket is truncated: nothing follows %q", prefix)
	}
	if raw[0] != Version {
		return nil, invalid("unsupported ticket version %d (this Seedfleet reads version %d; the ticket comes from a newer release, or is mistyped)", raw[0], Version)
	}
	if len(raw) < 1+checksumLen {
		return nil, invalid("ticket is truncated: %d bytes, too short for a version and a checksum", len(raw))
	}
	payload, sum := raw[:len(raw)-checksumLen], raw[len(raw)-checksumLen:]
	if want := checksum(prefix, payload); !bytes.Equal(sum, want[:]) {
		return nil, invalid("ticket checksum mismatch: the ticket was altered or mistyped")
	}
	return payload, nil
}

func isB32(c byte) bool { return 'a' <= c && c <= 'z' || '2' <= c && c <= '7' }

// reader decodes fields of a payload after its version byte.
type reader struct {
	b   []byte
	off int
}

func (r *reader) truncated(what string) error {
	return invalid("ticket is truncated: %s is cut off at byte %d", what, r.off)
}

func (r *reader) byte(what string) (byte, error) {
	if r.off >= len(r.b) {
		return 0, r.truncated(what)
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *reader) uvarint(what string) (uint64, error) {
	v, n := binary.Uvarint(r.b[r.off:])
	switch {
	case n == 0:
		return 0, r.truncated(what)
	case n < 0:
		return 0, invalid("%s at byte %d overflows 64 bits", what, r.off)
	case n != len(binary.AppendUvarint(nil, v)):
		return 0, invalid("%s at byte %d is not a minimal varint", what, r.off)
	}
	r.off += n
	return v, nil
}

// count reads a uvarint that must not exceed max; tooMany words the error.
func (r *reader) count(what string, max int, tooMany func(n uint64) error) (int, error) {
	n, err := r.uvarint(what)
	if err != nil {
		return 0, err
	}
	if n > uint64(max) {
		return 0, tooMany(n)
	}
	return int(n), nil
}

// bytes reads a length-prefixed field of at most max bytes. It returns a slice
// of the payload.
func (r *reader) bytes(what string, max int) ([]byte, error) {
	n, err := r.uvarint(what + " length")
	if err != nil {
		return nil, err
	}
	if n > uint64(max) {
		return nil, invalid("%s is %d bytes, at most %d allowed", what, n, max)
	}
	if uint64(len(r.b)-r.off) < n {
		return nil, r.truncated(what)
	}
	b := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return b, nil
}

// fixed reads a length-prefixed field that must be exactly len(dst) bytes.
func (r *reader) fixed(what string, dst []byte) error {
	b, err := r.bytes(what, len(dst))
	if err != nil {
		return err
	}
	if len(b) != len(dst) {
		return invalid("%s is %d bytes, want %d", what, len(b), len(dst))
	}
	copy(dst, b)
	return nil
}

func (r *reader) end() error {
	if r.off != len(r.b) {
		return invalid("%d trailing bytes after the last field", len(r.b)-r.off)
	}
	return nil
}

func (r *reader) peers() ([]peer.AddrInfo, error) {
	n, err := r.count("peer count", MaxPeers, func(n uint64) error {
		return invalid("too many peers: %d, at most %d allowed", n, MaxPeers)
	})
	if err != nil || n == 0 {
		return nil, err
	}
	peers := make([]peer.AddrInfo, n)
	for i := range peers {
		idb, err := r.bytes(fmt.Sprintf("peer %d ID", i+1), MaxPeerIDLen)
		if err != nil {
			return nil, err
		}
		if err := validPeerID(idb); err != nil {
			return nil, invalid("peer %d: %v", i+1, err)
		}
		id := peer.ID(idb)
		for _, q := range peers[:i] {
			if q.ID == id {
				return nil, invalid("peer %d: peer %s is listed twice", i+1, id)
			}
		}
		m, err := r.count(fmt.Sprintf("peer %d address count", i+1), MaxAddrsPerPeer, func(m uint64) error {
			return invalid("peer %s: too many addresses: %d, at most %d allowed", id, m, MaxAddrsPerPeer)
		})
		if err != nil {
			return nil, err
		}
		var addrs []ma.Multiaddr
		for j := range m {
			ab, err := r.bytes(fmt.Sprintf("peer %d address %d", i+1, j+1), MaxAddrLen)
			if err != nil {
				return nil, err
			}
			if err := ValidAddr(ab); err != nil {
				return nil, invalid("peer %s address %d: %v", id, j+1, err)
			}
			a, _ := ma.NewMultiaddrBytes(bytes.Clone(ab)) // validated above
			for _, prev := range addrs {
				if prev.Equal(a) {
					return nil, invalid("peer %s: address %s is listed twice", id, a)
				}
			}
			addrs = append(addrs, a)
		}
		peers[i] = peer.AddrInfo{ID: id, Addrs: addrs}
	}
	return peers, nil
}

func decodeBlob(payload []byte) (BlobTicket, error) {
	var t BlobTicket
	r := reader{b: payload, off: 1}
	if err := r.fixed("hash", t.Hash[:]); err != nil {
		return BlobTicket{}, err
	}
	var err error
	if t.Size, err = r.uvarint("size"); err != nil {
		return BlobTicket{}, err
	}
	f, err := r.byte("format")
	if err != nil {
		return BlobTicket{}, err
	}
	if t.Format = Format(f); !t.Format.valid() {
		return BlobTicket{}, invalid("unknown blob format %d (want 0 = raw or 1 = collection)", f)
	}
	if t.Peers, err = r.peers(); err != nil {
		return BlobTicket{}, err
	}
	if len(t.Peers) == 0 {
		return BlobTicket{}, invalid("a blob ticket needs at least one peer to fetch from")
	}
	if err := r.end(); err != nil {
		return BlobTicket{}, err
	}
	return t, nil
}

func decodeDoc(payload []byte) (DocTicket, error) {
	var t DocTicket
	r := reader{b: payload, off: 1}
	if err := r.fixed("namespace", t.Namespace[:]); err != nil {
		return DocTicket{}, err
	}
	var err error
	if t.Peers, err = r.peers(); err != nil {
		return DocTicket{}, err
	}
	secret, err := r.bytes("write secret", WriteSecretLen)
	if err != nil {
		return DocTicket{}, err
	}
	if err := r.end(); err != nil {
		return DocTicket{}, err
	}
	if err := checkWriteSecret(t.Namespace, secret); err != nil {
		return DocTicket{}, err
	}
	if len(secret) > 0 {
		t.WriteSecret = bytes.Clone(secret)
	}
	return t, nil
}
