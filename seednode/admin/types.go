package admin

import "time"

// Status is a seed pod's state as the operator reads it from PathStatus.
//
// Ready and ReadyReason are filled in by the Server from Source.Ready, so
// /status and /readyz always agree.
type Status struct {
	PeerID string `json:"peerID"`
	// Addrs are full multiaddrs ending in /p2p/<PeerID>, ready to hand to devices.
	Addrs       []string    `json:"addrs,omitempty"`
	Version     string      `json:"version,omitempty"`
	StartedAt   time.Time   `json:"startedAt,omitzero"`
	Ready       bool        `json:"ready"`
	ReadyReason string      `json:"readyReason,omitempty"`
	DHT         DHTStatus   `json:"dht,omitzero"`
	Relay       RelayStatus `json:"relay,omitzero"`
	// Integrity tells how the verification of the vault replicas goes.
	Integrity IntegrityStatus `json:"integrity,omitzero"`
	Vaults    []VaultStatus   `json:"vaults,omitempty"`
}

// IntegrityStatus describes the seed's verification of its vault replicas
// (stored sums against entries, every entry readable).
type IntegrityStatus struct {
	// Verifying is true while a verification pass runs.
	Verifying bool `json:"verifying,omitempty"`
	// LastPass is when the latest complete pass over every vault began: a
	// pass asked for at time T is done once LastPass is after T.
	LastPass time.Time `json:"lastPass,omitzero"`
	// Damaged is how many hosted replicas are being repaired (see VaultStatus.Damage).
	Damaged int `json:"damaged,omitempty"`
}

// DHTStatus describes the seed's Kademlia DHT participation. The zero value
// (no DHT) is left out of the JSON.
type DHTStatus struct {
	Mode             string    `json:"mode,omitempty"` // e.g. "server", "client"
	RoutingTableSize int       `json:"routingTableSize"`
	LastReprovide    time.Time `json:"lastReprovide,omitzero"`
	// ReprovideLagSeconds is how far the reprovide schedule is behind; 0 when on time.
	ReprovideLagSeconds float64 `json:"reprovideLagSeconds"`
}

// RelayStatus describes the seed's circuit relay service. The zero value (no
// relay) is left out of the JSON.
type RelayStatus struct {
	Mode string `json:"mode,omitempty"` // e.g. "agents", "public"
	// AllowedPeers is how many device keys may reserve in agents mode.
	// Live reservation counts are in the relay's metrics.
	AllowedPeers int `json:"allowedPeers,omitempty"`
}

// VaultStatus is the state of one hosted vault replica.
type VaultStatus struct {
	Namespace string `json:"namespace"` // 52-character lowercase base32 namespace ID
	Entries   uint64 `json:"entries"`
	Bytes     uint64 `json:"bytes"`
	// Fingerprint is the lowercase hex fingerprint of the replica's whole
	// entry set: replicas with equal fingerprints hold the same entries (an
	// empty replica's is all zeros).
	Fingerprint string `json:"fingerprint,omitempty"`
	// BlobsComplete and BlobsMissing count the blobs the entries refer to
	// that this seed holds, and does not hold yet. They are recounted soon
	// after blobs are fetched, and at every garbage collection.
	BlobsComplete int       `json:"blobsComplete"`
	BlobsMissing  int       `json:"blobsMissing"`
	LastSync      time.Time `json:"lastSync,omitzero"`
	// Peers is how many distinct peers (devices and seeds) synced this vault.
	Peers int `json:"peers"`
	// Replicas is the replication state with each configured replica peer
	// (HostedVaults.Peers), in the configured order.
	Replicas []ReplicaStatus `json:"replicas,omitempty"`
	// Damage is set while this replica is quarantined because the seed found
	// its stored copy damaged; nil when the replica is sound. A quarantined
	// replica serves no sessions and reports no entries; the seed rebuilds it
	// from the vault's other replicas (or the next device that syncs).
	Damage *VaultDamage `json:"damage,omitempty"`
}

// DamageState is how far the repair of a damaged replica has come.
type DamageState string

const (
	// DamageQuarantined: the damage was found; the replica's data is being
	// removed and no session is served.
	DamageQuarantined DamageState = "Quarantined"
	// DamageRebuilding: the damaged data is gone and the replica is being
	// synced again from another replica or a device.
	DamageRebuilding DamageState = "Rebuilding"
)

// VaultDamage describes a quarantined replica.
type VaultDamage struct {
	State DamageState `json:"state"`
	// Reason is what was found, e.g. a checksum error in a store file or
	// stored sums that disagree with the entries.
	Reason string `json:"reason"`
	// Since is when the damage was found.
	Since time.Time `json:"since"`
}

// ReplicaStatus is how this seed's syncs of a vault with one replica peer
// (another seed hosting the vault) are going.
type ReplicaStatus struct {
	// Peer is the other seed's peer ID.
	Peer string `json:"peer"`
	// LastSync is when a sync with the peer last succeeded (zero: never).
	LastSync time.Time `json:"lastSync,omitzero"`
	// LastError is why the latest sync failed; empty after a success.
	LastError string `json:"lastError,omitempty"`
}

// HostedVaults is the body of PathHostedVaults: GET answers it, PUT takes it
// and replaces the whole placement. Vaults are 52-character lowercase base32
// namespace IDs; an empty list hosts nothing.
//
// Peers maps a vault (which must be in Vaults) to the full multiaddrs, ending
// in /p2p/<peer ID>, of the other seeds hosting it, at most MaxPeersPerVault
// each; several addresses with one peer ID are addresses of one peer. The
// seed syncs each such vault with those peers on its own, so replicas
// converge without any device. GET answers them grouped by peer.
//
// Options maps a vault (which must be in Vaults) to its own settings; a
// vault without an entry gets the seed's defaults. GET leaves out vaults
// whose options are all zero.
type HostedVaults struct {
	Vaults  []string                `json:"vaults"`
	Peers   map[string][]string     `json:"peers,omitempty"`
	Options map[string]VaultOptions `json:"options,omitempty"`
}

// VaultOptions are one hosted vault's settings. The zero value is the seed's
// defaults.
type VaultOptions struct {
	// MaxEntries and MaxBytes are the vault's quota, in place of the seed's
	// configured limits; 0 means the seed's limit.
	MaxEntries uint64 `json:"maxEntries,omitempty"`
	MaxBytes   uint64 `json:"maxBytes,omitempty"`
	// NoRelay keeps the vault's devices (its agent document's keys, or its
	// authors) off the relay's agents-mode allow-list. A device still gets in
	// through another hosted vault that allows the relay.
	NoRelay bool `json:"noRelay,omitempty"`
}

// ErrorResponse is the JSON body of the JSON endpoints' error answers.
type ErrorResponse struct {
	Error string `json:"error"`
}
