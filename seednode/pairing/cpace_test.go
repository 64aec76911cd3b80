package pairing

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/oasisprotocol/curve25519-voi/curve/scalar"
)

// exchange runs CPace between an approver with codeA and channel ciA and a
// new device with codeB and ciB, on one session ID, and returns both sides'
// keys.
func exchange(t *testing.T, codeA, codeB Code, ciA, ciB []byte) (a, b *sessionKeys) {
	t.Helper()
	sid, err := randomSID()
	if err != nil {
		t.Fatal(err)
	}
	shA, err := newShare(generator(codeA, ciA, sid[:]))
	if err != nil {
		t.Fatal(err)
	}
	shB, err := newShare(generator(codeB, ciB, sid[:]))
	if err != nil {
		t.Fatal(err)
	}
	ya, err := decodePoint(shA.public, "Ya")
	if err != nil {
		t.Fatal(err)
	}
	yb, err := decodePoint(shB.public, "Yb")
	if err != nil {
		t.Fatal(err)
	}
	if a, err = deriveKeys(shA, yb, sid, shA.public, shB.public); err != nil {
		t.Fatal(err)
	}
	if b, err = deriveKeys(shB, ya, sid, shA.public, shB.public); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestCPaceAgreement(t *testing.T) {
	ci := channelID(fixedPeer(t, 1), fixedPeer(t, 2))
	a, b := exchange(t, "ABCDEFGH", "ABCDEFGH", ci, ci)
	if a.isk != b.isk || a.msgKey != b.msgKey {
		t.Fatal("the two sides derived different keys from the same code and channel")
	}
	if a.confirmMAC(roleDevice) != b.confirmMAC(roleDevice) || a.confirmMAC(roleApprover) != b.confirmMAC(roleApprover) {
		t.Fatal("confirmation MACs differ")
	}
	if a.confirmMAC(roleDevice) == a.confirmMAC(roleApprover) {
		t.Fatal("MAC_A equals MAC_B: a reflected MAC would pass")
	}
	m := message{typ: msgWelcome, payload: []byte("hi")}
	a.seal(&m)
	if err := b.open(&m); err != nil {
		t.Fatalf("welcome sealed by A does not open on B: %v", err)
	}
	m.payload[0] ^= 1
	if err := b.open(&m); !errors.Is(err, ErrProtocol) {
		t.Fatalf("altered welcome opens: %v", err)
	}
}

func TestCPaceMismatch(t *testing.T) {
	pa, pb, pm := fixedPeer(t, 1), fixedPeer(t, 2), fixedPeer(t, 3)
	for _, tc := range []struct {
		name         string
		codeA, codeB Code
		ciA, ciB     []byte
	}{
		{"wrong code", "ABCDEFGH", "ABCDEFGJ", channelID(pa, pb), channelID(pa, pb)},
		// A relay M: A talks to M, B talks to M.
		{"relayed", "ABCDEFGH", "ABCDEFGH", channelID(pa, pm), channelID(pm, pb)},
		{"swapped roles", "ABCDEFGH", "ABCDEFGH", channelID(pa, pb), channelID(pb, pa)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := exchange(t, tc.codeA, tc.codeB, tc.ciA, tc.ciB)
			if a.isk == b.isk || a.confirmMAC(roleDevice) == b.confirmMAC(roleDevice) {
				t.Fatal("keys agree")
			}
		})
	}
}

func TestDecodePoint(t *testing.T) {
	// RFC 9496 section A.1 (multiples of the generator) and A.2 (bad
	// encodings).
	for _, tc := range []struct {
		hex     string
		wantErr string
	}{
		{"e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76", ""},
		{"6a493210f7499cd17fecb510ae0cea23a110e8d5b901f8acadd3095c73a3b919", ""},
		{"0000000000000000000000000000000000000000000000000000000000000000", "identity"},
		{"00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "not a valid"},
		{"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "not a valid"},
		{"0100000000000000000000000000000000000000000000000000000000000000", "not a valid"},
		{"26948d35ca62e643e26a83177332e6b6afeb9d08e4268b650f1f5bbd8d81d371", "not a valid"},
		{"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "not a valid"},
	} {
		var b [pointLen]byte
		if _, err := hex.Decode(b[:], []byte(tc.hex)); err != nil {
			t.Fatal(err)
		}
		_, err := decodePoint(b, "point")
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.hex, err)
		case tc.wantErr != "" && (!errors.Is(err, ErrProtocol) || !bytes.Contains([]byte(err.Error()), []byte(tc.wantErr))):
			t.Errorf("%s: %v, want ErrProtocol mentioning %q", tc.hex, err, tc.wantErr)
		}
	}
}

// TestCPaceVector freezes the derivation: another implementation (or a
// change here) must produce the same bytes to interoperate.
func TestCPaceVector(t *testing.T) {
	ci := channelID(fixedPeer(t, 1), fixedPeer(t, 2))
	var sid [sidLen]byte
	for i := range sid {
		sid[i] = byte(i)
	}
	g := generator("ABCDEFGH", ci, sid[:])
	mk := func(x uint64) share {
		y := scalar.NewFromUint64(x)
		sh, err := newShareFrom(g, y)
		if err != nil {
			t.Fatal(err)
		}
		return sh
	}
	a, b := mk(3), mk(5)
	yb, err := decodePoint(b.public, "Yb")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := deriveKeys(a, yb, sid, a.public, b.public)
	if err != nil {
		t.Fatal(err)
	}
	mb := keys.confirmMAC(roleDevice)
	for _, c := range []struct{ name, got, want string }{
		{"Ya", hex.EncodeToString(a.public[:]), cpaceVectorYa},
		{"Yb", hex.EncodeToString(b.public[:]), cpaceVectorYb},
		{"ISK", hex.EncodeToString(keys.isk[:]), cpaceVectorISK},
		{"MAC_B", hex.EncodeToString(mb[:]), cpaceVectorMACB},
	} {
		if c.got != c.want {
			t.Errorf("%s = %s, want %s", c.name, c.got, c.want)
		}
	}
}

// The vector: code ABCDEFGH, CI = peer IDs of the Ed25519 keys with seeds
// 01 00… and 02 00…, sid 00 01 … 0f, ya = 3, yb = 5. It was computed
// independently with libsodium (crypto_core_ristretto255_from_hash,
// crypto_scalarmult_ristretto255) and Python's hashlib and hmac.
const (
	cpaceVectorYa  = "c61ebc10fb51957d123ec0d68d72aad85df9f6e887232f7c0c93b8b2c0f7e838"
	cpaceVectorYb  = "b422eb55c700f6330825991e4f010dd79154ea05bd647f2f3fa70d0ed74f850e"
	cpaceVectorISK = "8e35e020e3fa7b32cb67d2217a9ff801ab001b55e301b1fbeeb7941d549471a6" +
		"36ba29ef26c241dac9f4fa57f2197ef103d6bfb12ae15d6356999fe18757b3c1"
	cpaceVectorMACB = "0389310e84263b661b290f82da2891083e1a1211c516f5c9eeb84139537be968"
)
