/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxSeedReplicas bounds SeedNode.spec.replicas. Each pod's identity Secret
// is projected into the shared pod template by ordinal, so the template can
// stay the same when the SeedNode scales.
const MaxSeedReplicas = 32

// SeedNodeSpec is the desired state of a fleet of seed pods.
// +kubebuilder:validation:XValidation:rule="!has(self.hosting) || !has(self.hosting.selfService) || !has(self.hosting.selfService.replicas) || self.hosting.selfService.replicas <= (has(self.replicas) ? self.replicas : 3)",message="spec.hosting.selfService.replicas must be at most spec.replicas: each self-service vault is held by that many distinct pods"
type SeedNodeSpec struct {
	// Replicas is the number of seed pods. Scaling moves few vaults: each
	// vault moves only if its rendezvous-hash ranking changes.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=32
	// +kubebuilder:default=3
	// +optional
	Replicas int32 `json:"replicas,omitempty"`

	// Image runs the seed pods. Defaults to the operator's own image
	// (one image serves both).
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Image string `json:"image,omitempty"`

	// ImagePullPolicy of the seed container.
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	// +kubebuilder:default=IfNotPresent
	// +optional
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// ImagePullSecrets for private registries.
	// +kubebuilder:validation:MaxItems=8
	// +optional
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// Resources of the seed container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// Storage is the volume each pod keeps its vaults and blobs on.
	// +kubebuilder:default={size: "10Gi"}
	// +optional
	Storage StorageSpec `json:"storage,omitempty"`

	// Ports the seed listens on.
	// +kubebuilder:default={p2p: 4001, admin: 7401}
	// +optional
	Ports PortsSpec `json:"ports,omitempty"`

	// Expose decides how devices outside the cluster reach each pod.
	// +kubebuilder:default={serviceType: ClusterIP}
	// +optional
	Expose ExposeSpec `json:"expose,omitempty"`

	// DHT settings.
	// +kubebuilder:default={mode: Server}
	// +optional
	DHT DHTSpec `json:"dht,omitempty"`

	// Relay settings: the circuit relay v2 service for devices behind NAT.
	// +kubebuilder:default={mode: Agents}
	// +optional
	Relay RelaySpec `json:"relay,omitempty"`

	// Hosting bounds what each pod hosts.
	// +optional
	Hosting HostingSpec `json:"hosting,omitempty"`

	// Scheduling places the pods on nodes.
	// +optional
	Scheduling SchedulingSpec `json:"scheduling,omitempty"`

	// Metrics exposes the pods' Prometheus metrics.
	// +optional
	Metrics MetricsSpec `json:"metrics,omitempty"`

	// LogLevel of the seed pods: Debug, Info, Warn or Error.
	// +kubebuilder:default=Info
	// +optional
	LogLevel LogLevel `json:"logLevel,omitempty"`
}

// StorageSpec is the persistent volume of each pod. It cannot change after
// creation: a StatefulSet's volume claim templates are immutable.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="storage is immutable: a StatefulSet's volume claims cannot change; create a new SeedNode to move to other storage"
type StorageSpec struct {
	// Size is omitzero, not omitempty: a Quantity is a struct, which
	// omitempty never omits, so a Go client leaving it unset would send "0"
	// and the API server would store that instead of the default.

	// Size of each pod's volume.
	// +kubebuilder:default="10Gi"
	// +optional
	Size resource.Quantity `json:"size,omitzero"`

	// StorageClassName of the volumes; empty uses the cluster's default class.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`
}

// PortsSpec are the container ports of a seed pod.
// +kubebuilder:validation:XValidation:rule="self.p2p != self.admin",message="ports.p2p and ports.admin must differ"
// +kubebuilder:validation:XValidation:rule="!has(self.webSocket) || (self.webSocket != self.p2p && self.webSocket != self.admin)",message="ports.webSocket must differ from ports.p2p and ports.admin"
type PortsSpec struct {
	// P2P is the libp2p port, TCP and QUIC (UDP) alike.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +kubebuilder:default=4001
	// +optional
	P2P int32 `json:"p2p,omitempty"`

	// Admin is the HTTP port of health, readiness, metrics and the
	// operator's admin API.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +kubebuilder:default=7401
	// +optional
	Admin int32 `json:"admin,omitempty"`

	// WebSocket, if set, also listens for libp2p over WebSocket (browsers).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	WebSocket *int32 `json:"webSocket,omitempty"`
}

// ServiceType says how each pod is exposed.
// +kubebuilder:validation:Enum=None;ClusterIP;NodePort;LoadBalancer
type ServiceType string

// Service types of ExposeSpec.
const (
	ServiceTypeNone         ServiceType = "None"
	ServiceTypeClusterIP    ServiceType = "ClusterIP"
	ServiceTypeNodePort     ServiceType = "NodePort"
	ServiceTypeLoadBalancer ServiceType = "LoadBalancer"
)

// ExposeSpec decides how pods are reached. Each pod gets its own Service
// (libp2p peers are addressed one by one, never load-balanced).
type ExposeSpec struct {
	// ServiceType of the per-pod Services; None creates none (pods are
	// then reached by their pod IPs only).
	// +kubebuilder:default=ClusterIP
	// +optional
	ServiceType ServiceType `json:"serviceType,omitempty"`

	// Annotations added to every per-pod Service (load-balancer settings).
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`

	// Announce lists multiaddrs the pods announce to devices, as templates:
	// {ordinal} and {pod} are replaced per pod, for example
	// /dns4/seed-{ordinal}.example.org/tcp/4001. Without it, pods announce
	// their per-pod Service address (a LoadBalancer's ingress once assigned).
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=256
	// +kubebuilder:validation:items:Pattern=`^/(ip4|ip6|dns|dns4|dns6)/[^/]+/(tcp|udp)/[0-9{}a-z]+(/.*)?$`
	// +kubebuilder:validation:XValidation:rule="self.all(a, !a.contains('/p2p/'))",message="announce addresses must not contain /p2p/: the operator appends each pod's peer ID"
	// +optional
	Announce []string `json:"announce,omitempty"`
}

// DHTMode is how the pods take part in the Kademlia DHT.
// +kubebuilder:validation:Enum=Server;Client;Off
type DHTMode string

// DHT modes.
const (
	// DHTServer answers queries and keeps records alive (what seeds are for).
	DHTServer DHTMode = "Server"
	// DHTClient queries the DHT but answers no queries.
	DHTClient DHTMode = "Client"
	// DHTOff takes no part in the DHT.
	DHTOff DHTMode = "Off"
)

// DHTSpec configures the DHT. Pods of one SeedNode always bootstrap from
// each other.
type DHTSpec struct {
	// Mode is Server (answer queries, keep records alive), Client or Off.
	// +kubebuilder:default=Server
	// +optional
	Mode DHTMode `json:"mode,omitempty"`

	// ProtocolPrefix separates this DHT from others; devices must use the
	// same one.
	// +kubebuilder:validation:Pattern=`^/[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$`
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:default="/seedfleet"
	// +optional
	ProtocolPrefix string `json:"protocolPrefix,omitempty"`

	// BootstrapPeers are further full multiaddrs (ending in /p2p/<peer ID>),
	// for example another fleet's seeds.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.all(a, a.startsWith('/') && a.contains('/p2p/'))",message="bootstrapPeers must be full multiaddrs ending in /p2p/<peer ID>"
	// +optional
	BootstrapPeers []string `json:"bootstrapPeers,omitempty"`

	// ReprovideInterval is how often provider records are published again.
	// +optional
	ReprovideInterval *metav1.Duration `json:"reprovideInterval,omitempty"`
}

// RelayMode decides who may reserve a relay slot.
// +kubebuilder:validation:Enum=Agents;Public;Off
type RelayMode string

// Relay modes.
const (
	// RelayAgents serves only devices of the agents whose vaults are hosted
	// (and AgentVaults may turn that off per vault).
	RelayAgents RelayMode = "Agents"
	// RelayPublic serves anyone within the limits (public fleets).
	RelayPublic RelayMode = "Public"
	// RelayOff runs no relay.
	RelayOff RelayMode = "Off"
)

// RelaySpec configures the circuit relay v2 service.
type RelaySpec struct {
	// Mode is Agents, Public or Off.
	// +kubebuilder:default=Agents
	// +optional
	Mode RelayMode `json:"mode,omitempty"`

	// AdvertisePrivateAddrs lets reservations advertise the pods' private
	// and loopback addresses too. Unset, a reservation advertises only the
	// pod's public addresses and those it announces (spec.expose.announce,
	// or its per-pod Service's), as go-libp2p's relay does: a device behind
	// NAT gains nothing from a relay address it cannot reach. Set it for a
	// fleet whose devices share the cluster's private network.
	// +optional
	AdvertisePrivateAddrs bool `json:"advertisePrivateAddrs,omitempty"`

	// Limits bound the relay; unset fields keep the seed's defaults.
	// +optional
	Limits RelayLimits `json:"limits,omitempty"`
}

// RelayLimits bound the relay's resources on each pod. A circuit v2 relay
// holds one reservation per peer (a peer's new reservation replaces its
// old one), so there is no per-peer reservation limit.
type RelayLimits struct {
	// MaxReservations in total.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	MaxReservations *int32 `json:"maxReservations,omitempty"`
	// MaxReservationsPerIP from one IP address.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65536
	// +optional
	MaxReservationsPerIP *int32 `json:"maxReservationsPerIP,omitempty"`
	// MaxCircuits open at once per peer.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1024
	// +optional
	MaxCircuits *int32 `json:"maxCircuits,omitempty"`
	// CircuitDuration bounds a relayed connection's life.
	// +optional
	CircuitDuration *metav1.Duration `json:"circuitDuration,omitempty"`
	// CircuitBytes bounds what a relayed connection carries each way.
	// +optional
	CircuitBytes *resource.Quantity `json:"circuitBytes,omitempty"`
}

// HostingSpec bounds what each pod hosts.
type HostingSpec struct {
	// MaxVaultsPerPod: AgentVaults that do not fit stay unplaced with a
	// Degraded condition. 0 means no limit.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	MaxVaultsPerPod int32 `json:"maxVaultsPerPod,omitempty"`

	// DefaultQuota applies to vaults whose AgentVault sets none.
	// +optional
	DefaultQuota Quota `json:"defaultQuota,omitempty"`

	// SelfService makes the pods a public fleet: any agent's device may ask
	// it to host its vaults (seedfleet host request), without an AgentVault
	// per vault, within the admission policy and limits given here. The
	// fleet's name is <namespace>/<SeedNode name>; its ticket is published
	// in status.fleet.ticket. Unset: the pods host only AgentVaults.
	// +optional
	SelfService *SelfServiceSpec `json:"selfService,omitempty"`
}

// Admission is who a public fleet hosts without an administrator.
// +kubebuilder:validation:Enum=Closed;Open;Invite
type Admission string

// Admission policies of SelfServiceSpec.
const (
	// AdmissionClosed admits no self-service requests: only AgentVaults
	// are hosted (the pods still answer status and release).
	AdmissionClosed Admission = "Closed"
	// AdmissionOpen admits any agent within the limits.
	AdmissionOpen Admission = "Open"
	// AdmissionInvite admits agents that present an invite ticket signed
	// by the fleet's key (the operator keeps it in a Secret).
	AdmissionInvite Admission = "Invite"
)

// SelfServiceSpec is a public fleet's admission policy and limits.
// +kubebuilder:validation:XValidation:rule="!has(self.limits) || !has(self.limits.defaultQuota) || !has(self.limits.defaultQuota.maxEntries) || !has(self.limits.maxQuota) || !has(self.limits.maxQuota.maxEntries) || self.limits.defaultQuota.maxEntries <= self.limits.maxQuota.maxEntries",message="spec.hosting.selfService.limits.defaultQuota.maxEntries must be at most limits.maxQuota.maxEntries"
type SelfServiceSpec struct {
	// Admission is Closed (no self-service requests admitted), Open
	// (anyone within the limits) or Invite (an invite ticket minted with
	// the fleet's key is needed).
	// +kubebuilder:default=Closed
	// +optional
	Admission Admission `json:"admission,omitempty"`

	// Replicas is how many pods hold each self-service vault (R), at most
	// spec.replicas. Unset: 3, or spec.replicas when that is smaller
	// (so it follows a fleet scaled below 3 pods).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=16
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// Limits bound what self-service agents may hold and how fast they are
	// admitted; unset fields keep the seeds' defaults. The pods' total is
	// spec.hosting.maxVaultsPerPod when set.
	// +optional
	Limits SelfServiceLimits `json:"limits,omitempty"`

	// IdleExpiry releases a self-service vault no device synced for this
	// long, after the agent was told through host status; 0 or unset never
	// does. At least 1h: devices offline for a night must not lose their
	// vaults.
	// +kubebuilder:validation:XValidation:rule="duration(self) == duration('0s') || duration(self) >= duration('1h')",message="spec.hosting.selfService.idleExpiry must be 0s (off) or at least 1h"
	// +optional
	IdleExpiry *metav1.Duration `json:"idleExpiry,omitempty"`
}

// SelfServiceLimits bound a public fleet's self-service hosting, per pod
// that decides a request (a subject's home pod).
type SelfServiceLimits struct {
	// MaxVaultsPerAgent is how many vaults one agent may hold (seed
	// default 16).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4096
	// +optional
	MaxVaultsPerAgent *int32 `json:"maxVaultsPerAgent,omitempty"`

	// DefaultQuota is a vault's quota when its request asks for none (seed
	// defaults 256Mi and 100,000 entries).
	// +optional
	DefaultQuota Quota `json:"defaultQuota,omitempty"`

	// MaxQuota is the largest quota one vault may ask for (seed defaults
	// 1Gi and 1,000,000 entries).
	// +optional
	MaxQuota Quota `json:"maxQuota,omitempty"`

	// MaxAgentBytes bounds the sum of one agent's vault quotas, at least
	// maxQuota.maxBytes (seed default 4Gi).
	// +optional
	MaxAgentBytes *resource.Quantity `json:"maxAgentBytes,omitempty"`

	// AdmissionsPerSecond is how many new agents each pod admits per
	// second, with bursts of twice that (seed default 100).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	// +optional
	AdmissionsPerSecond *int32 `json:"admissionsPerSecond,omitempty"`

	// RequestsPerRangePerMinute is how many requests one address range
	// (an IPv4 /24 or IPv6 /56) may send each pod per minute (seed default
	// 60).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	RequestsPerRangePerMinute *int32 `json:"requestsPerRangePerMinute,omitempty"`
}

// SchedulingSpec places the pods on nodes.
type SchedulingSpec struct {
	// NodeSelector of the pods.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// Tolerations of the pods.
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// Affinity of the pods. Without it, pods prefer distinct nodes.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
	// TopologySpreadConstraints of the pods.
	// +optional
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
	// PriorityClassName of the pods.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`
}

// LogLevel is how much the seed pods log.
// +kubebuilder:validation:Enum=Debug;Info;Warn;Error
type LogLevel string

// Log levels.
const (
	LogDebug LogLevel = "Debug"
	LogInfo  LogLevel = "Info"
	LogWarn  LogLevel = "Warn"
	LogError LogLevel = "Error"
)

// MetricsSpec exposes the pods' metrics.
type MetricsSpec struct {
	// Enabled adds prometheus.io scrape annotations to the pods (the admin
	// port serves /metrics either way).
	// +optional
	Enabled bool `json:"enabled,omitempty"`
}

// SeedNodeStatus is the observed state of a SeedNode, derived from the
// cluster and the pods' admin API on every reconcile.
type SeedNodeStatus struct {
	// ObservedGeneration is the generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Replicas is the number of pods the StatefulSet runs.
	// +optional
	Replicas int32 `json:"replicas"`

	// ReadyReplicas is the number of pods whose seed reports ready.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas"`

	// Pods describes each pod by ordinal.
	// +listType=map
	// +listMapKey=name
	// +optional
	Pods []SeedPodStatus `json:"pods,omitempty"`

	// BootstrapPeers are the pods' full multiaddrs, to give devices as
	// bootstrap peers.
	// +optional
	BootstrapPeers []string `json:"bootstrapPeers,omitempty"`

	// Selector is the label selector of the pods (for the scale subresource).
	// +optional
	Selector string `json:"selector,omitempty"`

	// Fleet is the public fleet's ticket and totals, with
	// spec.hosting.selfService set.
	// +optional
	Fleet *FleetStatus `json:"fleet,omitempty"`

	// Conditions: Ready, Degraded.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// FleetStatus is a public fleet as the operator sees it: the ticket devices
// use, and totals summed over the pods' admin API (pods that did not answer
// are missing from the totals; PodsReporting says how many did).
type FleetStatus struct {
	// Name of the fleet: <namespace>/<SeedNode name>.
	Name string `json:"name"`
	// Ticket is the fleet ticket (one line, "fleet..."): give it to devices
	// (seedfleet host request --fleet TICKET). It names the fleet, its
	// admission policy, replicas and its pods' addresses, as the seeds
	// themselves tell it.
	// +optional
	Ticket string `json:"ticket,omitempty"`
	// Admission in force.
	// +optional
	Admission Admission `json:"admission,omitempty"`
	// Replicas is how many pods hold each self-service vault.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// PodsReporting is how many pods the totals come from.
	PodsReporting int32 `json:"podsReporting"`
	// Agents is how many subjects (agents, plain vaults) the fleet hosts
	// for self-service.
	Agents int64 `json:"agents"`
	// Vaults is how many self-service vaults they hold (each counted once,
	// not once per replica).
	Vaults int64 `json:"vaults"`
	// Bytes is what the pods store for self-service vaults, replicas
	// included.
	Bytes int64 `json:"bytes"`
	// Admissions counts subjects admitted since each pod started.
	Admissions int64 `json:"admissions"`
	// Refusals count the requests refused since each pod started, by
	// reason (Unauthorized, Replay, Closed, InviteNeeded, InviteInvalid,
	// InviteUsed, Quota, TooManyVaults, RateLimited, FleetFull, NotHosted,
	// Unavailable, Malformed; stream: a stream refused before its request
	// was read). A refusal from a subject's home pod to a
	// request another pod passed on counts at both.
	// +listType=map
	// +listMapKey=reason
	// +kubebuilder:validation:MaxItems=32
	// +optional
	Refusals []FleetRefusals `json:"refusals,omitempty"`
}

// FleetRefusals counts the refusals of one reason.
type FleetRefusals struct {
	// Reason of the refusals.
	// +kubebuilder:validation:MaxLength=32
	Reason string `json:"reason"`
	// Count since the pods started.
	Count int64 `json:"count"`
}

// SeedPodStatus is one pod of a SeedNode.
type SeedPodStatus struct {
	// Name of the pod.
	Name string `json:"name"`
	// PeerID of the pod's libp2p identity (known before the pod starts).
	PeerID string `json:"peerID"`
	// Addrs are the pod's announced multiaddrs, each ending in /p2p/<PeerID>.
	// +optional
	Addrs []string `json:"addrs,omitempty"`
	// Ready is true when the seed answers ready on its admin API.
	Ready bool `json:"ready"`
	// Vaults is how many vaults the pod hosts.
	// +optional
	Vaults int32 `json:"vaults,omitempty"`
	// SelfServiceVaults is how many of them the pod hosts for the public
	// fleet (its share, replicas included).
	// +optional
	SelfServiceVaults int32 `json:"selfServiceVaults,omitempty"`
	// Message says why the pod is not ready.
	// +optional
	Message string `json:"message,omitempty"`
}

// SeedNode is a fleet of seed pods: always-on libp2p peers that host vault
// replicas, keep DHT records alive, relay for devices behind NAT and serve
// blobs.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:resource:shortName=seed;seeds,categories=seedfleet
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 40 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="a SeedNode's name must be a DNS label of at most 40 characters starting with a letter: pod Service names add a suffix to it"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Pods",type=integer,JSONPath=`.status.readyReplicas`,description="pods ready"
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Admission",type=string,JSONPath=`.spec.hosting.selfService.admission`
// +kubebuilder:printcolumn:name="Agents",type=integer,JSONPath=`.status.fleet.agents`,priority=1
// +kubebuilder:printcolumn:name="Relay",type=string,JSONPath=`.spec.relay.mode`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type SeedNode struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec SeedNodeSpec `json:"spec,omitempty"`
	// +optional
	Status SeedNodeStatus `json:"status,omitempty"`
}

// SeedNodeList is a list of SeedNodes.
// +kubebuilder:object:root=true
type SeedNodeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SeedNode `json:"items"`
}

func init() {
	SchemeBuilder.Register(&SeedNode{}, &SeedNodeList{})
}
