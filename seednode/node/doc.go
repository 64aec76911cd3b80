// Package node is the seed daemon's composition root: configuration, a
// persistent identity, the libp2p host, the vault store and the protocol
// services on top, with Run(ctx) and an idempotent Close().
//
// A seed hosts the vaults of its Placement (flags, the vaults file, the admin
// API). A vault placed with replica peers, the other seeds hosting it, is
// synced with each of them by this seed on its own, so replicas converge
// without any device; /status reports each replica's set fingerprint, blob
// counts and per-peer sync state.
package node
