// Package node is the seed daemon's composition root: configuration, a
// persistent identity, the libp2p host, the vault store and the protocol
// services on top, with Run(ctx) and an idempotent Close().
package node
