// Package vault implements Seedfleet's metadata sync: signed entries
// {namespace, key, author, BLAKE3 hash, size, µs timestamp} stored in Pebble,
// and range-based set reconciliation over the libp2p protocol
// /seedfleet/vault-sync/1.0.0. Seeds and devices use the same code: every entry
// received from a peer is verified (author signature, namespace consent,
// limits) before it is stored, and nothing ever loads a whole vault in memory.
//
// Deletion. A tombstone is an entry with the zero hash (which no value hashes
// to) and size 0, signed and verified like any other. It deletes, for its
// own author only, every entry whose key starts with the tombstone's key and
// whose timestamp is strictly older: a store removes them when the tombstone
// arrives, and counts such an entry arriving later as stale, so deleted data
// does not come back from a replica that still held it, while a newer write
// under the key is kept. A tombstone has a slot of its own per (key, author),
// so writing a key again after deleting it leaves the tombstone (and what it
// covers) in place. Tombstones stay, as they must reach every replica; a
// tombstone is removed only by a newer one of its author at its key or a
// prefix of it, which covers everything it did.
//
// Encoding. A tombstone's canonical form starts with TombstoneVersion instead
// of EncodingVersion, so its signature and fingerprint can never be those of
// a value, and a version-1 entry with the zero hash and size 0 is malformed.
// The wire form carries no version byte: the receiver takes the zero hash and
// size 0 for a tombstone and checks the signature over version-2 bytes. A
// peer from before tombstones would check it over version-1 bytes, find a
// bad author signature and end the session (it never stores a deletion as an
// empty value). So a node serving a session sends tombstones only to an
// initiator whose hello says it reads them (helloFlagTombstones); an
// initiator cannot know, so seeds are upgraded before devices delete. An
// older binary opening a store that holds tombstones reports the vault
// damaged rather than misreading it.
package vault
