/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package v1alpha1

// ConditionType is the type of a condition in a SeedNode's or AgentVault's
// status. The types each kind sets are in seednode_conditions.go and
// agentvault_conditions.go; these two are shared by both.
type ConditionType string

// ConditionReason is the reason of a condition: CamelCase, stable and meant
// for tools (the condition's message is meant for humans). Reasons double as
// the reasons of the events the operator records.
type ConditionReason string

// Condition types of both kinds. Every condition carries the generation it
// was computed for (ObservedGeneration).
const (
	// ConditionReady is True when the object serves what it promises: for a
	// SeedNode every pod is ready; for an AgentVault every placed replica is
	// hosted and in sync.
	ConditionReady ConditionType = "Ready"
	// ConditionDegraded is True when the spec cannot be carried out as
	// written (the reason says why) or a part keeps failing.
	ConditionDegraded ConditionType = "Degraded"
)

// ReasonReconciled: Degraded is False, the children or the placement match
// the spec.
const ReasonReconciled ConditionReason = "Reconciled"
