package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// changeHeader is what a device checks of a stored change before handing
// it to Automerge: its hash (what the entry's path names), the changes it
// depends on (applied first), and its actor (which names its device).
type changeHeader struct {
	hash  [32]byte
	deps  [][32]byte
	actor []byte
}

// An Automerge change chunk: magic (4) | checksum (4) | type (1, 1 = change)
// | uLEB128 body length | body, where the hash is the SHA-256 of everything
// from the type byte on and the checksum its first 4 bytes. The body starts
// with uLEB128 n | n dependency hashes | uLEB128 actor length | actor.
var chunkMagic = []byte{0x85, 0x6f, 0x4a, 0x83}

const (
	chunkTypeChange = 1
	maxActorLen     = 1024
)

// parseChange reads the header of one uncompressed change chunk that must
// fill data exactly.
func parseChange(data []byte) (changeHeader, error) {
	var h changeHeader
	if len(data) < 10 || !bytes.Equal(data[:4], chunkMagic) {
		return h, fmt.Errorf("%w: not an Automerge chunk", ErrMalformed)
	}
	if data[8] != chunkTypeChange {
		return h, fmt.Errorf("%w: chunk type %d, want a change (%d)", ErrMalformed, data[8], chunkTypeChange)
	}
	h.hash = sha256.Sum256(data[8:])
	if !bytes.Equal(h.hash[:4], data[4:8]) {
		return h, fmt.Errorf("%w: change checksum does not match", ErrMalformed)
	}
	n, k := binary.Uvarint(data[9:])
	if k <= 0 || n != uint64(len(data)-9-k) {
		return h, fmt.Errorf("%w: change length does not match its chunk", ErrMalformed)
	}
	body := data[9+k:]
	deps, k := binary.Uvarint(body)
	if k <= 0 || deps > uint64(len(body)-k)/32 {
		return h, fmt.Errorf("%w: change dependencies", ErrMalformed)
	}
	body = body[k:]
	for range deps {
		h.deps = append(h.deps, [32]byte(body[:32]))
		body = body[32:]
	}
	alen, k := binary.Uvarint(body)
	if k <= 0 || alen == 0 || alen > maxActorLen || alen > uint64(len(body)-k) {
		return h, fmt.Errorf("%w: change actor", ErrMalformed)
	}
	h.actor = body[k : k+int(alen)]
	return h, nil
}

// checkChange parses a stored change and checks that it is the change its
// path names (hash) and that its actor is the device that stored it: the
// actor starts with the author ID, so a device cannot pass its changes off
// as another's.
func checkChange(data []byte, hash [32]byte, author [32]byte) (changeHeader, error) {
	h, err := parseChange(data)
	if err != nil {
		return h, err
	}
	if h.hash != hash {
		return h, fmt.Errorf("%w: change %x stored as %x", ErrMalformed, h.hash[:8], hash[:8])
	}
	if !bytes.HasPrefix(h.actor, author[:]) {
		return h, fmt.Errorf("%w: a change by actor %x stored by another device", ErrMalformed, h.actor)
	}
	return h, nil
}

// chunkTypeDocument is the type of the chunk Automerge's save() writes.
const chunkTypeDocument = 0

// snapshotHeads reads the heads a saved document names in its chunk
// header: magic | checksum | type 0 | uLEB128 length | body, where the body
// starts with uLEB128 n | n actors (uLEB128 length | bytes) | uLEB128 m | m
// head hashes. It lets a device tell that it holds every change of a
// snapshot without loading it (the load is the cost of opening a long
// document). data is hostile: an error says it could not tell.
func snapshotHeads(data []byte) ([][32]byte, error) {
	if len(data) < 10 || !bytes.Equal(data[:4], chunkMagic) || data[8] != chunkTypeDocument {
		return nil, fmt.Errorf("%w: not a saved Automerge document", ErrMalformed)
	}
	n, k := binary.Uvarint(data[9:])
	if k <= 0 || n > uint64(len(data)-9-k) {
		return nil, fmt.Errorf("%w: document length does not match its chunk", ErrMalformed)
	}
	body := data[9+k : 9+k+int(n)]
	actors, k := binary.Uvarint(body)
	if k <= 0 || actors > uint64(len(body)) {
		return nil, fmt.Errorf("%w: document actors", ErrMalformed)
	}
	body = body[k:]
	for range actors {
		alen, k := binary.Uvarint(body)
		if k <= 0 || alen > uint64(len(body)-k) {
			return nil, fmt.Errorf("%w: document actor", ErrMalformed)
		}
		body = body[k+int(alen):]
	}
	heads, k := binary.Uvarint(body)
	if k <= 0 || heads > uint64(len(body)-k)/32 {
		return nil, fmt.Errorf("%w: document heads", ErrMalformed)
	}
	body = body[k:]
	out := make([][32]byte, heads)
	for i := range out {
		out[i] = [32]byte(body[:32])
		body = body[32:]
	}
	return out, nil
}
