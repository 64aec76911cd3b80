// Package p2p builds the libp2p hosts that seeds and devices run, with
// Seedfleet's defaults: TCP with TLS and yamux (the fastest stack measured on
// our target machines), an identity from an Ed25519 key file, the user agent
// seedfleet/<version> in identify, and nothing that dials a public address —
// no public bootstrap peers, relays or port mapping. Under TLS and Noise,
// the records of one Write leave in one write to the connection below
// (batch.go): a system call per yamux frame rather than per record, and no
// record split in two on a relayed connection.
package p2p
