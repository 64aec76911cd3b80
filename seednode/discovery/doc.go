// Package discovery finds seeds and devices: the Kademlia DHT that seeds
// serve (a private protocol prefix, so it never mixes with public DHTs), the
// content keys under which a seed announces the vaults it hosts, a provider
// loop that re-announces them on schedule, and the ordered Pebble datastore
// (go-ds-pebble) that keeps a seed's provider records.
package discovery
