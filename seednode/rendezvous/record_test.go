package rendezvous

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/seedfleet/seedfleet/seednode/identity"
)

// fixedKey is a device key from a fixed seed, for vectors.
func fixedKey(b byte) ed25519.PrivateKey { return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, 32)) }

var fixedTime = time.UnixMicro(1_767_225_600_123_456) // 2026-01-01T00:00:00.123456Z

func TestRecordVector(t *testing.T) {
	// Pinned encoding: a change here is a wire-format change and needs a
	// new RecordVersion.
	agent := identity.DIDKey(pubOf(fixedKey(1)))
	r, err := NewRecord(agent, "laptop", fixedKey(2), []ma.Multiaddr{
		mustAddr(t, "/ip4/127.0.0.1/tcp/7400"),
		mustAddr(t, "/ip6/::1/udp/7400/quic-v1"),
	}, fixedTime)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := "" +
		"01" + // version
		"38" + hex.EncodeToString([]byte(agent)) + // agent DID
		"06" + hex.EncodeToString([]byte("laptop")) + // context
		hex.EncodeToString(pubOf(fixedKey(2))) + // device key
		"0006474846222240" + // timestamp, µs, big endian
		"02" + // addresses
		"08" + "047f000001061ce8" + // /ip4/127.0.0.1/tcp/7400
		"17" + "290000000000000000000000000000000191021ce8cd03" // /ip6/::1/udp/7400/quic-v1
	if got := hex.EncodeToString(enc[:len(enc)-sigLen]); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
	if !bytes.Equal(enc[len(enc)-sigLen:], r.Signature[:]) {
		t.Fatal("encoding does not end with the signature")
	}
	signed, err := r.SignedBytes()
	if err != nil {
		t.Fatal(err)
	}
	wantSigned := append([]byte("seedfleet/rendezvous/record/v1\x00"), enc[:len(enc)-sigLen]...)
	if !bytes.Equal(signed, wantSigned) {
		t.Fatalf("signed bytes are not domain || encoding without signature:\n%x", signed)
	}
	// Ed25519 is deterministic: the signature is pinned too.
	const wantSig = "5de453463cca6b0da665d8042374786be01f21aeb4d3e9359b71da0668cc8b33" +
		"9343082c86f848acdffea1ad4eefde927a58d473dc239db597eae00f8e8c8808"
	if got := hex.EncodeToString(r.Signature[:]); got != wantSig {
		t.Fatalf("signature\n got %s\nwant %s", got, wantSig)
	}
	if !ed25519.Verify(pubOf(fixedKey(2)), wantSigned, r.Signature[:]) {
		t.Fatal("signature does not verify over the domain-separated encoding")
	}
	// Signing the encoding without the domain must not produce a valid
	// record: the domain is really part of what is signed.
	undomained := r
	copy(undomained.Signature[:], ed25519.Sign(fixedKey(2), enc[:len(enc)-sigLen]))
	if err := undomained.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("signature without domain separator: Verify = %v, want ErrBadSignature", err)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	agent := newAgent(t)
	key := mustKey(t)
	many := make([]ma.Multiaddr, MaxAddrs)
	for i := range many {
		many[i] = mustAddr(t, "/ip4/10.0.0."+string(rune('1'+i%9))+"/tcp/4001")
	}
	long := mustAddr(t, "/dns/"+strings.Repeat("a", MaxAddrLen-6)+"/tcp/1")
	if n := len(long.Bytes()); n != MaxAddrLen {
		t.Fatalf("test address is %d bytes, want %d", n, MaxAddrLen)
	}
	tests := []struct {
		name    string
		context string
		addrs   []ma.Multiaddr
	}{
		{"no addresses", "phone", nil},
		{"one", "laptop", []ma.Multiaddr{mustAddr(t, "/ip4/127.0.0.1/tcp/1")}},
		{"max addresses", "a.b_c-D9", many},
		{"max-length address", "x", []ma.Multiaddr{long}},
		{"circuit", strings.Repeat("c", MaxContextLen), []ma.Multiaddr{mustAddr(t, "/ip4/1.2.3.4/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRecord(agent, tc.context, key, tc.addrs, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Verify(); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			enc, err := r.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if len(enc) > maxRecordLen {
				t.Fatalf("encoding of %d bytes exceeds maxRecordLen %d", len(enc), maxRecordLen)
			}
			back, err := DecodeRecord(enc)
			if err != nil {
				t.Fatalf("DecodeRecord: %v", err)
			}
			if err := back.Verify(); err != nil {
				t.Fatalf("decoded record does not verify: %v", err)
			}
			if back.AgentDID != r.AgentDID || back.Context != r.Context || !back.Device.Equal(r.Device) ||
				back.Timestamp != r.Timestamp || back.Signature != r.Signature || len(back.Addrs) != len(r.Addrs) {
				t.Fatalf("round trip changed the record:\n got %+v\nwant %+v", back, r)
			}
			for i := range r.Addrs {
				if !back.Addrs[i].Equal(r.Addrs[i]) {
					t.Fatalf("address %d: %s, want %s", i, back.Addrs[i], r.Addrs[i])
				}
			}
			again, _ := back.MarshalBinary()
			if !bytes.Equal(again, enc) {
				t.Fatal("re-encoding differs")
			}
			id, err := back.PeerID()
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := identity.PeerID(pubOf(key)); id != want {
				t.Fatalf("PeerID = %s, want %s", id, want)
			}
		})
	}
}

func TestNewRecordRejects(t *testing.T) {
	agent := newAgent(t)
	key := mustKey(t)
	tooMany := make([]ma.Multiaddr, MaxAddrs+1)
	for i := range tooMany {
		tooMany[i] = mustAddr(t, "/ip4/127.0.0.1/tcp/1")
	}
	tooLong := mustAddr(t, "/dns/"+strings.Repeat("a", MaxAddrLen-5)+"/tcp/1")
	tests := []struct {
		name    string
		agent   string
		context string
		key     ed25519.PrivateKey
		addrs   []ma.Multiaddr
		now     time.Time
		wantMsg string
	}{
		{"empty DID", "", "laptop", key, nil, time.Now(), "agent DID is empty"},
		{"did:web", "did:web:example.com", "laptop", key, nil, time.Now(), "does not start with"},
		{"DID with fragment", agent + "#laptop", "laptop", key, nil, time.Now(), "has a fragment"},
		{"x25519 DID", "did:key:z6LSeu9HkTHSfLLeUs2nnzUSNedgDUevfNQgQjQC23ZCit6F", "laptop", key, nil, time.Now(), "x25519"},
		{"DID too long", "did:key:z" + strings.Repeat("6", 130), "laptop", key, nil, time.Now(), "max 128"},
		{"empty context", agent, "", key, nil, time.Now(), "context is empty"},
		{"context with space", agent, "my laptop", key, nil, time.Now(), "context contains ' '"},
		{"context with #", agent, "a#b", key, nil, time.Now(), "context contains '#'"},
		{"context too long", agent, strings.Repeat("x", MaxContextLen+1), key, nil, time.Now(), "max 64"},
		{"seed-only key", agent, "laptop", key[:32], nil, time.Now(), "device key is 32 bytes"},
		{"too many addresses", agent, "laptop", key, tooMany, time.Now(), "17 addresses, max 16"},
		{"address too long", agent, "laptop", key, []ma.Multiaddr{tooLong}, time.Now(), "257 bytes, max 256"},
		{"empty address", agent, "laptop", key, []ma.Multiaddr{nil}, time.Now(), "address 1 is empty"},
		{"before the epoch", agent, "laptop", key, nil, time.Unix(-1, 0), "not after the Unix epoch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRecord(tc.agent, tc.context, tc.key, tc.addrs, tc.now)
			if err == nil {
				t.Fatalf("NewRecord accepted it: %+v", r)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("error %q does not mention %q", err, tc.wantMsg)
			}
		})
	}
}

// TestVerifyCoversEveryField: changing any field after signing breaks the
// signature.
func TestVerifyCoversEveryField(t *testing.T) {
	agent := newAgent(t)
	key := mustKey(t)
	base, err := NewRecord(agent, "laptop", key, []ma.Multiaddr{mustAddr(t, "/ip4/127.0.0.1/tcp/1")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(r *Record)
	}{
		{"agent", func(r *Record) { r.AgentDID = newAgent(t) }},
		{"context", func(r *Record) { r.Context = "phone" }},
		{"device", func(r *Record) { r.Device = pubOf(mustKey(t)) }},
		{"timestamp", func(r *Record) { r.Timestamp++ }},
		{"address changed", func(r *Record) { r.Addrs = []ma.Multiaddr{mustAddr(t, "/ip4/127.0.0.2/tcp/1")} }},
		{"address added", func(r *Record) { r.Addrs = append(r.Addrs, mustAddr(t, "/ip4/127.0.0.2/tcp/1")) }},
		{"address removed", func(r *Record) { r.Addrs = nil }},
		{"signature", func(r *Record) { r.Signature[63] ^= 0x40 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			r.Addrs = append([]ma.Multiaddr(nil), base.Addrs...)
			tc.mutate(&r)
			if err := r.Verify(); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Verify after changing the %s = %v, want ErrBadSignature", tc.name, err)
			}
		})
	}
	if err := base.Verify(); err != nil {
		t.Fatalf("the unchanged record no longer verifies: %v", err)
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	agent := newAgent(t)
	r, err := NewRecord(agent, "laptop", mustKey(t), []ma.Multiaddr{mustAddr(t, "/ip4/127.0.0.1/tcp/1")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := r.MarshalBinary()
	// Offsets in enc: version 0, DID length 1, DID 2.., context length.
	ctxLenAt := 2 + len(agent)
	addrCountAt := ctxLenAt + 1 + len("laptop") + keyLen + 8
	with := func(at int, b ...byte) []byte {
		out := append([]byte{}, enc[:at]...)
		out = append(out, b...)
		return append(out, enc[at+1:]...)
	}
	// forged encodes a record with rules broken, signed all the same.
	forged := func(mut func(r *Record)) []byte {
		f := r
		f.Addrs = append([]ma.Multiaddr(nil), r.Addrs...)
		mut(&f)
		f = forge(f, mustKey(t))
		return f.appendBinary(nil)
	}
	// A DID length written as two bytes (0x80|n, 0x00) is the same number
	// in a non-minimal encoding; it must be refused so that every record
	// has exactly one encoding.
	nonMinimal := append([]byte{enc[0], 0x80 | enc[1], 0x00}, enc[2:]...)

	tests := []struct {
		name    string
		in      []byte
		wantMsg string
	}{
		{"empty", nil, "version"},
		{"version 2", with(0, 2), "encoding version 2"},
		{"version 0", with(0, 0), "encoding version 0"},
		{"trailing byte", append(append([]byte{}, enc...), 0), "trailing"},
		{"truncated signature", enc[:len(enc)-1], "signature"},
		{"truncated in the key", enc[:ctxLenAt+10], "device key"},
		{"non-minimal DID length", nonMinimal, "agent DID length"},
		{"DID length beyond max", with(1, 0x81, 0x01), "agent DID is 129 bytes, at most 128"},
		{"empty context", forged(func(r *Record) { r.Context = "" }), "context is empty"},
		{"context with slash", forged(func(r *Record) { r.Context = "a/b" }), "context contains '/'"},
		{"did:web", forged(func(r *Record) { r.AgentDID = "did:web:example.com" }), "does not start with"},
		{"DID with fragment", forged(func(r *Record) { r.AgentDID = agent + "#x" }), "has a fragment"},
		{"too many addresses", forged(func(r *Record) {
			for len(r.Addrs) <= MaxAddrs {
				r.Addrs = append(r.Addrs, r.Addrs[0])
			}
		}), "17 addresses, max 16"},
		{"address too long", forged(func(r *Record) {
			r.Addrs = []ma.Multiaddr{mustAddr(t, "/dns/"+strings.Repeat("a", MaxAddrLen-5)+"/tcp/1")}
		}), "address is 257 bytes, at most 256"},
		{"address count beyond data", with(addrCountAt, 5), "address"},
		{"garbage address", with(addrCountAt+2, 0xff), "address 1"},
		{"oversized input", make([]byte, maxRecordLen+1), "bytes, max"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeRecord(tc.in)
			if err == nil {
				t.Fatalf("DecodeRecord accepted %x as %+v", tc.in, got)
			}
			if !errors.Is(err, ErrInvalidRecord) {
				t.Errorf("error %v does not wrap ErrInvalidRecord", err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tc.wantMsg)
			}
		})
	}
	if _, err := DecodeRecord(enc); err != nil {
		t.Fatalf("the unchanged encoding is refused: %v", err)
	}
}
