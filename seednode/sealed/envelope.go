package sealed

import (
	"bytes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	voied25519 "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
	"github.com/oasisprotocol/curve25519-voi/primitives/x25519"
	"golang.org/x/crypto/chacha20poly1305"
)

// An envelope delivers one epoch's keys to one device:
//
//	version (1) | recipient Ed25519 public key (32) | ephemeral X25519 public key (32) |
//	nonce (24) | XChaCha20-Poly1305(epoch (u32 BE) || content key || name key)
//
// The AEAD key is HKDF-SHA256 with ikm = X25519(ephemeral, recipient),
// salt = ephemeral public || recipient X25519 public and
// info = envelopeInfo || ns; the associated data is version || recipient
// Ed25519 public key || ns. The recipient's X25519 key is its Ed25519 key
// converted (Edwards y to Montgomery u for the public key, the clamped
// SHA-512 of the seed for the private key), so devices need no second key.
// Having the ephemeral key's bytes in the salt makes its encodings that
// X25519 treats alike (top bit, u ≥ p) fail to open.
const (
	envelopeInfo     = "seedfleet/envelope/v1"
	envelopePlainLen = 4 + len(ContentKey{}) + len(NameKey{})
	envelopeHeadLen  = 1 + ed25519.PublicKeySize + 32 + chacha20poly1305.NonceSizeX
	envelopeLen      = envelopeHeadLen + envelopePlainLen + chacha20poly1305.Overhead
)

// EnvelopePayload is what an envelope delivers: an epoch's keys.
type EnvelopePayload struct {
	Epoch   uint32
	Content ContentKey
	Names   NameKey
}

// SealEnvelope seals p for the device whose Ed25519 public key is to, in
// vault ns.
func SealEnvelope(to ed25519.PublicKey, ns [32]byte, p EnvelopePayload) ([]byte, error) {
	return sealEnvelope(rand.Reader, to, ns, p)
}

func sealEnvelope(random io.Reader, to ed25519.PublicKey, ns [32]byte, p EnvelopePayload) ([]byte, error) {
	if len(to) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("seal envelope: recipient key is %d bytes, want %d", len(to), ed25519.PublicKeySize)
	}
	recipientX, ok := x25519.EdPublicKeyToX25519(voied25519.PublicKey(to))
	if !ok {
		return nil, errors.New("seal envelope: recipient key is not an Ed25519 point")
	}
	recipient, err := ecdh.X25519().NewPublicKey(recipientX)
	if err != nil {
		return nil, fmt.Errorf("seal envelope: %w", err)
	}
	var ephemeralSecret [32]byte
	if _, err := io.ReadFull(random, ephemeralSecret[:]); err != nil {
		return nil, fmt.Errorf("seal envelope: ephemeral key: %w", err)
	}
	ephemeral, err := ecdh.X25519().NewPrivateKey(ephemeralSecret[:])
	if err != nil {
		return nil, fmt.Errorf("seal envelope: ephemeral key: %w", err)
	}

	out := make([]byte, envelopeHeadLen, envelopeLen)
	out[0] = envelopeVersion
	copy(out[1:], to)
	ephemeralPub := out[1+ed25519.PublicKeySize : 1+ed25519.PublicKeySize+32]
	copy(ephemeralPub, ephemeral.PublicKey().Bytes())
	nonce := out[envelopeHeadLen-chacha20poly1305.NonceSizeX : envelopeHeadLen]
	if _, err := io.ReadFull(random, nonce); err != nil {
		return nil, fmt.Errorf("seal envelope: nonce: %w", err)
	}
	aead, err := envelopeAEAD(ephemeral, recipient, ephemeralPub, recipientX, ns)
	if err != nil {
		// Only a low-order recipient key gets here: nothing could open it.
		return nil, fmt.Errorf("seal envelope: recipient key: %w", err)
	}

	plain := make([]byte, 0, envelopePlainLen)
	plain = binary.BigEndian.AppendUint32(plain, p.Epoch)
	plain = append(plain, p.Content[:]...)
	plain = append(plain, p.Names[:]...)
	return aead.Seal(out, nonce, plain, envelopeAD(to, ns)), nil
}

// OpenEnvelope opens an envelope sealed to the device whose Ed25519 private
// key is me, in vault ns.
func OpenEnvelope(me ed25519.PrivateKey, ns [32]byte, sealed []byte) (EnvelopePayload, error) {
	if len(me) != ed25519.PrivateKeySize {
		return EnvelopePayload{}, fmt.Errorf("open envelope: private key is %d bytes, want %d", len(me), ed25519.PrivateKeySize)
	}
	if len(sealed) != envelopeLen {
		return EnvelopePayload{}, fmt.Errorf("envelope of %d bytes (want %d): %w", len(sealed), envelopeLen, ErrMalformed)
	}
	if sealed[0] != envelopeVersion {
		return EnvelopePayload{}, fmt.Errorf("envelope version %d (want %d): %w", sealed[0], envelopeVersion, ErrMalformed)
	}
	myPub := me.Public().(ed25519.PublicKey)
	recipient := sealed[1 : 1+ed25519.PublicKeySize]
	if !bytes.Equal(recipient, myPub) {
		return EnvelopePayload{}, fmt.Errorf("envelope for %x: %w", recipient, ErrNotForMe)
	}
	ephemeralPub := sealed[1+ed25519.PublicKeySize : 1+ed25519.PublicKeySize+32]
	nonce := sealed[envelopeHeadLen-chacha20poly1305.NonceSizeX : envelopeHeadLen]

	myX, err := ecdh.X25519().NewPrivateKey(edPrivateToX25519(me))
	if err != nil {
		return EnvelopePayload{}, fmt.Errorf("open envelope: %w", err)
	}
	ephemeral, err := ecdh.X25519().NewPublicKey(ephemeralPub)
	if err != nil {
		return EnvelopePayload{}, fmt.Errorf("envelope ephemeral key: %w", ErrMalformed)
	}
	aead, err := envelopeAEAD(myX, ephemeral, ephemeralPub, myX.PublicKey().Bytes(), ns)
	if err != nil {
		return EnvelopePayload{}, fmt.Errorf("envelope ephemeral key is of low order: %w", ErrDecrypt)
	}
	plain, err := aead.Open(nil, nonce, sealed[envelopeHeadLen:], envelopeAD(myPub, ns))
	if err != nil {
		return EnvelopePayload{}, fmt.Errorf("envelope: %w", ErrDecrypt)
	}
	var p EnvelopePayload
	p.Epoch = binary.BigEndian.Uint32(plain)
	copy(p.Content[:], plain[4:])
	copy(p.Names[:], plain[4+len(p.Content):])
	return p, nil
}

// envelopeAEAD derives the envelope cipher from one side's private key and
// the other's public key; ephemeralPub and recipientPub are the X25519
// public keys in that order, whichever side computes. It fails if the
// shared secret is all zeros, that is, if the peer's key is of low order.
func envelopeAEAD(priv *ecdh.PrivateKey, peer *ecdh.PublicKey, ephemeralPub, recipientPub []byte, ns [32]byte) (cipher.AEAD, error) {
	shared, err := priv.ECDH(peer)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, 0, len(ephemeralPub)+len(recipientPub))
	salt = append(append(salt, ephemeralPub...), recipientPub...)
	info := append([]byte(envelopeInfo), ns[:]...)
	key, err := hkdf.Key(sha256.New, shared, salt, string(info), chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	return chacha20poly1305.NewX(key)
}

func envelopeAD(recipient ed25519.PublicKey, ns [32]byte) []byte {
	ad := make([]byte, 0, 1+len(recipient)+len(ns))
	ad = append(ad, envelopeVersion)
	ad = append(ad, recipient...)
	return append(ad, ns[:]...)
}

// edPrivateToX25519 returns the X25519 private key of an Ed25519 key: the
// clamped first half of SHA-512(seed), the scalar Ed25519 itself uses, so
// its X25519 public key is the Montgomery form of the Ed25519 public key.
func edPrivateToX25519(me ed25519.PrivateKey) []byte {
	h := sha512.Sum512(me.Seed())
	s := h[:32]
	s[0] &= 248
	s[31] &= 127
	s[31] |= 64
	return s
}
