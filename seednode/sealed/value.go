package sealed

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// A sealed value is
//
//	version (1) | epoch (u32 BE) | nonce (24, random) | XChaCha20-Poly1305 ciphertext
//
// with associated data valueDomain || ns || epoch || len(storedKey) || storedKey.
const (
	valueDomain    = "seedfleet/sealed/value/v1\x00"
	valueHeaderLen = 1 + 4 + chacha20poly1305.NonceSizeX

	// ValueOverhead is the exact number of bytes SealValue adds to a
	// plaintext: version byte, epoch, 24-byte nonce and 16-byte tag.
	ValueOverhead = valueHeaderLen + chacha20poly1305.Overhead
)

// SealValue encrypts a small value, held whole in memory, with the content
// key of epoch, for the entry storedKey of vault ns.
func SealValue(k ContentKey, epoch uint32, ns [32]byte, storedKey, plaintext []byte) ([]byte, error) {
	return sealValue(rand.Reader, k, epoch, ns, storedKey, plaintext)
}

func sealValue(random io.Reader, k ContentKey, epoch uint32, ns [32]byte, storedKey, plaintext []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(k[:])
	if err != nil {
		return nil, fmt.Errorf("sealed value: %w", err)
	}
	out := make([]byte, valueHeaderLen, len(plaintext)+ValueOverhead)
	out[0] = valueVersion
	binary.BigEndian.PutUint32(out[1:5], epoch)
	nonce := out[5:valueHeaderLen]
	if _, err := io.ReadFull(random, nonce); err != nil {
		return nil, fmt.Errorf("sealed value: nonce: %w", err)
	}
	return aead.Seal(out, nonce, plaintext, bindingAD(valueDomain, ns, epoch, storedKey)), nil
}

// SealedEpoch returns the epoch a sealed value was encrypted under, without
// decrypting it, so callers can tell which key they are missing.
func SealedEpoch(sealed []byte) (uint32, error) {
	if len(sealed) < ValueOverhead {
		return 0, fmt.Errorf("sealed value of %d bytes (at least %d): %w", len(sealed), ValueOverhead, ErrMalformed)
	}
	if sealed[0] != valueVersion {
		return 0, fmt.Errorf("sealed value version %d (want %d): %w", sealed[0], valueVersion, ErrMalformed)
	}
	return binary.BigEndian.Uint32(sealed[1:5]), nil
}

// OpenValue decrypts a value sealed by SealValue for the entry storedKey of
// vault ns, with the key keys returns for the value's epoch. The epoch is
// also returned with ErrNoKey and ErrDecrypt errors.
func OpenValue(keys Keys, ns [32]byte, storedKey, sealed []byte) (plaintext []byte, epoch uint32, err error) {
	epoch, err = SealedEpoch(sealed)
	if err != nil {
		return nil, 0, err
	}
	k, err := lookupKey(keys, epoch)
	if err != nil {
		return nil, epoch, fmt.Errorf("sealed value: %w", err)
	}
	aead, err := chacha20poly1305.NewX(k[:])
	if err != nil {
		return nil, epoch, fmt.Errorf("sealed value: %w", err)
	}
	nonce, ciphertext := sealed[5:valueHeaderLen], sealed[valueHeaderLen:]
	plaintext, err = aead.Open(nil, nonce, ciphertext, bindingAD(valueDomain, ns, epoch, storedKey))
	if err != nil {
		return nil, epoch, fmt.Errorf("sealed value (epoch %d): %w", epoch, ErrDecrypt)
	}
	return plaintext, epoch, nil
}
