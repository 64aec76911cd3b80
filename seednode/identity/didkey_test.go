package identity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/mr-tron/base58"
	"github.com/multiformats/go-multibase"
)

// specVectors are the Ed25519 entries of the did:key specification's test
// vectors (W3C CCG did:key Method, file test-vectors/ed25519-x25519.json in
// https://github.com/w3c-ccg/did-method-key): the 32-byte seed, the
// resulting publicKeyBase58 and the did:key, copied verbatim.
var specVectors = []struct {
	name      string
	seedHex   string
	pubBase58 string
	did       string
}{
	{
		name:      "seed 0",
		seedHex:   "0000000000000000000000000000000000000000000000000000000000000000",
		pubBase58: "4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS",
		did:       "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
	},
	{
		name:      "seed 1",
		seedHex:   "0000000000000000000000000000000000000000000000000000000000000001",
		pubBase58: "6ASf5EcmmEHTgDJ4X4ZT5vT6iHVJBXPg5AN5YoTCpGWt",
		did:       "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG",
	},
	{
		name:      "seed 2",
		seedHex:   "0000000000000000000000000000000000000000000000000000000000000002",
		pubBase58: "8pM1DN3RiT8vbom5u1sNryaNT1nyL8CTTW3b5PwWXRBH",
		did:       "did:key:z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf",
	},
	{
		name:      "seed 3",
		seedHex:   "0000000000000000000000000000000000000000000000000000000000000003",
		pubBase58: "HPYVwAQmskwT1qEEeRzhoomyfyupJGASQQtCXSNG8XS2",
		did:       "did:key:z6MkvqoYXQfDDJRv8L4wKzxYeuKyVZBfi9Qo6Ro8MiLH3kDQ",
	},
	{
		name:      "seed 4",
		seedHex:   "0000000000000000000000000000000000000000000000000000000000000004",
		pubBase58: "J3qYF7YJMKCqQke47UQwiHizgFUXapHxRxKmxbkar89x",
		did:       "did:key:z6MkwW6aqMnjgrhJXFUko3NnZPGzVpkNzhYK7yEhnsibmLwL",
	},
}

// specExampleDIDs are Ed25519 did:key examples published in the did:key
// specification text (https://w3c-ccg.github.io/did-method-key/, "A simple
// Ed25519 did:key value" and the Ed25519 section) and, with a fragment, the
// verification method IDs used by the W3C CCG did-key-test-suite.
var specExampleDIDs = []string{
	"did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
	"did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
	"did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG",
	"did:key:z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf",
	"did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK#z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
	"did:key:z6MktKwz7Ge1Yxzr4JHavN33wiwa8y81QdcMRLXQsrH9T53b",
	"did:key:z6MktKwz7Ge1Yxzr4JHavN33wiwa8y81QdcMRLXQsrH9T53b#z6MktKwz7Ge1Yxzr4JHavN33wiwa8y81QdcMRLXQsrH9T53b",
}

func TestDIDKeySpecVectors(t *testing.T) {
	for _, v := range specVectors {
		t.Run(v.name, func(t *testing.T) {
			seed, err := hex.DecodeString(v.seedHex)
			if err != nil {
				t.Fatal(err)
			}
			wantPub, err := base58.Decode(v.pubBase58)
			if err != nil {
				t.Fatal(err)
			}
			pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
			if !bytes.Equal(pub, wantPub) {
				t.Fatalf("public key from seed = %x, vector says %x", pub, wantPub)
			}

			if got := DIDKey(pub); got != v.did {
				t.Errorf("DIDKey = %q, want %q", got, v.did)
			}

			got, err := ParseDIDKey(v.did)
			if err != nil {
				t.Fatalf("ParseDIDKey(%q): %v", v.did, err)
			}
			if !bytes.Equal(got, wantPub) {
				t.Errorf("ParseDIDKey = %x, want %x", got, wantPub)
			}

			// Verification method IDs in the vectors' DID documents are
			// did#multibase; the fragment must not affect the key.
			vm := v.did + "#" + strings.TrimPrefix(v.did, "did:key:")
			got, err = ParseDIDKey(vm)
			if err != nil {
				t.Fatalf("ParseDIDKey(%q): %v", vm, err)
			}
			if !bytes.Equal(got, wantPub) {
				t.Errorf("ParseDIDKey(with fragment) = %x, want %x", got, wantPub)
			}
		})
	}
}

func TestParseDIDKeySpecExamples(t *testing.T) {
	for _, did := range specExampleDIDs {
		t.Run(did, func(t *testing.T) {
			pub, err := ParseDIDKey(did)
			if err != nil {
				t.Fatalf("ParseDIDKey: %v", err)
			}
			if len(pub) != ed25519.PublicKeySize {
				t.Fatalf("key length %d", len(pub))
			}
			bare, _ := SplitDIDURL(did)
			if got := DIDKey(pub); got != bare {
				t.Errorf("DIDKey(ParseDIDKey(%q)) = %q, want %q", did, got, bare)
			}
		})
	}
}

func TestDIDKeyRoundTripGenerated(t *testing.T) {
	for i := range 20 {
		key, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		pub := key.Public().(ed25519.PublicKey)
		did := DIDKey(pub)
		if !strings.HasPrefix(did, "did:key:z6Mk") {
			t.Fatalf("#%d: DIDKey = %q, want did:key:z6Mk prefix", i, did)
		}
		got, err := ParseDIDKey(did)
		if err != nil {
			t.Fatalf("#%d: ParseDIDKey(%q): %v", i, did, err)
		}
		if !got.Equal(pub) {
			t.Fatalf("#%d: round trip gave %x, want %x", i, got, pub)
		}
	}
}

// mbKey returns a did:key over an arbitrary multicodec prefix and payload, to
// build inputs that are well-formed base58btc but wrong in content.
func mbKey(t *testing.T, prefix []byte, payload []byte) string {
	t.Helper()
	s, err := multibase.Encode(multibase.Base58BTC, append(append([]byte{}, prefix...), payload...))
	if err != nil {
		t.Fatal(err)
	}
	return "did:key:" + s
}

func TestParseDIDKeyRejects(t *testing.T) {
	valid := specVectors[0].did
	mb := strings.TrimPrefix(valid, "did:key:")
	pub, _ := base58.Decode(specVectors[0].pubBase58)
	ed := []byte{0xed, 0x01}

	tests := []struct {
		name    string
		did     string
		wantMsg string
	}{
		{"empty", "", "does not start with"},
		{"fragment only", "#z6Mk", "does not start with"},
		{"did:web", "did:web:example.com", "does not start with"},
		{"did:web with key-like id", "did:web:" + mb, "does not start with"},
		{"upper-case method", "DID:KEY:" + mb, "does not start with"},
		{"bare multibase", mb, "does not start with"},
		{"leading space", " " + valid, "does not start with"},
		{"missing key", "did:key:", "missing key"},
		{"missing key with fragment", "did:key:#frag", "missing key"},
		{"base16 multibase", "did:key:fed01" + hex.EncodeToString(pub), "'f' is not base58btc"},
		{"base58flickr multibase", "did:key:Z" + mb[1:], "'Z' is not base58btc"},
		{"base64url multibase", "did:key:u7QE", "not base58btc"},
		{"old versioned form", "did:key:1.0:" + mb, "not base58btc"},
		{"base58 invalid char 0", "did:key:z6Mk0TBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp", "base58btc"},
		{"base58 invalid char O", "did:key:z6MkOTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp", "base58btc"},
		{"base58 invalid char l", "did:key:z6MklTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp", "base58btc"},
		{"base58 invalid char +", "did:key:z6Mk+TBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp", "base58btc"},
		{"z only", "did:key:z", "did:key"},
		{"trailing space", valid + " ", "base58btc"},
		{"path after key", valid + "/path", "base58btc"},
		{"query after key", valid + "?service=x", "base58btc"},
		// Published X25519 did:key examples (did:key spec, X25519 section).
		{"x25519 spec example 1", "did:key:z6LSeu9HkTHSfLLeUs2nnzUSNedgDUevfNQgQjQC23ZCit6F", "x25519"},
		{"x25519 spec example 2", "did:key:z6LStiZsmxiK4odS4Sb6JmdRFuJ6e1SYP157gtiCyJKfrYha", "x25519"},
		// Published secp256k1 and P-256 examples from the same specification.
		{"secp256k1 spec example", "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme", "multicodec"},
		{"p256 spec example", "did:key:zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169", "multicodec"},
		{"x25519 prefix on ed25519 bytes", mbKey(t, []byte{0xec, 0x01}, pub), "x25519"},
		{"no multicodec", mbKey(t, nil, pub), "multicodec"},
		{"non-minimal varint", mbKey(t, []byte{0xed, 0x81, 0x00}, pub), "multicodec"},
		{"truncated varint", mbKey(t, []byte{0xed}, nil), "multicodec"},
		{"prefix only", mbKey(t, ed, nil), "0 bytes"},
		{"truncated key 31 bytes", mbKey(t, ed, pub[:31]), "31 bytes"},
		{"truncated key 1 byte", mbKey(t, ed, pub[:1]), "1 bytes"},
		{"too long key 33 bytes", mbKey(t, ed, append(append([]byte{}, pub...), 0)), "33 bytes"},
		{"too long key 64 bytes", mbKey(t, ed, append(append([]byte{}, pub...), pub...)), "64 bytes"},
		{"too long input", "did:key:z" + strings.Repeat("6", 200), "too long"},
		// did-key-test-suite (W3C CCG) invalidKeyLengthDid values.
		{"test-suite too small", "did:key:zTjsVPtY", "3 bytes"},
		{"test-suite too large", "did:key:z6MkA9MEcFWsoUVqj2zX6LACFaikLQ28i9WAsJnURDS3HLGKSkUbwUbiLH22ohgZ2BwgpQ6qC3VBTNV3pLhYDTVgR", "multicodec"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := ParseDIDKey(tc.did)
			if err == nil {
				t.Fatalf("ParseDIDKey(%q) = %x, want error", tc.did, pub)
			}
			if !errors.Is(err, ErrInvalidDID) {
				t.Errorf("error %q does not wrap ErrInvalidDID", err)
			}
			if pub != nil {
				t.Errorf("returned key %x alongside error", pub)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tc.wantMsg)
			}
		})
	}
}

func TestDIDKeyPanicsOnBadLength(t *testing.T) {
	for _, n := range []int{0, 31, 33, 64} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("DIDKey(%d-byte key) did not panic", n)
				}
			}()
			DIDKey(make(ed25519.PublicKey, n))
		}()
	}
}

func TestDIDKeyFragment(t *testing.T) {
	seed, _ := hex.DecodeString(specVectors[0].seedHex)
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	did := specVectors[0].did

	tests := []struct {
		name     string
		pub      ed25519.PublicKey
		fragment string
		want     string // empty means an error is expected
	}{
		{"multibase key as fragment", pub, strings.TrimPrefix(did, "did:key:"), did + "#" + strings.TrimPrefix(did, "did:key:")},
		{"simple", pub, "key-1", did + "#key-1"},
		{"all allowed classes", pub, "aZ09._-", did + "#aZ09._-"},
		{"single char", pub, "x", did + "#x"},
		{"64 chars", pub, strings.Repeat("a", 64), did + "#" + strings.Repeat("a", 64)},
		{"empty", pub, "", ""},
		{"65 chars", pub, strings.Repeat("a", 65), ""},
		{"hash", pub, "a#b", ""},
		{"slash", pub, "a/b", ""},
		{"query", pub, "a?b", ""},
		{"space", pub, "a b", ""},
		{"colon", pub, "a:b", ""},
		{"percent", pub, "a%20", ""},
		{"non-ascii", pub, "clé", ""},
		{"nul", pub, "a\x00", ""},
		{"short public key", pub[:31], "key-1", ""},
		{"nil public key", nil, "key-1", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DIDKeyFragment(tc.pub, tc.fragment)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("DIDKeyFragment(%q) = %q, want error", tc.fragment, got)
				}
				if !errors.Is(err, ErrInvalidDID) {
					t.Errorf("error %q does not wrap ErrInvalidDID", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DIDKeyFragment(%q): %v", tc.fragment, err)
			}
			if got != tc.want {
				t.Fatalf("DIDKeyFragment = %q, want %q", got, tc.want)
			}
			d, f := SplitDIDURL(got)
			if d != did || f != tc.fragment {
				t.Errorf("SplitDIDURL(%q) = %q, %q", got, d, f)
			}
			back, err := ParseDIDKey(got)
			if err != nil || !back.Equal(tc.pub) {
				t.Errorf("ParseDIDKey(%q) = %x, %v", got, back, err)
			}
		})
	}
}

func TestSplitDIDURL(t *testing.T) {
	tests := []struct {
		in, did, fragment string
	}{
		{"", "", ""},
		{"did:key:z6Mk", "did:key:z6Mk", ""},
		{"did:key:z6Mk#", "did:key:z6Mk", ""},
		{"did:key:z6Mk#frag", "did:key:z6Mk", "frag"},
		{"did:key:z6Mk#a#b", "did:key:z6Mk", "a#b"},
		{"#frag", "", "frag"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			did, fragment := SplitDIDURL(tc.in)
			if did != tc.did || fragment != tc.fragment {
				t.Errorf("SplitDIDURL(%q) = %q, %q; want %q, %q", tc.in, did, fragment, tc.did, tc.fragment)
			}
		})
	}
}

func FuzzParseDIDKey(f *testing.F) {
	for _, v := range specVectors {
		f.Add(v.did)
		f.Add(v.did + "#" + strings.TrimPrefix(v.did, "did:key:"))
	}
	for _, d := range specExampleDIDs {
		f.Add(d)
	}
	f.Add("did:key:z6LSeu9HkTHSfLLeUs2nnzUSNedgDUevfNQgQjQC23ZCit6F")
	f.Add("did:key:zTjsVPtY")
	f.Add("did:key:z")
	f.Add("did:key:")
	f.Add("")

	f.Fuzz(func(t *testing.T, did string) {
		pub, err := ParseDIDKey(did)
		if err != nil {
			if !errors.Is(err, ErrInvalidDID) {
				t.Fatalf("ParseDIDKey(%q): error %q does not wrap ErrInvalidDID", did, err)
			}
			if pub != nil {
				t.Fatalf("ParseDIDKey(%q): key returned with error", did)
			}
			return
		}
		if len(pub) != ed25519.PublicKeySize {
			t.Fatalf("ParseDIDKey(%q) returned %d-byte key", did, len(pub))
		}
		bare, _ := SplitDIDURL(did)
		if got := DIDKey(pub); got != bare {
			t.Fatalf("ParseDIDKey accepted non-canonical %q (canonical %q)", bare, got)
		}
	})
}

// TestParseDIDKeyQuotesBounded: an error quotes a long DID cut short, and
// on a character boundary (a cut character would show as \x escapes).
func TestParseDIDKeyQuotesBounded(t *testing.T) {
	did := "did:key:z" + strings.Repeat("é", 500)
	_, err := ParseDIDKey(did)
	if !errors.Is(err, ErrInvalidDID) {
		t.Fatalf("err = %v, want ErrInvalidDID", err)
	}
	if msg := err.Error(); len(msg) > 400 || strings.Contains(msg, `\x`) || !strings.Contains(msg, "éé...") {
		t.Fatalf("error quotes the DID unbounded or cut within a character: %s", msg)
	}
}
