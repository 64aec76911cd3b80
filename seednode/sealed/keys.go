package sealed

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// ContentKey encrypts the values and files of one vault epoch.
type ContentKey [32]byte

// NameKey derives the private stored keys of entry names.
type NameKey [32]byte

// Keys returns the content key of an epoch, and false if the caller has none
// (for example, an epoch started after this device was revoked).
type Keys func(epoch uint32) (ContentKey, bool)

// Sentinel errors; every decoding error wraps exactly one of them.
var (
	// ErrDecrypt is an authentication failure: tampered data, a wrong key,
	// or data moved to another vault, entry key or epoch.
	ErrDecrypt = errors.New("cannot decrypt")
	// ErrNoKey means the Keys callback has no content key for the epoch.
	ErrNoKey = errors.New("no content key for this epoch")
	// ErrMalformed means the data is not in any format this package writes.
	ErrMalformed = errors.New("malformed sealed data")
	// ErrNotForMe means an envelope is addressed to another device.
	ErrNotForMe = errors.New("envelope is sealed to another device")
	// ErrInvalidPath rejects entry paths StoredKey and StoredPrefix cannot map.
	ErrInvalidPath = errors.New("invalid entry path")
)

// Format versions: each format has its own, so handing one kind of sealed
// data to another's decoder fails early as ErrMalformed.
const (
	valueVersion    = 1
	streamVersion   = 2
	envelopeVersion = 3
)

// NewContentKey returns a random content key.
func NewContentKey() (ContentKey, error) {
	var k ContentKey
	if _, err := rand.Read(k[:]); err != nil {
		return ContentKey{}, fmt.Errorf("sealed: new content key: %w", err)
	}
	return k, nil
}

// NewNameKey returns a random name key.
func NewNameKey() (NameKey, error) {
	var k NameKey
	if _, err := rand.Read(k[:]); err != nil {
		return NameKey{}, fmt.Errorf("sealed: new name key: %w", err)
	}
	return k, nil
}

// lookupKey asks keys for an epoch's content key; a nil callback has none.
func lookupKey(keys Keys, epoch uint32) (ContentKey, error) {
	if keys != nil {
		if k, ok := keys(epoch); ok {
			return k, nil
		}
	}
	return ContentKey{}, fmt.Errorf("epoch %d: %w", epoch, ErrNoKey)
}

// bindingAD is the associated data of values and streams: it binds the
// ciphertext to its format (domain), vault, epoch and entry key, so a seed
// that moves sealed bytes to another entry, vault or epoch makes them fail
// to open. storedKey is last, so its length prefix is belt and braces.
func bindingAD(domain string, ns [32]byte, epoch uint32, storedKey []byte) []byte {
	ad := make([]byte, 0, len(domain)+len(ns)+4+4+len(storedKey))
	ad = append(ad, domain...)
	ad = append(ad, ns[:]...)
	ad = binary.BigEndian.AppendUint32(ad, epoch)
	ad = binary.BigEndian.AppendUint32(ad, uint32(len(storedKey)))
	return append(ad, storedKey...)
}
