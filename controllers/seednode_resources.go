/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/identity"
)

// The builders in this file turn a SeedNode into the objects it owns. They
// are pure: no API calls, no clock, no randomness (keys and tokens come in as
// arguments), so a reconcile that changed nothing builds identical objects.
// They set names, namespaces and labels; the reconciler sets owner references.
//
// They also fill in the CRD's defaults for fields left empty (the API's
// Default functions, never values of their own), so an object that did not
// go through the API server (a fake client, a unit test) builds the same
// children as its defaulted form.

// AnnotationPeerID on a pod's identity Secret is the libp2p peer ID of the
// key it holds, so the reconciler knows every pod's peer ID (and full
// multiaddrs) without decoding keys, and before the pod starts.
const AnnotationPeerID = "seedfleet.io/peer-id"

// Prometheus' conventional scrape annotations, set on the pods when
// spec.metrics.enabled.
const (
	annotationPrometheusScrape = "prometheus.io/scrape"
	annotationPrometheusPort   = "prometheus.io/port"
	annotationPrometheusPath   = "prometheus.io/path"
)

// seedUID is the user and group the seed runs as: distroless "nonroot", the
// USER of the image. The pod sets it explicitly so runAsNonRoot can be
// checked without reading the image.
const seedUID int64 = 65532

// Port names, shared by the container, the Services and the probes.
const (
	portNameP2P       = "p2p"
	portNameP2PQUIC   = "p2p-quic"
	portNameAdmin     = "admin"
	portNameWebSocket = "ws"
)

// Volumes of the seed pod other than the data volume (dataVolumeName).
const (
	podsVolumeName       = "pods"
	identitiesVolumeName = "identities"
	identityVolumeName   = "identity"
	tokenVolumeName      = "admin-token"
	tmpVolumeName        = "tmp"
	tmpMountPath         = "/tmp"

	// envPodName is set from the pod's name, so one pod template serves
	// every ordinal: each pod reads its own directory of the pods volume.
	envPodName      = "POD_NAME"
	envPodNamespace = "POD_NAMESPACE"
)

// secretFileMode is the mode of the files the seed reads from Secrets and
// ConfigMaps: readable by the pod's fsGroup, which is the seed's group.
const secretFileMode int32 = 0o440

// seedPorts are sn's ports with the CRD's defaults filled in.
type seedPorts struct {
	p2p, admin int32
	webSocket  int32 // 0: no WebSocket listener
}

func portsOf(sn *seedv1.SeedNode) seedPorts {
	spec := sn.Spec.Ports
	spec.Default()
	p := seedPorts{p2p: spec.P2P, admin: spec.Admin}
	if ws := spec.WebSocket; ws != nil {
		p.webSocket = *ws
	}
	return p
}

func serviceTypeOf(sn *seedv1.SeedNode) seedv1.ServiceType {
	expose := sn.Spec.Expose
	expose.Default()
	return expose.ServiceType
}

// podPlan is what the reconciler knows of one pod when it builds its children.
type podPlan struct {
	Ordinal        int
	Announce       []string // multiaddrs without /p2p/ the pod announces (may be empty: then it announces its listen addrs)
	BootstrapPeers []string // full multiaddrs (/p2p/) of the sibling pods
	Vaults         []byte   // content of the pod's hosted-vaults file (lines "<namespaceID> [peer-multiaddr ...]")
	// FleetMembers are the public fleet's members by ordinal (with
	// spec.hosting.selfService); a pod among them gets a fleet section.
	FleetMembers []string
	// FleetLeaving is how many of the last FleetMembers are leaving (the
	// fleet shrinks and they hand their self-service vaults off).
	FleetLeaving int
}

// buildSeedConfig returns the seed.yaml of one pod. The result has been
// parsed back and validated as the seed will: an error means the pod would
// refuse to start, and names the SeedNode field to fix. Every error about the
// SeedNode's content wraps config.ErrInvalid (most are *config.FieldError).
func buildSeedConfig(sn *seedv1.SeedNode, plan podPlan) ([]byte, error) {
	pod := podName(sn, plan.Ordinal)
	// A field seedConfig could not convert keeps the seed's default, so
	// the seed's validation still runs and every problem is told at once.
	cfg, convErr := seedConfig(sn, plan)
	data, err := cfg.Marshal()
	if err != nil {
		return nil, fmt.Errorf("seed.yaml of pod %s: %w", pod, err)
	}
	parsed, err := config.Parse(data)
	if err != nil {
		// Marshal and Parse disagree: a bug here or in the config package,
		// not something the SeedNode's author can fix.
		return nil, fmt.Errorf("seed.yaml of pod %s does not parse back: %v", pod, err)
	}
	if err := parsed.Validate(); err != nil || convErr != nil {
		if err != nil {
			err = specFieldErrors(sn, plan, err)
		}
		return nil, fmt.Errorf("seed.yaml of pod %s: %w", pod, errors.Join(convErr, err))
	}
	return data, nil
}

// seedConfig maps sn and plan onto the seed's configuration. SeedNode fields
// the CRD defaults are read defaulted (seedv1.SeedNodeSpec.Default); fields
// without a CRD default (limits, quotas) keep the seed's defaults when unset.
func seedConfig(sn *seedv1.SeedNode, plan podPlan) (config.Config, error) {
	sn = sn.WithDefaults()
	spec := &sn.Spec
	pod := podName(sn, plan.Ordinal)
	ports := portsOf(sn)

	cfg := config.Default()
	cfg.DataDir = dataMountPath
	cfg.IdentityFile = path.Join(identityMountPath, keyIdentity)
	cfg.HostedVaultsFile = path.Join(podsMountPath, pod, keyVaults)
	cfg.Listen = config.Listen{
		TCP:  []string{fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", ports.p2p)},
		QUIC: []string{fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", ports.p2p)},
	}
	if ports.webSocket != 0 {
		cfg.Listen.WebSocket = []string{fmt.Sprintf("/ip4/0.0.0.0/tcp/%d/ws", ports.webSocket)}
	}
	cfg.Announce = slices.Clone(plan.Announce)
	cfg.Admin = config.Admin{
		Listen:    net.JoinHostPort("0.0.0.0", strconv.Itoa(int(ports.admin))),
		TokenFile: path.Join(tokenMountPath, keyAdminToken),
	}

	var errs []error
	if err := setSeedEnums(&cfg, spec); err != nil {
		errs = append(errs, err)
	}
	cfg.DHT.ProtocolPrefix = spec.DHT.ProtocolPrefix
	cfg.DHT.BootstrapPeers = append(slices.Clone(plan.BootstrapPeers), spec.DHT.BootstrapPeers...)
	if d := spec.DHT.ReprovideInterval; d != nil {
		cfg.DHT.ReprovideInterval = config.Duration{Duration: d.Duration}
	}

	cfg.Relay.AdvertisePrivateAddrs = spec.Relay.AdvertisePrivateAddrs
	rl, limits := spec.Relay.Limits, &cfg.Relay.Limits
	setInt(&limits.MaxReservations, rl.MaxReservations)
	setInt(&limits.MaxReservationsPerIP, rl.MaxReservationsPerIP)
	setInt(&limits.MaxCircuits, rl.MaxCircuits)
	if d := rl.CircuitDuration; d != nil {
		limits.CircuitDuration = config.Duration{Duration: d.Duration}
	}
	if q := rl.CircuitBytes; q != nil {
		errs = append(errs, setQuantity(&limits.CircuitBytes, q, "spec.relay.limits.circuitBytes"))
	}

	quota := spec.Hosting.DefaultQuota
	if n := quota.MaxEntries; n != nil {
		if *n < 1 {
			errs = append(errs, &config.FieldError{Field: "spec.hosting.defaultQuota.maxEntries", Err: fmt.Errorf("must be at least 1, got %d", *n)})
		} else {
			cfg.Limits.MaxEntries = uint64(*n)
		}
	}
	if q := quota.MaxBytes; q != nil {
		errs = append(errs, setQuantity(&cfg.Limits.MaxBytes, q, "spec.hosting.defaultQuota.maxBytes"))
	}

	errs = append(errs, setFleet(&cfg, sn, plan))

	return cfg, errors.Join(errs...)
}

// setSeedEnums converts the SeedNode's enum values, the Kubernetes contract
// (api/v1alpha1), into the seed's own (seednode/config): the one place the
// two meet. Each is an explicit switch, so a value this operator does not
// know (a newer CRD's, or an object the API server never validated) is an
// error naming the field, never passed on to the seed as it is. spec is
// defaulted: empty is unknown too.
func setSeedEnums(cfg *config.Config, spec *seedv1.SeedNodeSpec) error {
	var errs []error
	// The message lists the values, so an object stored before they became
	// CamelCase ("server") says what to write instead.
	unknown := func(field string, v any, known ...any) {
		errs = append(errs, &config.FieldError{Field: field, Err: fmt.Errorf("unknown value %q (one of %v)", v, known)})
	}
	switch spec.DHT.Mode {
	case seedv1.DHTServer:
		cfg.DHT.Mode = config.DHTServer
	case seedv1.DHTClient:
		cfg.DHT.Mode = config.DHTClient
	case seedv1.DHTOff:
		cfg.DHT.Mode = config.DHTOff
	default:
		unknown("spec.dht.mode", spec.DHT.Mode, seedv1.DHTServer, seedv1.DHTClient, seedv1.DHTOff)
	}
	switch spec.Relay.Mode {
	case seedv1.RelayAgents:
		cfg.Relay.Mode = config.RelayAgents
	case seedv1.RelayPublic:
		cfg.Relay.Mode = config.RelayPublic
	case seedv1.RelayOff:
		cfg.Relay.Mode = config.RelayOff
	default:
		unknown("spec.relay.mode", spec.Relay.Mode, seedv1.RelayAgents, seedv1.RelayPublic, seedv1.RelayOff)
	}
	switch spec.LogLevel {
	case seedv1.LogDebug:
		cfg.LogLevel = config.LogDebug
	case seedv1.LogInfo:
		cfg.LogLevel = config.LogInfo
	case seedv1.LogWarn:
		cfg.LogLevel = config.LogWarn
	case seedv1.LogError:
		cfg.LogLevel = config.LogError
	default:
		unknown("spec.logLevel", spec.LogLevel, seedv1.LogDebug, seedv1.LogInfo, seedv1.LogWarn, seedv1.LogError)
	}
	return errors.Join(errs...)
}

func setInt(dst *int, v *int32) {
	if v != nil {
		*dst = int(*v)
	}
}

// setQuantity sets *dst to q in bytes (rounded up), refusing what is not positive.
func setQuantity(dst *uint64, q *resource.Quantity, field string) error {
	n, ok := q.AsInt64()
	if !ok {
		n = q.Value() // rounds up; saturates at the int64 bounds
	}
	if n < 1 {
		return &config.FieldError{Field: field, Err: fmt.Errorf("must be positive, got %s", q.String())}
	}
	*dst = uint64(n)
	return nil
}

// specFieldErrors rewrites the field names of the seed's validation errors
// (seed.yaml keys) into the SeedNode fields they come from, so the Degraded
// condition says what to change. Fields the operator fills in itself keep
// their seed.yaml name: an error there is the operator's bug.
func specFieldErrors(sn *seedv1.SeedNode, plan podPlan, err error) error {
	errs := []error{err}
	if _, single := err.(*config.FieldError); !single {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		}
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
		if fe, ok := e.(*config.FieldError); ok {
			out[i] = &config.FieldError{Field: specField(sn, plan, fe.Field), Err: fe.Err}
		}
	}
	return errors.Join(out...)
}

// seedToSpecFields maps seed.yaml keys to the SeedNode fields they are set
// from (when set; a default the seed refuses is the operator's bug).
var seedToSpecFields = map[string]string{
	"dht.mode":                          "spec.dht.mode",
	"dht.protocolPrefix":                "spec.dht.protocolPrefix",
	"dht.reprovideInterval":             "spec.dht.reprovideInterval",
	"relay.mode":                        "spec.relay.mode",
	"relay.limits.maxReservations":      "spec.relay.limits.maxReservations",
	"relay.limits.maxReservationsPerIP": "spec.relay.limits.maxReservationsPerIP",
	"relay.limits.maxCircuits":          "spec.relay.limits.maxCircuits",
	"relay.limits.circuitDuration":      "spec.relay.limits.circuitDuration",
	"relay.limits.circuitBytes":         "spec.relay.limits.circuitBytes",
	"limits.maxEntries":                 "spec.hosting.defaultQuota.maxEntries",
	"limits.maxBytes":                   "spec.hosting.defaultQuota.maxBytes",
	"admin.listen":                      "spec.ports.admin",
	"logLevel":                          "spec.logLevel",
}

// specField names the SeedNode field a seed.yaml field comes from, with the
// seed.yaml field (and value, for list entries) in parentheses.
func specField(sn *seedv1.SeedNode, plan podPlan, seedField string) string {
	name, i, indexed := splitIndex(seedField)
	switch {
	case name == "announce" && indexed && i < len(plan.Announce):
		// The reconciler expands spec.expose.announce one template per
		// address; without templates, the addresses are its own (a
		// LoadBalancer's ingress).
		if tmpl := sn.Spec.Expose.Announce; len(tmpl) == len(plan.Announce) {
			return fmt.Sprintf("spec.expose.announce[%d] %q (seed.yaml %s %q)", i, tmpl[i], seedField, plan.Announce[i])
		}
		return fmt.Sprintf("seed.yaml %s %q", seedField, plan.Announce[i])
	case name == "dht.bootstrapPeers" && indexed:
		if j := i - len(plan.BootstrapPeers); j >= 0 {
			return fmt.Sprintf("spec.dht.bootstrapPeers[%d] (seed.yaml %s)", j, seedField)
		}
		return fmt.Sprintf("seed.yaml %s (the address of a sibling pod) %q", seedField, plan.BootstrapPeers[i])
	case strings.HasPrefix(name, "listen."):
		return "spec.ports (seed.yaml " + seedField + ")"
	}
	if spec, ok := seedToSpecFields[seedField]; ok {
		return spec + " (seed.yaml " + seedField + ")"
	}
	if seedField == "" {
		return "seed.yaml"
	}
	return "seed.yaml " + seedField
}

// splitIndex splits "field[3]" into ("field", 3, true).
func splitIndex(field string) (string, int, bool) {
	name, rest, ok := strings.Cut(field, "[")
	if !ok {
		return field, 0, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(rest, "]"))
	if err != nil || !strings.HasSuffix(rest, "]") || n < 0 {
		return field, 0, false
	}
	return name, n, true
}

// configHash is a short hash of every pod's seed.yaml, in ordinal order. It
// goes into the pod template (AnnotationConfigHash) so a changed
// configuration restarts the pods; the hosted-vaults files are not part of
// it, since the seed re-reads those itself.
func configHash(seedYAMLs ...[]byte) string {
	h := sha256.New()
	var n [8]byte
	for _, y := range seedYAMLs {
		// Length-prefixed, so moving bytes from one file to the next
		// changes the hash.
		binary.BigEndian.PutUint64(n[:], uint64(len(y)))
		h.Write(n[:])
		h.Write(y)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// buildPodConfigMap holds one pod's seed.yaml and hosted-vaults file; the
// pods volume projects it into the pod's directory.
func buildPodConfigMap(sn *seedv1.SeedNode, plan podPlan, seedYAML []byte) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: childMeta(sn, podConfigMapName(sn, plan.Ordinal), podLabels(sn, plan.Ordinal)),
		Data: map[string]string{
			keySeedConfig: string(seedYAML),
			keyVaults:     string(plan.Vaults),
		},
	}
}

// buildIdentitySecret holds one pod's libp2p key, annotated with its peer ID.
func buildIdentitySecret(sn *seedv1.SeedNode, ordinal int, key ed25519.PrivateKey) (*corev1.Secret, error) {
	pem, err := identity.EncodePEM(key)
	if err != nil {
		return nil, fmt.Errorf("identity of pod %s: %w", podName(sn, ordinal), err)
	}
	id, err := identity.PeerID(key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, fmt.Errorf("identity of pod %s: %w", podName(sn, ordinal), err)
	}
	meta := childMeta(sn, identitySecretName(sn, ordinal), podLabels(sn, ordinal))
	meta.Annotations = map[string]string{AnnotationPeerID: id.String()}
	return &corev1.Secret{
		ObjectMeta: meta,
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{keyIdentity: pem},
	}, nil
}

// buildAdminTokenSecret holds the bearer token of the pods' admin API.
func buildAdminTokenSecret(sn *seedv1.SeedNode, token string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: childMeta(sn, adminTokenSecretName(sn), seedLabels(sn)),
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{keyAdminToken: []byte(token)},
	}
}

// buildHeadlessService gives each pod a stable DNS name (POD.SERVICE.NS.svc)
// for the StatefulSet and for the pods' bootstrap addresses. Not-ready pods
// are published: pods become ready only after bootstrapping from each other.
func buildHeadlessService(sn *seedv1.SeedNode) *corev1.Service {
	ports := portsOf(sn)
	return &corev1.Service{
		ObjectMeta: childMeta(sn, headlessServiceName(sn), seedLabels(sn)),
		Spec: corev1.ServiceSpec{
			ClusterIP:                corev1.ClusterIPNone,
			PublishNotReadyAddresses: true,
			Selector:                 selectorLabels(sn),
			Ports: []corev1.ServicePort{
				servicePort(portNameP2P, corev1.ProtocolTCP, ports.p2p),
				servicePort(portNameP2PQUIC, corev1.ProtocolUDP, ports.p2p),
				servicePort(portNameAdmin, corev1.ProtocolTCP, ports.admin),
			},
		},
	}
}

// buildPodService exposes one pod's libp2p ports (never its admin port), or
// returns nil when spec.expose.serviceType is None.
func buildPodService(sn *seedv1.SeedNode, ordinal int) *corev1.Service {
	typ := serviceTypeOf(sn)
	if typ == seedv1.ServiceTypeNone {
		return nil
	}
	ports := portsOf(sn)
	svc := &corev1.Service{
		ObjectMeta: childMeta(sn, podServiceName(sn, ordinal), podLabels(sn, ordinal)),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceType(typ),
			Selector: map[string]string{appsv1.StatefulSetPodNameLabel: podName(sn, ordinal)},
			// A seed is Ready once its DHT has bootstrapped from the other
			// pods, which it reaches through these Services (their
			// addresses are what the pods announce). Waiting for readiness
			// here would leave every Service without endpoints and every
			// pod unready. A starting seed listens before it is Ready, so
			// traffic to it is answered or refused at once.
			PublishNotReadyAddresses: true,
			Ports: []corev1.ServicePort{
				servicePort(portNameP2P, corev1.ProtocolTCP, ports.p2p),
				servicePort(portNameP2PQUIC, corev1.ProtocolUDP, ports.p2p),
			},
		},
	}
	if ports.webSocket != 0 {
		svc.Spec.Ports = append(svc.Spec.Ports, servicePort(portNameWebSocket, corev1.ProtocolTCP, ports.webSocket))
	}
	if len(sn.Spec.Expose.Annotations) > 0 {
		svc.Annotations = make(map[string]string, len(sn.Spec.Expose.Annotations))
		for k, v := range sn.Spec.Expose.Annotations {
			svc.Annotations[k] = v
		}
	}
	if typ == seedv1.ServiceTypeNodePort || typ == seedv1.ServiceTypeLoadBalancer {
		// Keep the client's IP: the relay limits reservations per IP, and
		// through SNAT every device would share the node's.
		svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	return svc
}

func servicePort(name string, proto corev1.Protocol, port int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Protocol: proto, Port: port, TargetPort: intstr.FromInt32(port)}
}

// buildStatefulSet runs the seed pods. The pod template depends on the spec
// and configHash only, never on replicas or on any one pod: every per-pod
// file comes through a volume that projects the ConfigMaps (seed.yaml,
// vaults) or identity Secrets (identity.key) of every possible ordinal, so
// scaling never rolls the existing pods. Only the init container mounts the
// Secrets: it copies the pod's own key into a memory volume, and the seed
// container sees that key and no other pod's.
func buildStatefulSet(sn *seedv1.SeedNode, image string, replicas int32, configHash string) *appsv1.StatefulSet {
	spec := &sn.Spec
	sched := spec.Scheduling.DeepCopy()
	affinity := sched.Affinity
	if affinity == nil {
		affinity = spreadAcrossNodes(sn)
	}
	annotations := map[string]string{AnnotationConfigHash: configHash}
	if spec.Metrics.Enabled {
		annotations[annotationPrometheusScrape] = "true"
		annotations[annotationPrometheusPort] = strconv.Itoa(int(portsOf(sn).admin))
		annotations[annotationPrometheusPath] = admin.PathMetrics
	}

	return &appsv1.StatefulSet{
		ObjectMeta: childMeta(sn, statefulSetName(sn), seedLabels(sn)),
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To(replicas),
			Selector:    &metav1.LabelSelector{MatchLabels: selectorLabels(sn)},
			ServiceName: headlessServiceName(sn),
			// Pods bootstrap their DHT from each other: started one by one,
			// pod 0 would wait for readiness on peers that wait for it.
			PodManagementPolicy: appsv1.ParallelPodManagement,
			UpdateStrategy:      appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType},
			// The volumes hold users' vaults: neither deleting the SeedNode
			// nor scaling down deletes them.
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
				WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: seedLabels(sn), Annotations: annotations},
				Spec: corev1.PodSpec{
					InitContainers:                initContainers(sn, image),
					Containers:                    []corev1.Container{seedContainerSpec(sn, image)},
					Volumes:                       seedVolumes(sn),
					SecurityContext:               seedPodSecurityContext(),
					AutomountServiceAccountToken:  ptr.To(false),
					EnableServiceLinks:            ptr.To(false),
					TerminationGracePeriodSeconds: ptr.To[int64](30),
					ImagePullSecrets:              slices.Clone(spec.ImagePullSecrets),
					NodeSelector:                  sched.NodeSelector,
					Tolerations:                   sched.Tolerations,
					TopologySpreadConstraints:     sched.TopologySpreadConstraints,
					PriorityClassName:             sched.PriorityClassName,
					Affinity:                      affinity,
				},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{dataVolumeClaim(sn)},
		},
	}
}

// initContainers install the pod's key, and the fleet key of a public fleet.
func initContainers(sn *seedv1.SeedNode, image string) []corev1.Container {
	out := []corev1.Container{installKeyContainerSpec(sn, image)}
	if sn.Spec.Hosting.SelfService != nil {
		out = append(out, installFleetKeyContainerSpec(sn, image))
	}
	return out
}

// spreadAcrossNodes prefers one pod of sn per node, so losing a node loses
// one replica of each vault, not several.
func spreadAcrossNodes(sn *seedv1.SeedNode) *corev1.Affinity {
	return &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
			Weight: 100,
			PodAffinityTerm: corev1.PodAffinityTerm{
				LabelSelector: &metav1.LabelSelector{MatchLabels: selectorLabels(sn)},
				TopologyKey:   corev1.LabelHostname,
			},
		}},
	}}
}

func seedPodSecurityContext() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot:        ptr.To(true),
		RunAsUser:           ptr.To(seedUID),
		RunAsGroup:          ptr.To(seedUID),
		FSGroup:             ptr.To(seedUID),
		FSGroupChangePolicy: ptr.To(corev1.FSGroupChangeOnRootMismatch),
		SeccompProfile:      &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

func imagePullPolicy(sn *seedv1.SeedNode) corev1.PullPolicy {
	if p := sn.Spec.ImagePullPolicy; p != "" {
		return p
	}
	return seedv1.DefaultImagePullPolicy
}

// containerSecurityContext is both containers': nothing written outside
// their volumes, no privileges.
func containerSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		ReadOnlyRootFilesystem:   ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		RunAsNonRoot:             ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
}

// installKeyContainerSpec copies the pod's key from the identities volume,
// which holds every pod's, into the identity volume the seed reads; it fails
// with a clear message when the pod's Secret is missing or holds no key. It
// asks for the seed's resources: an init container's request never adds to
// the pod's (the larger of the two counts), and a namespace whose quota
// demands limits gets them.
func installKeyContainerSpec(sn *seedv1.SeedNode, image string) corev1.Container {
	return corev1.Container{
		Name:            keyContainer,
		Image:           image,
		ImagePullPolicy: imagePullPolicy(sn),
		Args: []string{"seednode", "install-key",
			path.Join(identitiesMountPath, "$("+envPodName+")", keyIdentity),
			path.Join(identityMountPath, keyIdentity)},
		Env:             []corev1.EnvVar{fieldEnv(envPodName, "metadata.name")},
		Resources:       *sn.Spec.Resources.DeepCopy(),
		SecurityContext: containerSecurityContext(),
		VolumeMounts: []corev1.VolumeMount{
			{Name: identitiesVolumeName, MountPath: identitiesMountPath, ReadOnly: true},
			{Name: identityVolumeName, MountPath: identityMountPath},
		},
	}
}

func seedContainerSpec(sn *seedv1.SeedNode, image string) corev1.Container {
	ports := portsOf(sn)
	containerPorts := []corev1.ContainerPort{
		{Name: portNameP2P, ContainerPort: ports.p2p, Protocol: corev1.ProtocolTCP},
		{Name: portNameP2PQUIC, ContainerPort: ports.p2p, Protocol: corev1.ProtocolUDP},
		{Name: portNameAdmin, ContainerPort: ports.admin, Protocol: corev1.ProtocolTCP},
	}
	if ports.webSocket != 0 {
		containerPorts = append(containerPorts, corev1.ContainerPort{Name: portNameWebSocket, ContainerPort: ports.webSocket, Protocol: corev1.ProtocolTCP})
	}
	probe := func(path string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: path, Port: intstr.FromString(portNameAdmin), Scheme: corev1.URISchemeHTTP,
			}},
			PeriodSeconds:    period,
			FailureThreshold: failures,
		}
	}
	return corev1.Container{
		Name:            seedContainer,
		Image:           image,
		ImagePullPolicy: imagePullPolicy(sn),
		// $(POD_NAME) is expanded by the kubelet: each pod reads its own
		// directory of the pods volume.
		Args: []string{"seednode", "--config=" + path.Join(podsMountPath, "$("+envPodName+")", keySeedConfig)},
		Env: []corev1.EnvVar{
			fieldEnv(envPodName, "metadata.name"),
			fieldEnv(envPodNamespace, "metadata.namespace"),
		},
		Ports:          containerPorts,
		ReadinessProbe: probe(admin.PathReadyz, 5, 3),
		// Generous: a busy seed that misses a few health checks is better
		// left alone than restarted, which drops every relayed circuit.
		LivenessProbe: probe(admin.PathHealthz, 10, 6),
		// Opening a large store can take a while; up to a minute.
		StartupProbe:    probe(admin.PathHealthz, 2, 30),
		Resources:       *sn.Spec.Resources.DeepCopy(),
		SecurityContext: containerSecurityContext(),
		VolumeMounts: []corev1.VolumeMount{
			{Name: dataVolumeName, MountPath: dataMountPath},
			{Name: podsVolumeName, MountPath: podsMountPath, ReadOnly: true},
			{Name: identityVolumeName, MountPath: identityMountPath, ReadOnly: true},
			{Name: tokenVolumeName, MountPath: tokenMountPath, ReadOnly: true},
			{Name: tmpVolumeName, MountPath: tmpMountPath},
		},
	}
}

func fieldEnv(name, fieldPath string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: fieldPath},
	}}
}

// seedVolumes are the pod's volumes besides the data volume claim.
func seedVolumes(sn *seedv1.SeedNode) []corev1.Volume {
	volumes := []corev1.Volume{
		{Name: podsVolumeName, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources:     podsVolumeSources(sn),
			DefaultMode: ptr.To(secretFileMode),
		}}},
		{Name: identitiesVolumeName, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources:     identitiesVolumeSources(sn),
			DefaultMode: ptr.To(secretFileMode),
		}}},
		// In memory: the key never reaches the node's disk.
		{Name: identityVolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
			Medium:    corev1.StorageMediumMemory,
			SizeLimit: ptr.To(resource.MustParse("1Mi")),
		}}},
		{Name: tokenVolumeName, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName:  adminTokenSecretName(sn),
			DefaultMode: ptr.To(secretFileMode),
		}}},
		{Name: tmpVolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	if sn.Spec.Hosting.SelfService != nil {
		volumes = append(volumes, fleetKeyVolume(sn))
	}
	return volumes
}

// podsVolumeSources project, for every ordinal the SeedNode may ever have,
// the pod's ConfigMap into directory POD/. All are optional: the ones of
// ordinals beyond replicas do not exist, and a pod whose ConfigMap is
// missing fails to start with a clear error from the seed rather than
// hanging in ContainerCreating.
func podsVolumeSources(sn *seedv1.SeedNode) []corev1.VolumeProjection {
	sources := make([]corev1.VolumeProjection, 0, seedv1.MaxSeedReplicas)
	for o := range seedv1.MaxSeedReplicas {
		pod := podName(sn, o)
		sources = append(sources, corev1.VolumeProjection{ConfigMap: &corev1.ConfigMapProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: podConfigMapName(sn, o)},
			Items: []corev1.KeyToPath{
				{Key: keySeedConfig, Path: path.Join(pod, keySeedConfig)},
				{Key: keyVaults, Path: path.Join(pod, keyVaults)},
			},
			Optional: ptr.To(true),
		}})
	}
	return sources
}

// identitiesVolumeSources project every possible ordinal's identity Secret
// into POD/identity.key, optional for the same reason as podsVolumeSources.
func identitiesVolumeSources(sn *seedv1.SeedNode) []corev1.VolumeProjection {
	sources := make([]corev1.VolumeProjection, 0, seedv1.MaxSeedReplicas)
	for o := range seedv1.MaxSeedReplicas {
		sources = append(sources, corev1.VolumeProjection{Secret: &corev1.SecretProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: identitySecretName(sn, o)},
			Items:                []corev1.KeyToPath{{Key: keyIdentity, Path: path.Join(podName(sn, o), keyIdentity)}},
			Optional:             ptr.To(true),
		}})
	}
	return sources
}

func dataVolumeClaim(sn *seedv1.SeedNode) corev1.PersistentVolumeClaim {
	storage := sn.Spec.Storage
	storage.Default()
	size := storage.Size
	var storageClass *string
	if c := sn.Spec.Storage.StorageClassName; c != nil {
		storageClass = ptr.To(*c)
	}
	return corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: dataVolumeName, Labels: seedLabels(sn)},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: storageClass,
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: size.DeepCopy()},
			},
		},
	}
}

// buildPDB lets voluntary disruptions (node drains) take one pod at a time:
// every vault keeps its other replicas.
func buildPDB(sn *seedv1.SeedNode) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: childMeta(sn, pdbName(sn), seedLabels(sn)),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: selectorLabels(sn)},
		},
	}
}

func childMeta(sn *seedv1.SeedNode, name string, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: sn.Namespace, Name: name, Labels: labels}
}
