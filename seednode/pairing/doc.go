// Package pairing authorizes a new device of an agent from a device the
// agent already trusts, with a short code the user reads on one screen and
// types on the other.
//
// The new device (B) makes its key, shows a Code and a Ticket (its peer ID
// and addresses) and runs Await; on the trusted device (A) the user runs
// Approve with the ticket and the code. The two run CPace, a balanced PAKE,
// over ristretto255 on a /seedfleet/pair/1.0.0 libp2p stream, with the code,
// both peer IDs as the libp2p secure channel authenticated them, and a fresh
// session ID bound into the generator. A man in the middle who does not know
// the code gets one online guess per attempt and nothing to test guesses
// against offline; Await gives up after MaxAttempts failed attempts. Only
// after both sides confirmed the shared key does B send its Request, A's
// Decide callback approve B's Ed25519 key (its peer ID), and A send B an
// opaque welcome payload, every message after key confirmation MAC'd with a
// key derived from the PAKE.
//
// Frames are prefixed with their length as a minimal uvarint (see
// internal/wire; at most MaxWelcomeSize plus a small header), every step
// runs under a deadline (StepTimeout; DecideTimeout for the approval
// itself), and frame memory is reserved from the stream's resource scope
// under the service name "seedfleet.pairing". A peer's text (a refusal
// reason) is sanitized before it is shown.
package pairing
