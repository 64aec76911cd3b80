// Package ticket implements Seedfleet's copy-paste-safe tickets: a BlobTicket
// names a blob (BLAKE3 hash, size, format) and the peers that serve it, a
// DocTicket names a vault namespace and its seeds, and carries the namespace's
// write secret only when the caller explicitly adds it; a FleetTicket is what
// a public fleet publishes (its name, admission policy, replicas and some of
// its seeds), and an InviteTicket, signed by the fleet's key, admits one agent
// to a fleet whose policy is Invite. The text form is a prefix ("blob",
// "doc", "fleet" or "invite") and lowercase unpadded base32 of a versioned binary
// encoding that ends in a BLAKE3 checksum, so whitespace and case damage from
// copying is tolerated while a mistyped character is refused; QR renders any
// ticket as a QR code for a terminal.
package ticket
