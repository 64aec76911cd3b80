// Package relay runs the circuit relay v2 service on seeds, for devices
// behind NAT: limits from the SeedNode configuration, an ACL (mode "agents":
// only known agents' device keys may reserve and be reached; "public":
// anyone, with strict per-peer limits), and a small side protocol that tells
// a refused device why, since the relay protocol itself only carries a
// status code.
package relay
