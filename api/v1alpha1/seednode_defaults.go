/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Defaults of a SeedNode's spec. The API server applies them from the
// kubebuilder default markers in seednode_types.go, which carry the same
// values (a test compares the generated CRD with Default); the operator
// applies them with Default to objects the API server never defaulted
// (unit tests, fake clients), so both build the same children.
const (
	DefaultSeedReplicas      int32 = 3
	DefaultImagePullPolicy         = corev1.PullIfNotPresent
	DefaultStorageSize             = "10Gi"
	DefaultP2PPort           int32 = 4001
	DefaultAdminPort         int32 = 7401
	DefaultServiceType             = ServiceTypeClusterIP
	DefaultDHTMode                 = DHTServer
	DefaultDHTProtocolPrefix       = "/seedfleet"
	DefaultRelayMode               = RelayAgents
	DefaultLogLevel                = LogInfo
	DefaultAdmission               = AdmissionClosed
	// DefaultSelfServiceReplicas is R of a public fleet whose
	// selfService.replicas is unset, unless spec.replicas is smaller.
	DefaultSelfServiceReplicas int32 = 3
)

// WithDefaults returns a copy of sn whose spec has every default set.
func (sn *SeedNode) WithDefaults() *SeedNode {
	out := sn.DeepCopy()
	out.Spec.Default()
	return out
}

// Default sets every empty field of s that has a default, as the API server
// does on create. Fields without a default (limits, quotas, scheduling) stay
// empty: the seeds' own defaults apply to them.
func (s *SeedNodeSpec) Default() {
	if s.Replicas == 0 {
		s.Replicas = DefaultSeedReplicas
	}
	if s.ImagePullPolicy == "" {
		s.ImagePullPolicy = DefaultImagePullPolicy
	}
	if s.LogLevel == "" {
		s.LogLevel = DefaultLogLevel
	}
	s.Storage.Default()
	s.Ports.Default()
	s.Expose.Default()
	s.DHT.Default()
	s.Relay.Default()
	s.Hosting.Default()
}

// Default sets the self-service admission policy if selfService is set and
// the policy empty.
func (h *HostingSpec) Default() {
	if h.SelfService != nil && h.SelfService.Admission == "" {
		h.SelfService.Admission = DefaultAdmission
	}
}

// SelfServiceReplicas is R, the pods holding each self-service vault:
// selfService.replicas, else DefaultSelfServiceReplicas or spec.replicas
// if smaller. 0 without selfService.
func (s *SeedNodeSpec) SelfServiceReplicas() int32 {
	ss := s.Hosting.SelfService
	if ss == nil {
		return 0
	}
	if ss.Replicas != nil {
		return *ss.Replicas
	}
	replicas := s.Replicas
	if replicas == 0 {
		replicas = DefaultSeedReplicas
	}
	return min(DefaultSelfServiceReplicas, replicas)
}

// Default sets the volume size if empty.
func (s *StorageSpec) Default() {
	if s.Size.IsZero() {
		s.Size = resource.MustParse(DefaultStorageSize)
	}
}

// Default sets the libp2p and admin ports if empty; WebSocket stays off.
func (p *PortsSpec) Default() {
	if p.P2P == 0 {
		p.P2P = DefaultP2PPort
	}
	if p.Admin == 0 {
		p.Admin = DefaultAdminPort
	}
}

// Default sets the Service type if empty.
func (e *ExposeSpec) Default() {
	if e.ServiceType == "" {
		e.ServiceType = DefaultServiceType
	}
}

// Default sets the DHT mode and protocol prefix if empty.
func (d *DHTSpec) Default() {
	if d.Mode == "" {
		d.Mode = DefaultDHTMode
	}
	if d.ProtocolPrefix == "" {
		d.ProtocolPrefix = DefaultDHTProtocolPrefix
	}
}

// Default sets the relay mode if empty.
func (r *RelaySpec) Default() {
	if r.Mode == "" {
		r.Mode = DefaultRelayMode
	}
}
