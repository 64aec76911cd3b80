// Package node is the seed daemon's composition root: configuration, a
// persistent identity, the libp2p host, the vault store and the protocol
// services on top, with Run(ctx) and an idempotent Close().
//
// A seed hosts the vaults of its Placement (flags, the vaults file, the admin
// API, a fleet's self-service records). A vault placed with replica peers,
// the other seeds hosting it, is kept in sync with each of them by this seed
// on its own, so replicas converge without any device; /status reports each
// replica's set fingerprint, blob counts and per-peer sync state.
//
// How replicas stay in sync (replicate.go, exchange.go):
//
//   - A change is pushed. When a session with a device stores entries in a
//     vault, each of the vault's replica peers is synced after liveDebounce
//     (20 ms), one ordinary vault-sync session per peer for a whole burst of
//     writes. Entries that came from another seed are not passed on: the seed
//     they were written to pushes to every replica peer itself. Pushes have
//     their own bound on concurrent sessions, so a backlog never delays a
//     write. A live session kept open between every pair of seeds for every
//     vault was the alternative: it saves the stream setup and the
//     reconciliation's first round trips, but costs a stream and its memory
//     per (vault, peer) even when the vault is idle, which is what a seed
//     with 100,000 vaults cannot afford. Measured on loopback, the push
//     brings a write to a device live on another seed in a few tens of
//     milliseconds (hack/bench/fleet, fleet_cross_pod_live_p99_ms).
//   - Idle vaults cost nothing per vault. Once per replicateInterval, per
//     pair of seeds (the one with the lower peer ID asks), the seeds compare
//     digests of every (vault, set fingerprint) pair they share
//     (ExchangeProtocol): equal roots end it in one round trip; otherwise
//     the differing buckets name the vaults to sync. Fingerprints are cached
//     in memory and the digests updated as the store reports changes
//     (vault.StoreOptions.OnChange), so an exchange reads no vault from
//     Pebble. The exchange is what catches what a push missed: a peer that
//     was down, a new replica to fill, a vault changed by a repair.
//   - A pair whose sync fails is retried with exponential backoff; a peer
//     that does not exchange digests (an older seed, or one whose placement
//     does not name this seed) has its vaults synced every interval, one
//     session each, as before the exchange existed.
package node
