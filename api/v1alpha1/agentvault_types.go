/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AgentVaultSpec is the desired state of one hosted vault.
type AgentVaultSpec struct {
	// AgentDID is the did:key of the agent that owns the vault (its root
	// Ed25519 key).
	// +required
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{42,44}$')",message="agentDID must be an Ed25519 did:key (did:key:z6Mk followed by base58btc), as printed by 'seedfleet agent show'"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="agentDID is immutable: create a new AgentVault for another agent"
	AgentDID string `json:"agentDID"`

	// NamespaceID is the vault's namespace: 52 lowercase base32 characters
	// (the public key of the vault's namespace).
	// +required
	// +kubebuilder:validation:MaxLength=52
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z2-7]{52}$')",message="namespaceID must be 52 lowercase base32 characters (a-z, 2-7), as printed by 'seedfleet vault create' or 'seedfleet agent show'"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="namespaceID is immutable: create a new AgentVault for another vault"
	NamespaceID string `json:"namespaceID"`

	// SeedNodeRef names the SeedNode, in the same namespace, that hosts the
	// vault.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="seedNodeRef is immutable: create a new AgentVault on the other SeedNode, let it sync, then delete this one"
	SeedNodeRef SeedNodeReference `json:"seedNodeRef"`

	// Replicas is how many pods hold a copy of the vault.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=7
	// +kubebuilder:default=2
	// +optional
	Replicas int32 `json:"replicas,omitempty"`

	// Quota bounds the vault; unset fields use the SeedNode's default quota.
	// +optional
	Quota Quota `json:"quota,omitempty"`

	// RelayAccess lets the agent's devices reserve relay slots on the hosting
	// pods (the keys listed in the agent's document).
	// +kubebuilder:default=Devices
	// +optional
	RelayAccess RelayAccess `json:"relayAccess,omitempty"`
}

// SeedNodeReference names a SeedNode in the same namespace.
type SeedNodeReference struct {
	// Name of the SeedNode.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=40
	Name string `json:"name"`
}

// RelayAccess says whether an agent's devices may use the seeds' relay.
// +kubebuilder:validation:Enum=Devices;None
type RelayAccess string

// Relay access values.
const (
	RelayAccessDevices RelayAccess = "Devices"
	RelayAccessNone    RelayAccess = "None"
)

// Quota bounds a vault.
type Quota struct {
	// MaxEntries is the most (key, author) slots the vault may hold.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxEntries *int64 `json:"maxEntries,omitempty"`
	// MaxBytes is the most value bytes the vault's entries may reference.
	// +optional
	MaxBytes *resource.Quantity `json:"maxBytes,omitempty"`
}

// ReplicaRole is where a replica stands in a placement.
// +kubebuilder:validation:Enum=Active;Joining;Leaving
type ReplicaRole string

// Replica roles.
const (
	// ReplicaActive is a placed replica that has synced.
	ReplicaActive ReplicaRole = "Active"
	// ReplicaJoining is a placed replica still syncing from the others.
	ReplicaJoining ReplicaRole = "Joining"
	// ReplicaLeaving is no longer placed; it is kept until every joining
	// replica has synced, then dropped.
	ReplicaLeaving ReplicaRole = "Leaving"
)

// ReplicaStatus is one pod's copy of the vault, as read from the pod.
type ReplicaStatus struct {
	// Pod name.
	Pod string `json:"pod"`
	// PeerID of the pod.
	// +optional
	PeerID string `json:"peerID,omitempty"`
	// Role of the replica in the placement.
	Role ReplicaRole `json:"role"`
	// Hosted is true when the pod reports hosting the vault.
	Hosted bool `json:"hosted"`
	// Synced is true when the replica holds the same entries as the other
	// replicas (equal fingerprints) and every blob they refer to.
	Synced bool `json:"synced"`
	// Entries held by the replica.
	// +optional
	Entries int64 `json:"entries,omitempty"`
	// Bytes the replica's entries refer to.
	// +optional
	Bytes int64 `json:"bytes,omitempty"`
	// BlobsMissing is how many referenced blobs the pod does not have yet.
	// +optional
	BlobsMissing int32 `json:"blobsMissing,omitempty"`
	// Message says why the replica could not be read or is not synced.
	// +optional
	Message string `json:"message,omitempty"`
	// Damage is set while the pod repairs its copy of the vault, found
	// damaged on disk: the repair's state (Quarantined: nothing served;
	// Rebuilding: refilling from the other replicas) and what was found. A
	// damaged replica never counts as synced.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Damage string `json:"damage,omitempty"`
}

// AgentVaultStatus is the observed state of an AgentVault.
type AgentVaultStatus struct {
	// ObservedGeneration is the generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Placement lists the pods holding (or about to hold, or about to drop)
	// a replica.
	// +listType=map
	// +listMapKey=pod
	// +optional
	Placement []ReplicaStatus `json:"placement,omitempty"`

	// ReadyReplicas is how many placed replicas are hosted and synced.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas"`

	// SeedAddrs are the placed pods' full multiaddrs.
	// +optional
	SeedAddrs []string `json:"seedAddrs,omitempty"`

	// ReadTicket is a read-only vault ticket naming the vault and its seeds
	// (`seedfleet sync <ticket>`); entries stay encrypted for anyone without
	// the agent's keys.
	// +optional
	ReadTicket string `json:"readTicket,omitempty"`

	// Conditions: Placed, Ready, Degraded.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// AgentVault asks a SeedNode to host replicas of one agent's vault.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=av,categories=seedfleet
// +kubebuilder:printcolumn:name="SeedNode",type=string,JSONPath=`.spec.seedNodeRef.name`
// +kubebuilder:printcolumn:name="Placed",type=string,JSONPath=`.status.conditions[?(@.type=="Placed")].status`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.status.readyReplicas`,description="replicas hosted and synced"
// +kubebuilder:printcolumn:name="Agent",type=string,JSONPath=`.spec.agentDID`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AgentVault struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec AgentVaultSpec `json:"spec"`
	// +optional
	Status AgentVaultStatus `json:"status,omitempty"`
}

// AgentVaultList is a list of AgentVaults.
// +kubebuilder:object:root=true
type AgentVaultList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AgentVault `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AgentVault{}, &AgentVaultList{})
}
