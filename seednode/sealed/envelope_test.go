package sealed

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	voied25519 "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
	"github.com/oasisprotocol/curve25519-voi/primitives/x25519"
)

// testDevice is a fixed device key, so stored fuzz corpora stay valid.
var (
	testDevice    = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{'d'}, ed25519.SeedSize))
	testDevicePub = testDevice.Public().(ed25519.PublicKey)
)

var testPayload = EnvelopePayload{Epoch: testEpoch, Content: testKey, Names: NameKey{0: 'n', 31: 2}}

func newDevice(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// lowOrderPoints are the X25519 public keys of small order (and their
// non-canonical encodings) that would make a shared secret of zero.
var lowOrderPoints = []string{
	"0000000000000000000000000000000000000000000000000000000000000000",
	"0100000000000000000000000000000000000000000000000000000000000000",
	"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"0000000000000000000000000000000000000000000000000000000000000080",
}

func TestEnvelopeRoundTrip(t *testing.T) {
	for range 8 {
		pub, priv := newDevice(t)
		want := EnvelopePayload{Epoch: 42, Content: mustKey(t, NewContentKey), Names: mustKey(t, NewNameKey)}
		sealed, err := SealEnvelope(pub, testNS, want)
		if err != nil {
			t.Fatal(err)
		}
		if len(sealed) != envelopeLen {
			t.Errorf("envelope of %d bytes, want %d", len(sealed), envelopeLen)
		}
		got, err := OpenEnvelope(priv, testNS, sealed)
		if err != nil || got != want {
			t.Fatalf("OpenEnvelope = %+v, %v; want %+v", got, err, want)
		}
	}
}

func TestEd25519ToX25519(t *testing.T) {
	for range 32 {
		pub, priv := newDevice(t)
		x, err := ecdh.X25519().NewPrivateKey(edPrivateToX25519(priv))
		if err != nil {
			t.Fatal(err)
		}
		converted, ok := x25519.EdPublicKeyToX25519(voied25519.PublicKey(pub))
		if !ok {
			t.Fatalf("cannot convert %x", pub)
		}
		if got := x.PublicKey().Bytes(); !bytes.Equal(got, converted) {
			t.Fatalf("X25519(private, basepoint) = %x, converted public key = %x", got, converted)
		}
	}
}

func TestOpenEnvelopeRejects(t *testing.T) {
	pub, priv := newDevice(t)
	_, stranger := newDevice(t)
	sealed, err := SealEnvelope(pub, testNS, testPayload)
	if err != nil {
		t.Fatal(err)
	}
	withEphemeral := func(hexPoint string) []byte {
		c := append([]byte(nil), sealed...)
		p, _ := hex.DecodeString(hexPoint)
		copy(c[1+32:], p)
		return c
	}
	topBit := append([]byte(nil), sealed...)
	topBit[1+32+31] ^= 0x80 // the same point to X25519, not to the envelope
	type test struct {
		name   string
		me     ed25519.PrivateKey
		ns     [32]byte
		sealed []byte
		want   error
		reason string // in the error message
	}
	tests := []test{
		{"another device", stranger, testNS, sealed, ErrNotForMe, ""},
		{"other vault", priv, [32]byte{}, sealed, ErrDecrypt, ""},
		{"ephemeral key top bit", priv, testNS, topBit, ErrDecrypt, ""},
		{"empty", priv, testNS, nil, ErrMalformed, ""},
		{"truncated", priv, testNS, sealed[:len(sealed)-1], ErrMalformed, ""},
		{"extended", priv, testNS, append(append([]byte(nil), sealed...), 0), ErrMalformed, ""},
		{"unknown version", priv, testNS, append([]byte{1}, sealed[1:]...), ErrMalformed, ""},
	}
	for _, p := range lowOrderPoints {
		tests = append(tests, test{"low-order ephemeral key " + p[:8], priv, testNS, withEphemeral(p), ErrDecrypt, "low order"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := OpenEnvelope(tt.me, tt.ns, tt.sealed)
			checkSentinel(t, err, tt.want)
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
			if got != (EnvelopePayload{}) {
				t.Errorf("returned a payload with the error: %+v", got)
			}
		})
	}
	if _, err := OpenEnvelope(priv[:32], testNS, sealed); err == nil {
		t.Error("accepted a 32-byte private key")
	}
}

func TestSealEnvelopeRejectsRecipient(t *testing.T) {
	hexKey := func(s string) ed25519.PublicKey {
		b, _ := hex.DecodeString(s)
		return b
	}
	tests := []struct {
		name   string
		to     ed25519.PublicKey
		reason string
	}{
		{"nil", nil, "0 bytes"},
		{"short", make([]byte, 31), "31 bytes"},
		{"not a point", hexKey("0200000000000000000000000000000000000000000000000000000000000000"), "not an Ed25519 point"},
		{"identity (order 1)", hexKey("0100000000000000000000000000000000000000000000000000000000000000"), "low order"},
		{"order 2", hexKey("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"), "low order"},
		{"order 4", hexKey("0000000000000000000000000000000000000000000000000000000000000000"), "low order"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := SealEnvelope(tt.to, testNS, testPayload)
			if err == nil || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("SealEnvelope = %x, %v; want an error saying %q", sealed, err, tt.reason)
			}
		})
	}
}

func TestEnvelopeBitFlips(t *testing.T) {
	sealed, err := SealEnvelope(testDevicePub, testNS, testPayload)
	if err != nil {
		t.Fatal(err)
	}
	for i := range sealed {
		want := ErrDecrypt
		switch {
		case i == 0:
			want = ErrMalformed
		case i <= ed25519.PublicKeySize:
			want = ErrNotForMe
		}
		for bit := range 8 {
			if _, err := OpenEnvelope(testDevice, testNS, flipped(sealed, i, bit)); !errors.Is(err, want) {
				t.Fatalf("byte %d bit %d: error %v, want %v", i, bit, err, want)
			}
		}
	}
}
