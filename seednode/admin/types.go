package admin

import "time"

// Status is a seed pod's state as the operator reads it from PathStatus.
//
// Ready and ReadyReason are filled in by the Server from Source.Ready, so
// /status and /readyz always agree.
type Status struct {
	PeerID string `json:"peerID"`
	// Addrs are full multiaddrs ending in /p2p/<PeerID>, ready to hand to devices.
	Addrs       []string      `json:"addrs,omitempty"`
	Version     string        `json:"version,omitempty"`
	StartedAt   time.Time     `json:"startedAt,omitzero"`
	Ready       bool          `json:"ready"`
	ReadyReason string        `json:"readyReason,omitempty"`
	DHT         DHTStatus     `json:"dht,omitzero"`
	Relay       RelayStatus   `json:"relay,omitzero"`
	Vaults      []VaultStatus `json:"vaults,omitempty"`
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
	Namespace     string    `json:"namespace"` // 52-character lowercase base32 namespace ID
	Entries       uint64    `json:"entries"`
	Bytes         uint64    `json:"bytes"`
	BlobsComplete int       `json:"blobsComplete"`
	BlobsMissing  int       `json:"blobsMissing"`
	LastSync      time.Time `json:"lastSync,omitzero"`
	Peers         int       `json:"peers"`
}

// HostedVaults is the body of PathHostedVaults: GET answers it, PUT takes it
// and replaces the whole list. Vaults are 52-character lowercase base32
// namespace IDs; an empty list hosts nothing.
type HostedVaults struct {
	Vaults []string `json:"vaults"`
}

// ErrorResponse is the JSON body of the JSON endpoints' error answers.
type ErrorResponse struct {
	Error string `json:"error"`
}
