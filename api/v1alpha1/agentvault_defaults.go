/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package v1alpha1

// Defaults of an AgentVault's spec, the same values as the kubebuilder
// default markers in agentvault_types.go (see the SeedNode's defaults).
const (
	DefaultVaultReplicas int32 = 2
	DefaultRelayAccess         = RelayAccessDevices
)

// WithDefaults returns a copy of av whose spec has every default set.
func (av *AgentVault) WithDefaults() *AgentVault {
	out := av.DeepCopy()
	out.Spec.Default()
	return out
}

// Default sets every empty field of s that has a default, as the API server
// does on create. The quota stays empty: the SeedNode's default quota
// applies.
func (s *AgentVaultSpec) Default() {
	if s.Replicas == 0 {
		s.Replicas = DefaultVaultReplicas
	}
	if s.RelayAccess == "" {
		s.RelayAccess = DefaultRelayAccess
	}
}
