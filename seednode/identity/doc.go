// Package identity manages the long-lived Ed25519 key that identifies a
// Seedfleet node. The same key yields both the node's libp2p peer ID and its
// did:key, so the two identifiers can always be converted into each other
// without a lookup; keys are stored on disk as owner-only PKCS#8 PEM files.
package identity
