/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package v1alpha1

// A SeedNode's conditions are Ready and Degraded (conditions.go), and
// Progressing; these are the reasons it gives besides ReasonReconciled.
const (
	// ConditionProgressing is True while a public fleet shrinks: the pods
	// past spec.replicas are kept until they have handed their self-service
	// vaults off (reason HandingOff, the message names the pods and how many
	// vaults they still hold); and while some of its pods have not applied
	// the fleet's new membership yet (reason ApplyingMembers). False with
	// ReasonReconciled otherwise.
	ConditionProgressing ConditionType = "Progressing"
	// ReasonHandingOff: Progressing is True, the leaving pods of a public
	// fleet still hold self-service vaults (or have not yet said they hold
	// none).
	ReasonHandingOff ConditionReason = "HandingOff"
	// ReasonApplyingMembers: Progressing is True, pods of a public fleet
	// still report a membership other than the one their configuration
	// lists now (the fleet scaled; the kubelet updates the pods'
	// configuration files, and the seeds apply them without a restart).
	ReasonApplyingMembers ConditionReason = "ApplyingMembers"

	// ReasonAllPodsReady: Ready is True, every pod's seed reports ready.
	ReasonAllPodsReady ConditionReason = "AllPodsReady"
	// ReasonPodsNotReady: Ready is False; the message names the pods that
	// are not ready and why.
	ReasonPodsNotReady ConditionReason = "PodsNotReady"
	// ReasonInvalidSpec: Degraded is True, the API server accepted the
	// spec but the seeds would refuse it; the message names the field.
	ReasonInvalidSpec ConditionReason = "InvalidSpec"
	// ReasonApplyFailed: Degraded is True, writing a child failed (also
	// the reason of the Warning event recorded then).
	ReasonApplyFailed ConditionReason = "ApplyFailed"
)

// ReasonIdentityCreated is the reason of the Normal event recorded when the
// operator creates a pod's libp2p identity (no condition has it).
const ReasonIdentityCreated ConditionReason = "IdentityCreated"
