/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package v1alpha1

// ConditionPlaced is True when an AgentVault's replicas are assigned to pods
// and the assignment is published to them. An AgentVault also has Ready and
// Degraded (conditions.go).
const ConditionPlaced ConditionType = "Placed"

// Reasons of an AgentVault's conditions besides ReasonReconciled.
const (
	// ReasonSeedNodeNotFound: every condition says the SeedNode named by
	// spec.seedNodeRef does not exist.
	ReasonSeedNodeNotFound ConditionReason = "SeedNodeNotFound"
	// ReasonTooFewPods: Placed is False (every pod is full) or Degraded is
	// True (fewer pods can take the vault than spec.replicas asks).
	ReasonTooFewPods ConditionReason = "TooFewPods"
	// ReasonPlaced: Placed is True (also the reason of the Normal event
	// recorded when the vault is first placed).
	ReasonPlaced ConditionReason = "Placed"
	// ReasonMoving: the placement is being published, or replicas leave
	// and are kept until the joining ones have synced.
	ReasonMoving ConditionReason = "Moving"
	// ReasonSyncing: Ready is False while placed replicas sync.
	ReasonSyncing ConditionReason = "Syncing"
	// ReasonInSync: Ready is True, every placed replica is hosted and in
	// sync.
	ReasonInSync ConditionReason = "InSync"
	// ReasonDeleting: Ready is False while the replicas are dropped before
	// the AgentVault goes.
	ReasonDeleting ConditionReason = "Deleting"
	// ReasonReplicaDamaged: Degraded is True, a pod found its copy of the
	// vault damaged on disk and is rebuilding it from the other replicas
	// (also the reason of the Warning event).
	ReasonReplicaDamaged ConditionReason = "ReplicaDamaged"
)

// ReasonReplicasDropped is the reason of the Normal event recorded when no
// pod hosts a deleted AgentVault's vault any more (no condition has it: the
// object goes right after).
const ReasonReplicasDropped ConditionReason = "ReplicasDropped"
