// Package wire is what the seed's protocols (vault sync, rendezvous,
// pairing, blobs) frame, decode and print peers' bytes with, so that each
// bound and check is written once.
//
// A frame is a minimal uvarint length, then that many bytes (the body).
// WriteFrame sends one in a single write; ReadLength, ReadBody and
// ReadFrame read one under a limit, and never allocate more than the bytes
// that have arrived (plus one bounded step), whatever length the peer
// claims. The Decoder reads a message's fields: a read past the end, a
// non-minimal varint or a length over its limit records an error that
// wraps the protocol's sentinel, never panics, and makes every later read
// return nothing, so a message decoder checks Err once at the end.
// Sanitize and Truncate make a peer's text safe to show and bounded.
//
// Every input these functions see comes from a peer and is hostile until
// checked. Each protocol keeps its own message format on top of frames
// (vault sync puts a type byte first in every body); nothing here may
// change the bytes a protocol sends.
package wire
