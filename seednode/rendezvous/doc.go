// Package rendezvous lets the devices of an agent find each other through
// seeds.
//
// Every device (an operational context of an agent, with its own Ed25519
// key, from which its libp2p peer ID derives) registers a signed Record on
// the seeds it uses: the agent's did:key, the device's context name, its
// public key, the multiaddrs it can be reached at and a timestamp, signed by
// the device key under a domain separator. A device then asks a seed for
// its agent's records and dials the other devices directly or through a
// relay.
//
// The protocol is /seedfleet/rendezvous/1.0.0, one request per stream: a
// request (at most 16 KiB) answered by a response (at most 1 MiB), each
// prefixed with its length as a minimal uvarint (see internal/wire) and
// under a 10 s deadline, with memory reserved from the stream's resource
// scope under the service name "seedfleet.rendezvous".
//
// A seed (Service) accepts a record only from the device it describes (the
// stream's remote peer must be the record's key), with a valid signature, a
// timestamp neither in the future beyond the allowed clock skew nor older
// than the TTL, a newer timestamp than the record it replaces, and the
// consent of an Authorizer (in Seedfleet, the agent document's list of
// operational keys). Records are soft state held in memory: they expire a
// TTL after their timestamp. The seed states its TTL in its answer to a
// registration (RegisterDetailed), and devices register again halfway to
// expiry (Registration.RenewAt). Lookups
// are answered, by default, only to devices the Authorizer allows for that
// agent, and return only records whose devices are still allowed.
//
// The client side (Register, Lookup) verifies every record a seed returns
// and drops the ones that fail: a seed cannot forge or alter a device's
// record, only withhold it. A seed's refusal comes back as a *RefusedError
// carrying the seed's reason.
package rendezvous
