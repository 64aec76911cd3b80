package ticket

import (
	"bytes"
	"encoding/base32"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/seedfleet/seedfleet/internal/wire"
)

func goldenBlob(t testing.TB) BlobTicket {
	return BlobTicket{
		Hash:   blake3Hash("seedfleet golden blob"),
		Size:   1_234_567,
		Format: FormatCollection,
		Peers: []peer.AddrInfo{
			{ID: seededPeerID(t, 1), Addrs: addrs(t, "/ip4/127.0.0.1/tcp/7400", "/ip4/127.0.0.1/udp/7400/quic-v1")},
			{ID: seededPeerID(t, 2), Addrs: addrs(t, "/dns4/seed.example.com/tcp/443/wss")},
		},
	}
}

func goldenDoc(t testing.TB) DocTicket {
	ns, _ := namespaceKey(7)
	return DocTicket{
		Namespace: ns,
		Peers:     []peer.AddrInfo{{ID: seededPeerID(t, 1), Addrs: addrs(t, "/ip4/127.0.0.1/tcp/7400")}},
	}
}

func goldenWrite(t testing.TB) DocTicket {
	_, secret := namespaceKey(7)
	w, _, err := goldenDoc(t).WithWriteSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// The text of fixed tickets. If one of these changes, the ticket format
// changed: tickets already handed out would stop parsing. Bump Version instead.
const (
	goldenBlobText  = "blobaeqnyfy3ln4g7slr7ie3w5nkpwsodnliuvjdhsrpholmw55uoiwuifuhvvfqcargaasaqaisecfiry65oqe7dfp5klns2pf2lvzmuzyjx4ozieq36n2iqanub5xvyaqiar7qaaabayooqcyep4aaaamraioortideyacicabciqicolxb2uh2f27k2rvizwdjr7mzs4nrki3j3rxujo7md23r7e3hfabc43ba43fmvsc4zlymfwxa3dffzrw63igag554aynhm4ck"
	goldenDocText   = "docaeqoustmmprjyuqkx32va6ytf3c7tfkho2xl5pt3sjbb52tjcrdnelabeyacicabciqivchd3v2at4mv7vjnwlj4xjoxfsthbg7r3fasdpzxjcabwqhw6xabbach6aaaaedbz2aasrhvc2y"
	goldenWriteText = "docaeqoustmmprjyuqkx32va6ytf3c7tfkho2xl5pt3sjbb52tjcrdnelabeyacicabciqivchd3v2at4mv7vjnwlj4xjoxfsthbg7r3fasdpzxjcabwqhw6xabbach6aaaaedbz2baa4dqobyha4dqobyha4dqobyha4dqobyha4dqobyha4dqobyha4dxn2huim"
)

func TestGoldenText(t *testing.T) {
	blob, doc, write := goldenBlob(t), goldenDoc(t), goldenWrite(t)
	for _, tc := range []struct {
		name  string
		got   string
		want  string
		equal func(any) bool
	}{
		{"blob", blob.String(), goldenBlobText, func(v any) bool { b, ok := v.(BlobTicket); return ok && b.Equal(blob) }},
		{"doc", doc.String(), goldenDocText, func(v any) bool { d, ok := v.(DocTicket); return ok && d.Equal(doc) && !d.HasWrite() }},
		{"write", write.String(), goldenWriteText, func(v any) bool { d, ok := v.(DocTicket); return ok && d.Equal(write) && d.HasWrite() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("String() changed:\n got %s\nwant %s", tc.got, tc.want)
			}
			v, err := Parse(tc.want)
			if err != nil {
				t.Fatalf("Parse(golden): %v", err)
			}
			if !tc.equal(v) {
				t.Errorf("Parse(golden) = %+v, not the fixture", v)
			}
		})
	}
}

// TestBinaryLayout spells out the version 1 layout byte by byte, independently
// of the encoder, for the golden blob ticket.
func TestBinaryLayout(t *testing.T) {
	tk := goldenBlob(t)
	var want []byte
	want = append(want, 1)                         // version
	want = append(want, 32)                        // hash length
	want = append(want, tk.Hash[:]...)             // hash
	want = append(want, 0x87, 0xad, 0x4b)          // size 1234567 as uvarint
	want = append(want, 1)                         // format: collection
	want = append(want, 2)                         // peer count
	want = append(want, 38)                        // peer ID length (identity multihash of an Ed25519 key)
	want = append(want, []byte(tk.Peers[0].ID)...) // peer ID
	want = append(want, 2)                         // address count
	want = append(want, 8)                         // /ip4/127.0.0.1/tcp/7400 is 8 bytes
	want = append(want, 0x04, 127, 0, 0, 1, 0x06, 0x1c, 0xe8)
	want = append(want, 11)                                                     // /ip4/127.0.0.1/udp/7400/quic-v1 is 11 bytes
	want = append(want, 0x04, 127, 0, 0, 1, 0x91, 0x02, 0x1c, 0xe8, 0xcd, 0x03) // udp = 0x0111, quic-v1 = 0x01cd as uvarints
	want = append(want, 38)
	want = append(want, []byte(tk.Peers[1].ID)...)
	want = append(want, 1)
	dns := tk.Peers[1].Addrs[0].Bytes()
	want = append(want, byte(len(dns)))
	want = append(want, dns...)
	sum := blake3Hash("blob" + string(want))
	want = append(want, sum[:4]...)

	// The text is RFC 4648 base32 without padding, in lower case.
	s := tk.String()
	if s != strings.ToLower(s) || !strings.HasPrefix(s, "blob") {
		t.Fatalf("text form %q is not lowercase with prefix \"blob\"", s)
	}
	got, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(s[len("blob"):]))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("binary form\n got %x\nwant %x", got, want)
	}
}

func TestBlobRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		size   uint64
		format Format
		peers  int
	}{
		{"raw one peer", 0, FormatRaw, 1},
		{"raw two peers", 1, FormatRaw, 2},
		{"collection three peers", 1 << 40, FormatCollection, 3},
		{"max size", math.MaxUint64, FormatRaw, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peers := samplePeers(t, tc.peers)
			tk, err := NewBlobTicket(blake3Hash(tc.name), tc.size, tc.format, peers)
			if err != nil {
				t.Fatal(err)
			}
			s := tk.String()
			if !strings.HasPrefix(s, "blob") || s != strings.ToLower(s) || strings.ContainsAny(s, "=018 \n") {
				t.Fatalf("text form %q: want lowercase \"blob\" + base32 without padding", s)
			}
			got, err := ParseBlobTicket(s)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tk) || got.Hash != blake3Hash(tc.name) || got.Size != tc.size || got.Format != tc.format || len(got.Peers) != tc.peers {
				t.Fatalf("round trip\n got %+v\nwant %+v", got, tk)
			}
			for i, p := range got.Peers {
				if p.ID != peers[i].ID || len(p.Addrs) != len(peers[i].Addrs) {
					t.Fatalf("peer %d: got %v, want %v", i, p, peers[i])
				}
				for j := range p.Addrs {
					if p.Addrs[j].String() != peers[i].Addrs[j].String() {
						t.Fatalf("peer %d address %d: got %s, want %s", i, j, p.Addrs[j], peers[i].Addrs[j])
					}
				}
			}
			if again := got.String(); again != s {
				t.Fatalf("re-encoding differs:\n%s\n%s", again, s)
			}
			any, err := Parse(s)
			if err != nil {
				t.Fatal(err)
			}
			if b, ok := any.(BlobTicket); !ok || !b.Equal(tk) {
				t.Fatalf("Parse = %T %+v", any, any)
			}
			text, err := tk.MarshalText()
			if err != nil || string(text) != s {
				t.Fatalf("MarshalText = %q, %v", text, err)
			}
			var u BlobTicket
			if err := u.UnmarshalText(text); err != nil || !u.Equal(tk) {
				t.Fatalf("UnmarshalText: %v", err)
			}
		})
	}
}

func TestDocRoundTrip(t *testing.T) {
	ns, secret := namespaceKey(42)
	for _, tc := range []struct {
		name  string
		peers int
		write bool
	}{
		{"no peers", 0, false},
		{"one peer", 1, false},
		{"two peers", 2, false},
		{"three peers", 3, false},
		{"write one peer", 1, true},
		{"write three peers", 3, true},
		{"write no peers", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tk, err := NewDocTicket(ns, samplePeers(t, tc.peers))
			if err != nil {
				t.Fatal(err)
			}
			if tc.write {
				if tk, _, err = tk.WithWriteSecret(secret); err != nil {
					t.Fatal(err)
				}
			}
			s := tk.String()
			if !strings.HasPrefix(s, "doc") || s != strings.ToLower(s) {
				t.Fatalf("text form %q", s)
			}
			got, err := ParseDocTicket(s)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tk) || got.Namespace != ns || len(got.Peers) != tc.peers || got.HasWrite() != tc.write {
				t.Fatalf("round trip\n got %+v\nwant %+v", got, tk)
			}
			if tc.write && !bytes.Equal(got.WriteSecret, secret) {
				t.Fatalf("write secret %x, want %x", got.WriteSecret, secret)
			}
			if again := got.String(); again != s {
				t.Fatalf("re-encoding differs:\n%s\n%s", again, s)
			}
			any, err := Parse(s)
			if err != nil {
				t.Fatal(err)
			}
			if d, ok := any.(DocTicket); !ok || !d.Equal(tk) {
				t.Fatalf("Parse = %T %+v", any, any)
			}
			var u DocTicket
			if err := u.UnmarshalText([]byte(s)); err != nil || !u.Equal(tk) {
				t.Fatalf("UnmarshalText: %v", err)
			}
		})
	}
}

func TestCopyPasteDamageTolerated(t *testing.T) {
	blob := goldenBlob(t)
	write := goldenWrite(t)
	for _, base := range []struct {
		name string
		text string
		ok   func(any) bool
	}{
		{"blob", goldenBlobText, func(v any) bool { b, ok := v.(BlobTicket); return ok && b.Equal(blob) }},
		{"write", goldenWriteText, func(v any) bool { d, ok := v.(DocTicket); return ok && d.Equal(write) }},
	} {
		s := base.text
		for _, tc := range []struct {
			name string
			text string
		}{
			{"surrounding whitespace", "  \t\n" + s + " \r\n\n"},
			{"upper case", strings.ToUpper(s)},
			{"mixed case", mixCase(s)},
			{"wrapped at 64 with CRLF", wrap(s, 64, "\r\n")},
			{"wrapped at 1", wrap(s, 1, "\n")},
			{"groups of 4", wrap(s, 4, " ")},
			{"tabs, vertical tabs, form feeds", wrap(s, 7, "\t\v\f")},
			{"space after prefix", s[:3] + " " + s[3:]},
			{"upper wrapped and indented", "    " + wrap(strings.ToUpper(s), 40, "\n    ") + "\n"},
		} {
			t.Run(base.name+"/"+tc.name, func(t *testing.T) {
				v, err := Parse(tc.text)
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if !base.ok(v) {
					t.Fatalf("Parse = %+v, not the original ticket", v)
				}
				switch v.(type) {
				case BlobTicket:
					if _, err := ParseBlobTicket(tc.text); err != nil {
						t.Fatalf("ParseBlobTicket: %v", err)
					}
				case DocTicket:
					if _, err := ParseDocTicket(tc.text); err != nil {
						t.Fatalf("ParseDocTicket: %v", err)
					}
				}
			})
		}
	}
}

func mixCase(s string) string {
	b := []byte(s)
	for i := range b {
		if i%3 == 0 && 'a' <= b[i] && b[i] <= 'z' {
			b[i] -= 'a' - 'A'
		}
	}
	return string(b)
}

func wrap(s string, n int, sep string) string {
	var parts []string
	for len(s) > n {
		parts = append(parts, s[:n])
		s = s[n:]
	}
	return strings.Join(append(parts, s), sep)
}

// Valid building blocks for hand-made payloads.
type parts struct {
	hash, ns, secret []byte
	id1, id2         []byte
	addr1, addr2     []byte
}

func newParts(t *testing.T) parts {
	ns, secret := namespaceKey(9)
	h := blake3Hash("x")
	return parts{
		hash: h[:], ns: ns[:], secret: secret,
		id1:   []byte(seededPeerID(t, 1)),
		id2:   []byte(seededPeerID(t, 2)),
		addr1: addrs(t, "/ip4/127.0.0.1/tcp/7400")[0].Bytes(),
		addr2: addrs(t, "/ip6/::1/udp/7400/quic-v1")[0].Bytes(),
	}
}

// blobPayload returns a valid blob payload with its peers section replaced by
// peers (which starts with the peer count) and rest appended.
func (p parts) blobPayload(peers []byte, rest ...byte) []byte {
	b := pBytes(pVersion(1), p.hash)
	b = pUvarint(b, 1000)
	b = append(b, byte(FormatRaw))
	b = append(b, peers...)
	return append(b, rest...)
}

func (p parts) onePeer() []byte { return pPeer(pUvarint(nil, 1), p.id1, p.addr1) }

func (p parts) docPayload(peers []byte, secret []byte) []byte {
	b := pBytes(pVersion(1), p.ns)
	b = append(b, peers...)
	return pBytes(b, secret)
}

func TestHandBuiltPayloadsAreValid(t *testing.T) {
	// The refusal tests below change one thing in these payloads; make sure
	// the unchanged ones parse, or those tests would prove nothing.
	p := newParts(t)
	if _, err := ParseBlobTicket(seal("blob", p.blobPayload(p.onePeer()))); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseDocTicket(seal("doc", p.docPayload(p.onePeer(), nil))); err != nil {
		t.Fatal(err)
	}
	if d, err := ParseDocTicket(seal("doc", p.docPayload(p.onePeer(), p.secret))); err != nil || !d.HasWrite() {
		t.Fatal(err)
	}
}

func TestRefusals(t *testing.T) {
	p := newParts(t)
	blob := func(payload []byte) string { return seal("blob", payload) }
	doc := func(payload []byte) string { return seal("doc", payload) }
	peersN := func(n int) []byte {
		b := pUvarint(nil, uint64(n))
		for i := range n {
			b = pPeer(b, []byte(seededPeerID(t, byte(100+i))), p.addr1)
		}
		return b
	}
	addrsN := func(n int) []byte {
		b := pUvarint(nil, 1)
		b = wire.AppendLenBytes(b, p.id1)
		b = pUvarint(b, uint64(n))
		for i := range n {
			b = wire.AppendLenBytes(b, addrs(t, fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 1000+i))[0].Bytes())
		}
		return b
	}
	withPeerID := func(id []byte) []byte { return pPeer(pUvarint(nil, 1), id, p.addr1) }
	withAddr := func(a []byte) []byte { return pPeer(pUvarint(nil, 1), p.id1, a) }
	good := blob(p.blobPayload(p.onePeer()))
	goodRaw, _ := b32.DecodeString(good[4:])
	flipped := bytes.Clone(goodRaw)
	flipped[len(flipped)-1] ^= 1
	_, otherSecret := namespaceKey(10)
	identityGarbage := append([]byte{0x00, 36}, bytes.Repeat([]byte{0xff}, 36)...)
	sha1ID := append([]byte{0x11, 20}, make([]byte, 20)...)

	for _, tc := range []struct {
		name string
		text string
		want string // in the error message
	}{
		{"empty", "", "empty ticket"},
		{"only whitespace", " \n\t ", "empty ticket"},
		{"unknown prefix", "node" + good[4:], "unknown ticket prefix"},
		{"no prefix", good[4:], "unknown ticket prefix"},
		{"url", "https://example.com/blobaaaa", "unknown ticket prefix"},
		{"bad base32 digit", good[:20] + "1" + good[21:], `character '1' at position 21 (not counting whitespace)`},
		{"bad base32 padding", good + "======", `character '='`},
		{"bad base32 non-ASCII", good[:10] + "é" + good[10:], "non-ASCII character at position 11"},
		{"bad base32 non-breaking space", good[:10] + "\u00a0" + good[10:], "non-ASCII character at position 11"},
		{"bad base32 length", "blobaeb", "cannot have 3 characters"},
		{"last byte missing", "blob" + b32.EncodeToString(goodRaw[:len(goodRaw)-1]), "checksum mismatch"},
		{"unused bits set", nonCanonicalTail(t, good), "last character"},
		{"nothing after prefix", "blob", "nothing follows"},
		{"too short for checksum", "blob" + b32.EncodeToString([]byte{1, 2, 3}), "too short"},
		{"unsupported version 0", blob(append(pVersion(0), p.blobPayload(p.onePeer())[1:]...)), "unsupported ticket version 0"},
		{"unsupported version 2", blob(append(pVersion(2), p.blobPayload(p.onePeer())[1:]...)), "unsupported ticket version 2"},
		{"checksum mismatch", "blob" + b32.EncodeToString(flipped), "ticket checksum mismatch: the ticket was altered or mistyped"},
		{"checksum of the other kind", "blob" + doc(p.blobPayload(p.onePeer()))[3:], "ticket checksum mismatch"},
		{"truncated in hash", blob(pBytes(pVersion(1), p.hash)[:20]), "truncated: hash is cut off"},
		{"truncated before size", blob(pBytes(pVersion(1), p.hash)), "truncated: size is cut off"},
		{"truncated in size varint", blob(append(pBytes(pVersion(1), p.hash), 0x80)), "truncated: size is cut off"},
		{"truncated before format", blob(pUvarint(pBytes(pVersion(1), p.hash), 5)), "truncated: format is cut off"},
		{"truncated before peers", blob(p.blobPayload(nil)), "truncated: peer count is cut off"},
		{"truncated in peer ID", blob(p.blobPayload(p.onePeer()[:10])), "truncated: peer 1 ID is cut off"},
		{"truncated before address count", blob(p.blobPayload(wire.AppendLenBytes(pUvarint(nil, 1), p.id1))), "truncated: peer 1 address count is cut off"},
		{"truncated in address", blob(p.blobPayload(p.onePeer()[:len(p.onePeer())-1])), "truncated: peer 1 address 1 is cut off"},
		{"truncated before second peer", blob(p.blobPayload(append(pUvarint(nil, 2), p.onePeer()[1:]...))), "truncated: peer 2 ID length is cut off"},
		{"doc truncated before write secret", doc(p.docPayload(p.onePeer(), nil)[:len(p.docPayload(p.onePeer(), nil))-1]), "truncated: write secret length is cut off"},
		{"doc truncated in write secret", doc(p.docPayload(p.onePeer(), p.secret)[:60]), "truncated"},
		{"trailing byte", blob(p.blobPayload(p.onePeer(), 0)), "1 trailing bytes"},
		{"doc trailing bytes", doc(append(p.docPayload(p.onePeer(), nil), 1, 2, 3)), "3 trailing bytes"},
		{"too many peers", blob(p.blobPayload(peersN(MaxPeers + 1))), "too many peers: 17"},
		{"huge peer count", blob(p.blobPayload(pUvarint(nil, 1<<62))), "too many peers"},
		{"doc too many peers", doc(p.docPayload(peersN(MaxPeers+1), nil)), "too many peers"},
		{"too many addresses", blob(p.blobPayload(addrsN(MaxAddrsPerPeer + 1))), "too many addresses: 17"},
		{"huge address count", blob(p.blobPayload(pUvarint(wire.AppendLenBytes(pUvarint(nil, 1), p.id1), math.MaxUint64))), "too many addresses"},
		{"hash too long", blob(append(pBytes(pVersion(1), make([]byte, 33)), 0, 0)), "hash is 33 bytes, at most 32"},
		{"hash too short", blob(pBytes(pVersion(1), make([]byte, 31))), "hash is 31 bytes, want 32"},
		{"hash length huge", blob(pUvarint(pVersion(1), 1<<50)), "hash is 1125899906842624 bytes"},
		{"namespace too long", doc(pBytes(pVersion(1), make([]byte, 40))), "namespace is 40 bytes, at most 32"},
		{"peer ID too long", blob(p.blobPayload(withPeerID(make([]byte, MaxPeerIDLen+1)))), "peer 1 ID is 65 bytes, at most 64"},
		{"address too long", blob(p.blobPayload(withAddr(make([]byte, MaxAddrLen+1)))), "peer 1 address 1 is 513 bytes, at most 512"},
		{"write secret too long", doc(p.docPayload(p.onePeer(), make([]byte, 33))), "write secret is 33 bytes, at most 32"},
		{"write secret too short", doc(p.docPayload(p.onePeer(), make([]byte, 16))), "write secret is 16 bytes, want the 32"},
		{"write secret of another vault", doc(p.docPayload(p.onePeer(), otherSecret)), "not the key of this vault"},
		{"empty peer ID", blob(p.blobPayload(withPeerID(nil))), "empty peer ID"},
		{"peer ID not a multihash", blob(p.blobPayload(withPeerID([]byte{0x12, 0x20, 1, 2}))), "invalid peer ID"},
		{"peer ID with unsupported hash", blob(p.blobPayload(withPeerID(sha1ID))), "neither identity nor sha2-256"},
		{"peer ID with garbage key", blob(p.blobPayload(withPeerID(identityGarbage))), "the key it holds does not decode"},
		{"empty multiaddr", blob(p.blobPayload(withAddr(nil))), "empty multiaddr"},
		{"invalid multiaddr", blob(p.blobPayload(withAddr([]byte{0xff, 0xff, 0x03}))), "invalid multiaddr"},
		{"multiaddr cut short", blob(p.blobPayload(withAddr(p.addr1[:6]))), "invalid multiaddr"},
		{"non-minimal varint", blob(append(pBytes(pVersion(1), p.hash), 0x80, 0x00)), "not a minimal varint"},
		{"varint overflow", blob(append(append(pBytes(pVersion(1), p.hash), bytes.Repeat([]byte{0xff}, 9)...), 0x02)), "overflows 64 bits"},
		{"varint too long", blob(append(pBytes(pVersion(1), p.hash), bytes.Repeat([]byte{0xff}, 11)...)), "overflows 64 bits"},
		{"no peers", blob(p.blobPayload(pUvarint(nil, 0))), "needs at least one peer"},
		{"unknown format", blob(append(pUvarint(pBytes(pVersion(1), p.hash), 1), 2)), "unknown blob format 2"},
		{"duplicate peer", blob(p.blobPayload(append(pPeer(pUvarint(nil, 2), p.id1, p.addr1), pPeer(nil, p.id1, p.addr2)...))), "listed twice"},
		{"duplicate address", blob(p.blobPayload(pPeer(pUvarint(nil, 1), p.id1, p.addr1, p.addr2, p.addr1))), "listed twice"},
		{"text too long", strings.Repeat("a", MaxTextLen+1), "too long"},
		{"binary too long", "blob" + strings.Repeat("a", (MaxEncodedLen+1)*8/5+1), "longer than 16384 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errs []error
			if strings.HasPrefix(normalize(tc.text), "doc") {
				_, err := ParseDocTicket(tc.text)
				errs = append(errs, err)
			} else {
				_, err := ParseBlobTicket(tc.text)
				errs = append(errs, err)
			}
			_, err := Parse(tc.text)
			errs = append(errs, err)
			for _, err := range errs {
				if err == nil {
					t.Fatal("accepted")
				}
				if !errors.Is(err, ErrInvalidTicket) {
					t.Fatalf("error %v does not wrap ErrInvalidTicket", err)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %q does not say %q", err, tc.want)
				}
				if len(tc.text) > 24 && strings.Contains(err.Error(), tc.text[4:24]) {
					t.Fatalf("error %q quotes the ticket", err)
				}
			}
		})
	}
}

// nonCanonicalTail sets unused low bits in the last character of s, which the
// base32 decoder alone would ignore.
func nonCanonicalTail(t *testing.T, s string) string {
	t.Helper()
	body := s[4:]
	if len(body)%8 == 0 {
		t.Fatalf("test ticket %s has no unused bits", s)
	}
	last := strings.IndexByte(b32Alphabet, body[len(body)-1])
	alt := b32Alphabet[last|1]
	if last|1 == last {
		t.Fatalf("test ticket %s already ends with an odd character", s)
	}
	return s[:len(s)-1] + string(alt)
}

const b32Alphabet = "abcdefghijklmnopqrstuvwxyz234567"

func TestWrongKind(t *testing.T) {
	if _, err := ParseBlobTicket(goldenDocText); !errors.Is(err, ErrInvalidTicket) || !strings.Contains(err.Error(), `this is a "doc" ticket, not a "blob" ticket`) {
		t.Fatalf("ParseBlobTicket(doc ticket): %v", err)
	}
	if _, err := ParseDocTicket(strings.ToUpper(goldenBlobText)); !errors.Is(err, ErrInvalidTicket) || !strings.Contains(err.Error(), `this is a "blob" ticket, not a "doc" ticket`) {
		t.Fatalf("ParseDocTicket(blob ticket): %v", err)
	}
}

// TestTruncatedEverywhere cuts a valid payload at every byte and seals it with
// a correct checksum: the decoder itself must notice.
func TestTruncatedEverywhere(t *testing.T) {
	blob, err := NewBlobTicket(blake3Hash("t"), 300, FormatRaw, samplePeers(t, 3))
	if err != nil {
		t.Fatal(err)
	}
	write, _, err := goldenDoc(t).WithWriteSecret(func() []byte { _, s := namespaceKey(7); return s }())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		prefix  string
		payload []byte
		parse   func(string) error
	}{
		{"blob", blob.appendBinary(nil), func(s string) error { _, err := ParseBlobTicket(s); return err }},
		{"doc", write.appendBinary(nil), func(s string) error { _, err := ParseDocTicket(s); return err }},
	} {
		if err := tc.parse(seal(tc.prefix, tc.payload)); err != nil {
			t.Fatalf("%s: the whole payload does not parse: %v", tc.prefix, err)
		}
		for n := 1; n < len(tc.payload); n++ {
			err := tc.parse(seal(tc.prefix, tc.payload[:n]))
			if !errors.Is(err, ErrInvalidTicket) || !strings.Contains(err.Error(), "truncated") {
				t.Fatalf("%s cut to %d of %d bytes: %v", tc.prefix, n, len(tc.payload), err)
			}
		}
	}
}

// TestSingleCharacterDamage changes one character of a ticket in every
// position in several ways: no damaged ticket may parse.
func TestSingleCharacterDamage(t *testing.T) {
	blob, err := NewBlobTicket(blake3Hash("damage"), 123456, FormatCollection, samplePeers(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		text string
		same func(string) bool // parses to the original ticket
	}{
		{"blob", blob.String(), func(s string) bool { b, err := ParseBlobTicket(s); return err == nil && b.Equal(blob) }},
		{"doc", goldenDocText, func(s string) bool { d, err := ParseDocTicket(s); return err == nil && d.Equal(goldenDoc(t)) }},
		{"write", goldenWriteText, func(s string) bool { d, err := ParseDocTicket(s); return err == nil && d.Equal(goldenWrite(t)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.text
			tried, accepted := 0, 0
			check := func(what, damaged string) {
				tried++
				v, err := Parse(damaged)
				if err == nil {
					accepted++
					if !tc.same(damaged) {
						t.Errorf("%s: damaged ticket parsed to a different ticket %+v", what, v)
					} else {
						t.Errorf("%s: damaged ticket parsed (to the same ticket)", what)
					}
					return
				}
				if !errors.Is(err, ErrInvalidTicket) {
					t.Errorf("%s: %v does not wrap ErrInvalidTicket", what, err)
				}
			}
			for i := range len(s) {
				for _, c := range []byte("abmqz2457") {
					if c == s[i] {
						continue
					}
					check(fmt.Sprintf("position %d %q→%q", i, s[i], c), s[:i]+string(c)+s[i+1:])
				}
				check(fmt.Sprintf("delete %d", i), s[:i]+s[i+1:])
				check(fmt.Sprintf("insert at %d", i), s[:i]+"q"+s[i:])
				if i+1 < len(s) && s[i] != s[i+1] {
					check(fmt.Sprintf("swap %d", i), s[:i]+string(s[i+1])+string(s[i])+s[i+2:])
				}
			}
			if accepted > 0 || tried < 8*len(s) {
				t.Fatalf("%d of %d damaged tickets parsed", accepted, tried)
			}
		})
	}
}

func TestWriteSecretOnlyWhenAsked(t *testing.T) {
	ns, secret := namespaceKey(77)
	peers := samplePeers(t, 2)
	read, err := NewDocTicket(ns, peers)
	if err != nil {
		t.Fatal(err)
	}
	if read.HasWrite() || read.WriteSecret != nil {
		t.Fatal("NewDocTicket made a write ticket")
	}
	write, warning, err := read.WithWriteSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	if warning != WriteWarning || !strings.Contains(warning, "write to the vault") || !strings.Contains(warning, "your own devices") {
		t.Fatalf("warning %q", warning)
	}
	if !write.HasWrite() || read.HasWrite() {
		t.Fatal("WithWriteSecret must return a write ticket and leave the read ticket alone")
	}
	secret[0] ^= 0xff // the ticket keeps its own copy
	if write.WriteSecret[0] == secret[0] {
		t.Fatal("WithWriteSecret did not copy the seed")
	}
	secret[0] ^= 0xff

	rs, ws := read.String(), write.String()
	if rs == ws {
		t.Fatal("read and write tickets have the same text")
	}
	if len(ws) <= len(rs) {
		t.Fatal("write ticket is not longer than the read ticket")
	}
	// The secret must not be in the read ticket, in any encoding; it must be in
	// the write ticket (or this check would prove nothing).
	contains := func(text string) bool {
		raw, err := b32.DecodeString(text[3:])
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Contains(raw, secret)
	}
	if contains(rs) {
		t.Fatal("read ticket carries the write secret")
	}
	if !contains(ws) {
		t.Fatal("write ticket does not carry the write secret")
	}
	parsed, err := ParseDocTicket(rs)
	if err != nil || parsed.HasWrite() || parsed.WriteSecret != nil {
		t.Fatalf("parsed read ticket: %+v, %v", parsed, err)
	}
	if ro := write.ReadOnly(); ro.HasWrite() || ro.String() != rs {
		t.Fatal("ReadOnly does not give back the read ticket")
	}
	if parsed, err := ParseDocTicket(ws); err != nil || !bytes.Equal(parsed.WriteSecret, secret) {
		t.Fatalf("parsed write ticket: %v", err)
	}

	_, other := namespaceKey(78)
	for _, tc := range []struct {
		name string
		seed []byte
		want string
	}{
		{"empty", nil, "empty write secret"},
		{"short", secret[:31], "31 bytes"},
		{"full private key", append(bytes.Clone(secret), ns[:]...), "64 bytes"},
		{"another vault's key", other, "not the key of this vault"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, warn, err := read.WithWriteSecret(tc.seed)
			if !errors.Is(err, ErrInvalidTicket) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if w.HasWrite() || warn != "" {
				t.Fatal("refused WithWriteSecret returned a ticket or a warning")
			}
		})
	}
}

func TestBuildRefusals(t *testing.T) {
	ns, _ := namespaceKey(5)
	p := samplePeers(t, 1)[0]
	many := func(n int) []peer.AddrInfo {
		out := make([]peer.AddrInfo, n)
		for i := range out {
			out[i] = peer.AddrInfo{ID: seededPeerID(t, byte(i+1)), Addrs: p.Addrs}
		}
		return out
	}
	var tooManyAddrs []ma.Multiaddr
	for i := range MaxAddrsPerPeer + 1 {
		tooManyAddrs = append(tooManyAddrs, addrs(t, fmt.Sprintf("/ip4/10.0.0.1/tcp/%d", i+1))...)
	}
	long := addrs(t, "/dns/"+strings.Repeat("a", 250)+"/tcp/1")[0]
	var big []peer.AddrInfo
	for i := range MaxPeers {
		pi := peer.AddrInfo{ID: seededPeerID(t, byte(i+1))}
		for j := range MaxAddrsPerPeer {
			pi.Addrs = append(pi.Addrs, addrs(t, fmt.Sprintf("/dns/%s%d/tcp/1", strings.Repeat("a", 200), j))...)
		}
		big = append(big, pi)
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"blob without peers", func() error { _, err := NewBlobTicket([32]byte{}, 1, FormatRaw, nil); return err }(), "at least one peer"},
		{"blob with unknown format", func() error { _, err := NewBlobTicket([32]byte{}, 1, 9, many(1)); return err }(), "unknown blob format 9"},
		{"blob with too many peers", func() error { _, err := NewBlobTicket([32]byte{}, 1, FormatRaw, many(MaxPeers+1)); return err }(), "too many peers"},
		{"doc with too many peers", func() error { _, err := NewDocTicket(ns, many(MaxPeers+1)); return err }(), "too many peers"},
		{"too many addresses", func() error {
			_, err := NewDocTicket(ns, []peer.AddrInfo{{ID: p.ID, Addrs: tooManyAddrs}})
			return err
		}(), "too many addresses"},
		{"empty peer ID", func() error { _, err := NewDocTicket(ns, []peer.AddrInfo{{Addrs: p.Addrs}}); return err }(), "empty peer ID"},
		{"bad peer ID", func() error {
			_, err := NewDocTicket(ns, []peer.AddrInfo{{ID: peer.ID("not a multihash"), Addrs: p.Addrs}})
			return err
		}(), "invalid peer ID"},
		{"nil multiaddr", func() error {
			_, err := NewDocTicket(ns, []peer.AddrInfo{{ID: p.ID, Addrs: []ma.Multiaddr{nil}}})
			return err
		}(), "empty multiaddr"},
		{"duplicate peer in a literal", func() error {
			_, err := DocTicket{Namespace: ns, Peers: []peer.AddrInfo{p, p}}.MarshalText()
			return err
		}(), "listed twice"},
		{"duplicate address in a literal", func() error {
			_, err := DocTicket{Namespace: ns, Peers: []peer.AddrInfo{{ID: p.ID, Addrs: append(p.Addrs, p.Addrs[0])}}}.MarshalText()
			return err
		}(), "listed twice"},
		{"long address is fine", func() error {
			_, err := NewDocTicket(ns, []peer.AddrInfo{{ID: p.ID, Addrs: []ma.Multiaddr{long}}})
			return err
		}(), ""},
		{"too big in total", func() error { _, err := NewDocTicket(ns, big); return err }(), "at most 16384 fit"},
		{"MarshalText of an invalid literal", func() error {
			_, err := BlobTicket{Format: FormatRaw}.MarshalText()
			return err
		}(), "at least one peer"},
		{"MarshalText of a literal with a bad secret", func() error {
			_, err := DocTicket{Namespace: ns, WriteSecret: []byte{1}}.MarshalText()
			return err
		}(), "write secret is 1 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == "" {
				if tc.err != nil {
					t.Fatal(tc.err)
				}
				return
			}
			if !errors.Is(tc.err, ErrInvalidTicket) || !strings.Contains(tc.err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", tc.err, tc.want)
			}
		})
	}
}

func TestConstructorsMergePeers(t *testing.T) {
	a, b := randomPeerID(t), randomPeerID(t)
	x := addrs(t, "/ip4/127.0.0.1/tcp/1", "/ip4/127.0.0.1/tcp/2", "/ip4/127.0.0.1/tcp/3")
	in := []peer.AddrInfo{
		{ID: a, Addrs: x[:1]},
		{ID: b, Addrs: x[1:2]},
		{ID: a, Addrs: x[:2]}, // x[0] again, and a new address
		{ID: a},
	}
	want := []peer.AddrInfo{{ID: a, Addrs: x[:2]}, {ID: b, Addrs: x[1:2]}}
	blob, err := NewBlobTicket([32]byte{}, 1, FormatRaw, in)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := NewDocTicket([32]byte{}, in)
	if err != nil {
		t.Fatal(err)
	}
	if !peersEqual(blob.Peers, want) || !peersEqual(doc.Peers, want) {
		t.Fatalf("merged peers\n got %v\n     %v\nwant %v", blob.Peers, doc.Peers, want)
	}
	if len(in[0].Addrs) != 1 {
		t.Fatal("merging changed the caller's slices")
	}
}

func TestConstructorsCopyPeers(t *testing.T) {
	peers := samplePeers(t, 2)
	tk, err := NewBlobTicket([32]byte{1}, 1, FormatRaw, peers)
	if err != nil {
		t.Fatal(err)
	}
	before := tk.String()
	peers[0].Addrs[0] = addrs(t, "/ip4/1.1.1.1/tcp/1")[0]
	peers[1] = peers[0]
	if tk.String() != before {
		t.Fatal("NewBlobTicket shares the caller's peer slices")
	}
}

func TestFormatString(t *testing.T) {
	for f, want := range map[Format]string{FormatRaw: "raw", FormatCollection: "collection", 7: "format(7)"} {
		if f.String() != want {
			t.Errorf("Format(%d).String() = %q, want %q", f, f.String(), want)
		}
	}
}
