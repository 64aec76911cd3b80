package identity

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"

	"github.com/multiformats/go-multibase"
	"github.com/multiformats/go-varint"

	"github.com/seedfleet/seedfleet/internal/wire"
)

// ErrInvalidDID is wrapped by every error ParseDIDKey returns, so callers can
// tell "this peer sent a bad identifier" from other failures.
var ErrInvalidDID = errors.New("invalid did:key")

const (
	didKeyPrefix = "did:key:"

	// multicodecEd25519Pub is the multicodec code for an Ed25519 public key;
	// as an unsigned varint it is the two bytes 0xed 0x01, which is why every
	// Ed25519 did:key starts with "z6Mk".
	multicodecEd25519Pub = 0xed
	// multicodecX25519Pub is named only to give a precise error for the
	// common mistake of passing a key-agreement (z6LS...) did:key.
	multicodecX25519Pub = 0xec

	// maxMultibaseLen caps the input before base58 decoding, which is
	// quadratic in the input length; an Ed25519 did:key has 48 characters.
	maxMultibaseLen = 128

	maxFragmentLen = 64
)

// DIDKey returns the did:key for pub ("did:key:z6Mk..."). Like the functions
// in crypto/ed25519, it panics if pub has the wrong length: that is a
// programming error, and a DID that cannot be parsed back must never escape.
func DIDKey(pub ed25519.PublicKey) string {
	if len(pub) != ed25519.PublicKeySize {
		panic(fmt.Sprintf("identity: DIDKey: bad ed25519 public key length %d", len(pub)))
	}
	buf := make([]byte, 0, 2+ed25519.PublicKeySize)
	buf = append(buf, varint.ToUvarint(multicodecEd25519Pub)...)
	buf = append(buf, pub...)
	s, err := multibase.Encode(multibase.Base58BTC, buf)
	if err != nil {
		// Base58BTC is always supported; this cannot happen.
		panic("identity: DIDKey: " + err.Error())
	}
	return didKeyPrefix + s
}

// ParseDIDKey returns the Ed25519 public key of an Ed25519 did:key. A DID URL
// fragment ("#key-1") is accepted and ignored, because verification methods
// are usually referenced as did:key:z...#z.... Every error wraps
// ErrInvalidDID.
func ParseDIDKey(did string) (ed25519.PublicKey, error) {
	bare, _ := SplitDIDURL(did)
	pub, err := parseBareDIDKey(bare)
	if err != nil {
		return nil, fmt.Errorf("identity: parse %q: %w: %s", truncate(did), ErrInvalidDID, err)
	}
	return pub, nil
}

func parseBareDIDKey(did string) (ed25519.PublicKey, error) {
	mb, ok := strings.CutPrefix(did, didKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("does not start with %q", didKeyPrefix)
	}
	if mb == "" {
		return nil, errors.New("missing key")
	}
	// Checked before multibase.Decode so that other valid multibase
	// encodings get a precise message rather than being decoded at all.
	if mb[0] != 'z' {
		return nil, fmt.Errorf("multibase prefix %q is not base58btc ('z')", mb[0])
	}
	if len(mb) > maxMultibaseLen {
		return nil, fmt.Errorf("key is too long (%d characters)", len(mb))
	}
	enc, data, err := multibase.Decode(mb)
	if err != nil {
		return nil, fmt.Errorf("not base58btc: %v", err)
	}
	if enc != multibase.Base58BTC {
		return nil, errors.New("not base58btc")
	}
	// FromUvarint rejects non-minimal encodings, so each accepted DID has
	// exactly one spelling and compares equal to DIDKey of its key.
	code, n, err := varint.FromUvarint(data)
	if err != nil {
		return nil, fmt.Errorf("bad multicodec prefix: %v", err)
	}
	switch code {
	case multicodecEd25519Pub:
	case multicodecX25519Pub:
		return nil, errors.New("multicodec is x25519-pub (0xec), a key-agreement key; want ed25519-pub (0xed)")
	default:
		return nil, fmt.Errorf("multicodec is 0x%x, want ed25519-pub (0xed)", code)
	}
	key := data[n:]
	if len(key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("ed25519 public key is %d bytes, want %d", len(key), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(key), nil
}

// truncate keeps an error message that quotes input from the network
// bounded, and cut on a character boundary.
func truncate(s string) string { return wire.Truncate(s, 100) }

// DIDKeyFragment returns the DID URL did:key:...#fragment. The fragment is
// limited to 1..64 characters of [A-Za-z0-9._-] so that it never needs
// percent-encoding and cannot smuggle in a path, query or second fragment.
// Errors wrap ErrInvalidDID.
func DIDKeyFragment(pub ed25519.PublicKey, fragment string) (string, error) {
	if len(pub) != ed25519.PublicKeySize {
		return "", fmt.Errorf("identity: did:key fragment: %w: ed25519 public key is %d bytes, want %d",
			ErrInvalidDID, len(pub), ed25519.PublicKeySize)
	}
	if err := CheckFragment(fragment); err != nil {
		return "", fmt.Errorf("identity: did:key fragment %q: %w: %s", truncate(fragment), ErrInvalidDID, err)
	}
	return DIDKey(pub) + "#" + fragment, nil
}

// CheckFragment reports whether fragment is a valid name for a key in a DID
// URL (did:key:…#fragment), as agent documents and device names use it.
func CheckFragment(fragment string) error {
	if fragment == "" {
		return errors.New("fragment is empty")
	}
	if len(fragment) > maxFragmentLen {
		return fmt.Errorf("fragment is %d characters, max %d", len(fragment), maxFragmentLen)
	}
	for i := 0; i < len(fragment); i++ {
		c := fragment[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("fragment contains %q; allowed are A-Z a-z 0-9 . _ -", c)
		}
	}
	return nil
}

// SplitDIDURL splits a DID URL at its first '#' into the DID and the
// fragment (without the '#'). Without a '#', fragment is empty.
func SplitDIDURL(didURL string) (did, fragment string) {
	did, fragment, _ = strings.Cut(didURL, "#")
	return did, fragment
}
