/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package v1alpha1

// Condition types shared by both kinds. Every condition carries the
// generation it was computed for (ObservedGeneration).
const (
	// ConditionReady is True when the object serves what it promises: for a
	// SeedNode every pod is ready; for an AgentVault every placed replica is
	// hosted and in sync.
	ConditionReady = "Ready"
	// ConditionDegraded is True when the spec cannot be carried out as
	// written (the reason says why) or a part keeps failing.
	ConditionDegraded = "Degraded"
	// ConditionPlaced is True when an AgentVault's replicas are assigned to
	// pods and the assignment is published to them.
	ConditionPlaced = "Placed"
)

// Condition reasons. Reasons are CamelCase, stable and meant for tools; the
// condition message is meant for humans.
const (
	ReasonReconciled       = "Reconciled"
	ReasonPodsNotReady     = "PodsNotReady"
	ReasonAllPodsReady     = "AllPodsReady"
	ReasonInvalidSpec      = "InvalidSpec"
	ReasonSeedNodeNotFound = "SeedNodeNotFound"
	ReasonTooFewPods       = "TooFewPods"
	ReasonPlaced           = "Placed"
	ReasonMoving           = "Moving"
	ReasonSyncing          = "Syncing"
	ReasonInSync           = "InSync"
	ReasonPodUnreachable   = "PodUnreachable"
	ReasonDeleting         = "Deleting"
	ReasonApplyFailed      = "ApplyFailed"
	// ReasonReplicaDamaged: a pod found its copy of the vault damaged on
	// disk and is rebuilding it from the other replicas.
	ReasonReplicaDamaged = "ReplicaDamaged"
)
