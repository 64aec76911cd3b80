// Package relay runs the circuit relay v2 service on seeds, for devices
// behind NAT: limits from the SeedNode configuration, an ACL by relay mode
// (config.RelayAgents: only known agents' device keys may reserve and be
// reached; config.RelayPublic: anyone, within the per-IP and per-ASN
// limits), reservations that advertise the seed's public and announced
// addresses as go-libp2p does (private ones only when configured), and a
// small side protocol that tells a refused device why, since the relay
// protocol itself only carries a status code.
package relay
