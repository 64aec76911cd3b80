// Package vault implements Seedfleet's metadata sync: signed entries
// {namespace, key, author, BLAKE3 hash, size, µs timestamp} stored in Pebble,
// and range-based set reconciliation over the libp2p protocol
// /seedfleet/vault-sync/1.0.0. Seeds and devices use the same code: every entry
// received from a peer is verified (author signature, namespace consent,
// limits) before it is stored, and nothing ever loads a whole vault in memory.
package vault
