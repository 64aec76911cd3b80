// Package p2p builds the libp2p hosts that seeds and devices run, with
// Seedfleet's defaults: TCP with TLS and yamux (the fastest stack measured on
// our target machines), an identity from an Ed25519 key file, the user agent
// seedfleet/<version> in identify, and nothing that dials a public address —
// no public bootstrap peers, relays or port mapping.
package p2p
