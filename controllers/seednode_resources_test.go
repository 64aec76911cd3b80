/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/internal/envtestutil"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/identity"
)

// fixtureKey is a deterministic identity key for ordinal o.
func fixtureKey(o int) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0], seed[1] = 0x5e, byte(o)
	return ed25519.NewKeyFromSeed(seed)
}

func fixturePeerID(t *testing.T, o int) peer.ID {
	t.Helper()
	id, err := identity.PeerID(fixtureKey(o).Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// fixtureSeedNode is a SeedNode with only its name and namespace: the
// builders must fill in the CRD's defaults themselves.
func fixtureSeedNode() *seedv1.SeedNode {
	return &seedv1.SeedNode{ObjectMeta: metav1.ObjectMeta{Name: "seeds", Namespace: "fleet"}}
}

// fixtureFullSeedNode sets every field the builders read.
func fixtureFullSeedNode() *seedv1.SeedNode {
	sn := fixtureSeedNode()
	sn.Spec = seedv1.SeedNodeSpec{
		Replicas:         3,
		Image:            "example.org/seedfleet:v1",
		ImagePullPolicy:  corev1.PullAlways,
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
		},
		Storage: seedv1.StorageSpec{Size: resource.MustParse("1Gi"), StorageClassName: ptr.To("fast")},
		Ports:   seedv1.PortsSpec{P2P: 4101, Admin: 7501, WebSocket: ptr.To[int32](4102)},
		Expose: seedv1.ExposeSpec{
			ServiceType: seedv1.ServiceTypeLoadBalancer,
			Annotations: map[string]string{"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"},
			Announce:    []string{"/dns4/seed-{ordinal}.example.org/tcp/4101", "/dns4/seed-{ordinal}.example.org/udp/4101/quic-v1"},
		},
		DHT: seedv1.DHTSpec{
			Mode:              seedv1.DHTClient,
			ProtocolPrefix:    "/acme",
			BootstrapPeers:    []string{"/dns4/other.example.org/tcp/4001/p2p/" + fixtureOtherPeer},
			ReprovideInterval: &metav1.Duration{Duration: 2 * time.Hour},
		},
		Relay: seedv1.RelaySpec{
			Mode:                  seedv1.RelayPublic,
			AdvertisePrivateAddrs: true,
			Limits: seedv1.RelayLimits{
				MaxReservations:      ptr.To[int32](500),
				MaxReservationsPerIP: ptr.To[int32](4),
				MaxCircuits:          ptr.To[int32](8),
				CircuitDuration:      &metav1.Duration{Duration: 5 * time.Minute},
				CircuitBytes:         ptr.To(resource.MustParse("4Mi")),
			},
		},
		Hosting: seedv1.HostingSpec{
			MaxVaultsPerPod: 100,
			DefaultQuota:    seedv1.Quota{MaxEntries: ptr.To[int64](50000), MaxBytes: ptr.To(resource.MustParse("2Gi"))},
		},
		Scheduling: seedv1.SchedulingSpec{
			NodeSelector:      map[string]string{"pool": "seeds"},
			Tolerations:       []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "seeds", Effect: corev1.TaintEffectNoSchedule}},
			PriorityClassName: "seeds",
			TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
				MaxSkew: 1, TopologyKey: corev1.LabelTopologyZone, WhenUnsatisfiable: corev1.ScheduleAnyway,
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelSeedNode: "seeds"}},
			}},
		},
		Metrics:  seedv1.MetricsSpec{Enabled: true},
		LogLevel: seedv1.LogDebug,
	}
	return sn
}

// fixtureOtherPeer is the peer ID of a seed of another fleet.
var fixtureOtherPeer = func() string {
	id, err := identity.PeerID(fixtureKey(200).Public().(ed25519.PublicKey))
	if err != nil {
		panic(err)
	}
	return id.String()
}()

// fixturePlan is the plan of pod o of a fleet of n: its siblings' headless
// DNS addresses as bootstrap peers, and its announce templates expanded.
func fixturePlan(t *testing.T, sn *seedv1.SeedNode, o, n int) podPlan {
	t.Helper()
	plan := podPlan{Ordinal: o, Vaults: []byte("# hosted vaults\n")}
	for s := range n {
		if s == o {
			continue
		}
		plan.BootstrapPeers = append(plan.BootstrapPeers, fmt.Sprintf("/dns4/%s.%s.%s.svc/tcp/%d/p2p/%s",
			podName(sn, s), headlessServiceName(sn), sn.Namespace, portsOf(sn).p2p, fixturePeerID(t, s)))
	}
	for _, a := range sn.Spec.Expose.Announce {
		a = strings.ReplaceAll(a, "{ordinal}", fmt.Sprint(o))
		plan.Announce = append(plan.Announce, strings.ReplaceAll(a, "{pod}", podName(sn, o)))
	}
	return plan
}

func TestBuildSeedConfig(t *testing.T) {
	tests := []struct {
		name string
		sn   *seedv1.SeedNode
		want func(c *config.Config, plan podPlan)
	}{{
		name: "unset fields: the API's defaults, the same as the seed's",
		sn:   fixtureSeedNode(),
		want: func(c *config.Config, plan podPlan) {
			c.Listen = config.Listen{TCP: []string{"/ip4/0.0.0.0/tcp/4001"}, QUIC: []string{"/ip4/0.0.0.0/udp/4001/quic-v1"}}
			c.Admin.Listen = "0.0.0.0:7401"
			c.DHT.BootstrapPeers = plan.BootstrapPeers
		},
	}, {
		name: "every field set",
		sn:   fixtureFullSeedNode(),
		want: func(c *config.Config, plan podPlan) {
			c.Listen = config.Listen{
				TCP:       []string{"/ip4/0.0.0.0/tcp/4101"},
				QUIC:      []string{"/ip4/0.0.0.0/udp/4101/quic-v1"},
				WebSocket: []string{"/ip4/0.0.0.0/tcp/4102/ws"},
			}
			c.Announce = []string{"/dns4/seed-1.example.org/tcp/4101", "/dns4/seed-1.example.org/udp/4101/quic-v1"}
			c.Admin.Listen = "0.0.0.0:7501"
			c.DHT = config.DHT{
				Mode:              config.DHTClient,
				ProtocolPrefix:    "/acme",
				BootstrapPeers:    append(slices.Clone(plan.BootstrapPeers), "/dns4/other.example.org/tcp/4001/p2p/"+fixtureOtherPeer),
				ReprovideInterval: config.Duration{Duration: 2 * time.Hour},
			}
			c.Relay.Mode = config.RelayPublic
			c.Relay.AdvertisePrivateAddrs = true
			c.Relay.Limits.MaxReservations = 500
			c.Relay.Limits.MaxReservationsPerIP = 4
			c.Relay.Limits.MaxCircuits = 8
			c.Relay.Limits.CircuitDuration = config.Duration{Duration: 5 * time.Minute}
			c.Relay.Limits.CircuitBytes = 4 << 20
			c.Limits.MaxEntries = 50000
			c.Limits.MaxBytes = 2 << 30
			c.LogLevel = config.LogDebug
		},
	}, {
		name: "some relay limits set",
		sn: func() *seedv1.SeedNode {
			sn := fixtureSeedNode()
			sn.Spec.Relay.Limits.MaxReservationsPerIP = ptr.To[int32](64)
			return sn
		}(),
		want: func(c *config.Config, plan podPlan) {
			c.Listen = config.Listen{TCP: []string{"/ip4/0.0.0.0/tcp/4001"}, QUIC: []string{"/ip4/0.0.0.0/udp/4001/quic-v1"}}
			c.Admin.Listen = "0.0.0.0:7401"
			c.DHT.BootstrapPeers = plan.BootstrapPeers
			c.Relay.Limits.MaxReservationsPerIP = 64
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := fixturePlan(t, tt.sn, 1, 3)
			data, err := buildSeedConfig(tt.sn, plan)
			if err != nil {
				t.Fatalf("buildSeedConfig: %v", err)
			}
			got, err := config.Parse(data)
			if err != nil {
				t.Fatalf("config.Parse refuses the built seed.yaml: %v\n%s", err, data)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}

			want := config.Default()
			// Fixed for every pod: the paths of the pod's volumes.
			want.DataDir = "/data"
			want.IdentityFile = "/etc/seedfleet/identity/identity.key"
			want.HostedVaultsFile = "/etc/seedfleet/pods/seeds-1/vaults"
			want.Admin.TokenFile = "/etc/seedfleet/admin/token"
			tt.want(&want, plan)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("seed.yaml parses to\n%s\nwant\n%s", jsonOf(t, got), jsonOf(t, want))
			}
		})
	}
}

func TestBuildSeedConfigErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(sn *seedv1.SeedNode, plan *podPlan)
		want   []string // substrings of the error
	}{{
		name: "announce template that is not a multiaddr",
		mutate: func(sn *seedv1.SeedNode, plan *podPlan) {
			sn.Spec.Expose.Announce = []string{"/dns4/ok.example.org/tcp/4001", "/dns4/seed-{ordinal}.example.org/tcp/port{ordinal}"}
			plan.Announce = []string{"/dns4/ok.example.org/tcp/4001", "/dns4/seed-0.example.org/tcp/port0"}
		},
		want: []string{"spec.expose.announce[1]", `"/dns4/seed-{ordinal}.example.org/tcp/port{ordinal}"`, "not a multiaddr"},
	}, {
		name: "announce address of the operator's own",
		mutate: func(sn *seedv1.SeedNode, plan *podPlan) {
			plan.Announce = []string{"/ip4/1.2.3/tcp/4001"}
		},
		want: []string{"seed.yaml announce[0]", `"/ip4/1.2.3/tcp/4001"`},
	}, {
		name: "bootstrap peer with a bad peer ID",
		mutate: func(sn *seedv1.SeedNode, plan *podPlan) {
			sn.Spec.DHT.BootstrapPeers = []string{"/dns4/other.example.org/tcp/4001/p2p/" + fixtureOtherPeer, "/dns4/x.example.org/tcp/4001/p2p/nope"}
		},
		want: []string{"spec.dht.bootstrapPeers[1]"},
	}, {
		name: "reprovide interval too short",
		mutate: func(sn *seedv1.SeedNode, plan *podPlan) {
			sn.Spec.DHT.ReprovideInterval = &metav1.Duration{Duration: 10 * time.Second}
		},
		want: []string{"spec.dht.reprovideInterval", "at least 1m"},
	}, {
		name: "circuit bytes too small",
		mutate: func(sn *seedv1.SeedNode, plan *podPlan) {
			sn.Spec.Relay.Limits.CircuitBytes = ptr.To(resource.MustParse("100"))
		},
		want: []string{"spec.relay.limits.circuitBytes", "at least 1024"},
	}, {
		name: "negative quota",
		mutate: func(sn *seedv1.SeedNode, plan *podPlan) {
			sn.Spec.Hosting.DefaultQuota.MaxBytes = ptr.To(resource.MustParse("-1Gi"))
		},
		want: []string{"spec.hosting.defaultQuota.maxBytes", "must be positive"},
	}, {
		name: "every problem at once",
		mutate: func(sn *seedv1.SeedNode, plan *podPlan) {
			sn.Spec.LogLevel = "loud"
			sn.Spec.DHT.ProtocolPrefix = "acme"
			sn.Spec.Hosting.DefaultQuota.MaxBytes = ptr.To(resource.MustParse("-1Gi"))
		},
		want: []string{`spec.logLevel: unknown value "loud"`, "spec.dht.protocolPrefix", "spec.hosting.defaultQuota.maxBytes"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sn := fixtureSeedNode()
			plan := fixturePlan(t, sn, 0, 3)
			tt.mutate(sn, &plan)
			data, err := buildSeedConfig(sn, plan)
			if err == nil {
				t.Fatalf("buildSeedConfig accepted it:\n%s", data)
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Errorf("error does not wrap config.ErrInvalid: %v", err)
			}
			if !strings.Contains(err.Error(), "pod seeds-0") {
				t.Errorf("error does not name the pod: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestSetSeedEnums converts every value of the CRD's enums, and refuses
// values it does not know, naming the field and the values it takes.
func TestSetSeedEnums(t *testing.T) {
	type want struct {
		dht   config.DHTMode
		relay config.RelayMode
		level any
	}
	defaulted := func(mutate func(s *seedv1.SeedNodeSpec)) *seedv1.SeedNodeSpec {
		var s seedv1.SeedNodeSpec
		s.Default()
		mutate(&s)
		return &s
	}
	tests := []struct {
		name    string
		spec    *seedv1.SeedNodeSpec
		want    want
		wantErr []string
	}{
		{"defaults", defaulted(func(*seedv1.SeedNodeSpec) {}), want{config.DHTServer, config.RelayAgents, config.LogInfo}, nil},
		{"client, public, debug", defaulted(func(s *seedv1.SeedNodeSpec) {
			s.DHT.Mode, s.Relay.Mode, s.LogLevel = seedv1.DHTClient, seedv1.RelayPublic, seedv1.LogDebug
		}), want{config.DHTClient, config.RelayPublic, config.LogDebug}, nil},
		{"off, off, warn", defaulted(func(s *seedv1.SeedNodeSpec) {
			s.DHT.Mode, s.Relay.Mode, s.LogLevel = seedv1.DHTOff, seedv1.RelayOff, seedv1.LogWarn
		}), want{config.DHTOff, config.RelayOff, config.LogWarn}, nil},
		{"server, agents, error", defaulted(func(s *seedv1.SeedNodeSpec) {
			s.LogLevel = seedv1.LogError
		}), want{config.DHTServer, config.RelayAgents, config.LogError}, nil},
		{"values stored before CamelCase", defaulted(func(s *seedv1.SeedNodeSpec) {
			s.DHT.Mode, s.Relay.Mode, s.LogLevel = "server", "agents", "info"
		}), want{}, []string{
			`spec.dht.mode: unknown value "server" (one of [Server Client Off])`,
			`spec.relay.mode: unknown value "agents" (one of [Agents Public Off])`,
			`spec.logLevel: unknown value "info" (one of [Debug Info Warn Error])`,
		}},
		{"empty (not defaulted)", &seedv1.SeedNodeSpec{}, want{}, []string{
			`spec.dht.mode: unknown value ""`, `spec.relay.mode: unknown value ""`, `spec.logLevel: unknown value ""`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg config.Config
			err := setSeedEnums(&cfg, tt.spec)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if got := (want{cfg.DHT.Mode, cfg.Relay.Mode, cfg.LogLevel}); got != tt.want {
					t.Errorf("converted to %+v, want %+v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted: %+v", cfg)
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Errorf("error does not wrap config.ErrInvalid: %v", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
			if !reflect.DeepEqual(cfg, config.Config{}) {
				t.Errorf("an unknown value reached the seed's configuration: %+v", cfg)
			}
		})
	}
}

func TestBuildStatefulSetScalingKeepsTemplate(t *testing.T) {
	for _, sn := range []*seedv1.SeedNode{fixtureSeedNode(), fixtureFullSeedNode()} {
		one := buildStatefulSet(sn, "img:1", 1, "abc")
		five := buildStatefulSet(sn, "img:1", 5, "abc")
		if *one.Spec.Replicas != 1 || *five.Spec.Replicas != 5 {
			t.Fatalf("replicas %d and %d, want 1 and 5", *one.Spec.Replicas, *five.Spec.Replicas)
		}
		five.Spec.Replicas = one.Spec.Replicas
		if !reflect.DeepEqual(one, five) {
			t.Errorf("StatefulSets for 1 and 5 replicas differ beyond replicas:\n%s\n%s", jsonOf(t, one), jsonOf(t, five))
		}
		if other := buildStatefulSet(sn, "img:1", 1, "def"); reflect.DeepEqual(one.Spec.Template, other.Spec.Template) {
			t.Error("the config hash does not reach the pod template: a changed seed.yaml would not restart the pods")
		}
	}
}

func TestBuildStatefulSet(t *testing.T) {
	sn := fixtureFullSeedNode()
	sts := buildStatefulSet(sn, "img:1", 3, "abc")
	pod := sts.Spec.Template.Spec

	t.Run("statefulset", func(t *testing.T) {
		s := sts.Spec
		if sts.Name != "seeds" || sts.Namespace != "fleet" || s.ServiceName != "seeds-peers" {
			t.Errorf("name %s/%s, serviceName %s", sts.Namespace, sts.Name, s.ServiceName)
		}
		if s.PodManagementPolicy != appsv1.ParallelPodManagement || s.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType {
			t.Errorf("podManagementPolicy %s, updateStrategy %s", s.PodManagementPolicy, s.UpdateStrategy.Type)
		}
		if p := s.PersistentVolumeClaimRetentionPolicy; p == nil || p.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType || p.WhenScaled != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
			t.Errorf("PVC retention %+v, want Retain/Retain", p)
		}
		if !reflect.DeepEqual(s.Selector.MatchLabels, selectorLabels(sn)) || !reflect.DeepEqual(sts.Spec.Template.Labels, seedLabels(sn)) {
			t.Errorf("selector %v, template labels %v", s.Selector.MatchLabels, sts.Spec.Template.Labels)
		}
		for k, v := range s.Selector.MatchLabels {
			if sts.Spec.Template.Labels[k] != v {
				t.Errorf("template labels do not match the selector at %s", k)
			}
		}
		if len(s.VolumeClaimTemplates) != 1 {
			t.Fatalf("%d volume claim templates", len(s.VolumeClaimTemplates))
		}
		pvc := s.VolumeClaimTemplates[0]
		if pvc.Name != dataVolumeName || ptr.Deref(pvc.Spec.StorageClassName, "") != "fast" ||
			!pvc.Spec.Resources.Requests.Storage().Equal(resource.MustParse("1Gi")) ||
			!slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
			t.Errorf("volume claim template %s", jsonOf(t, pvc))
		}
		if d := buildStatefulSet(fixtureSeedNode(), "img", 1, "").Spec.VolumeClaimTemplates[0]; !d.Spec.Resources.Requests.Storage().Equal(resource.MustParse("10Gi")) || d.Spec.StorageClassName != nil {
			t.Errorf("default volume claim %s, want 10Gi of the default class", jsonOf(t, d))
		}
	})

	t.Run("security", func(t *testing.T) {
		psc := pod.SecurityContext
		if psc == nil || !ptr.Deref(psc.RunAsNonRoot, false) || ptr.Deref(psc.RunAsUser, 0) != 65532 || ptr.Deref(psc.RunAsGroup, 0) != 65532 ||
			ptr.Deref(psc.FSGroup, 0) != 65532 || ptr.Deref(psc.FSGroupChangePolicy, "") != corev1.FSGroupChangeOnRootMismatch ||
			psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("pod securityContext %s", jsonOf(t, psc))
		}
		if ptr.Deref(pod.AutomountServiceAccountToken, true) || ptr.Deref(pod.EnableServiceLinks, true) || ptr.Deref(pod.TerminationGracePeriodSeconds, 0) != 30 {
			t.Errorf("automountServiceAccountToken %v, enableServiceLinks %v, terminationGracePeriodSeconds %v",
				pod.AutomountServiceAccountToken, pod.EnableServiceLinks, pod.TerminationGracePeriodSeconds)
		}
		if len(pod.Containers) != 1 || len(pod.InitContainers) != 1 {
			t.Fatalf("%d containers, %d init containers", len(pod.Containers), len(pod.InitContainers))
		}
		for _, c := range []corev1.Container{pod.InitContainers[0], pod.Containers[0]} {
			csc := c.SecurityContext
			if csc == nil || !ptr.Deref(csc.ReadOnlyRootFilesystem, false) || ptr.Deref(csc.AllowPrivilegeEscalation, true) ||
				!ptr.Deref(csc.RunAsNonRoot, false) || csc.Privileged != nil || csc.Capabilities == nil ||
				!slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(csc.Capabilities.Add) != 0 {
				t.Errorf("container %s securityContext %s", c.Name, jsonOf(t, csc))
			}
		}
		// A read-only root needs every written path on a volume. Only the
		// init container sees the identities volume, which holds every
		// pod's key; the seed reads its own from the identity volume.
		for _, c := range []struct {
			c      corev1.Container
			mounts map[string]bool // mount path -> read-only
		}{
			{pod.Containers[0], map[string]bool{"/data": false, "/tmp": false, podsMountPath: true, identityMountPath: true, tokenMountPath: true}},
			{pod.InitContainers[0], map[string]bool{identitiesMountPath: true, identityMountPath: false}},
		} {
			mounts := map[string]corev1.VolumeMount{}
			for _, m := range c.c.VolumeMounts {
				mounts[m.MountPath] = m
			}
			for p, ro := range c.mounts {
				if m, ok := mounts[p]; !ok || m.ReadOnly != ro {
					t.Errorf("container %s, mount at %s: %+v (present %v), want readOnly %v", c.c.Name, p, m, ok, ro)
				}
			}
			if len(mounts) != len(c.mounts) {
				t.Errorf("container %s mounts %d volumes, want %d: %s", c.c.Name, len(mounts), len(c.mounts), jsonOf(t, c.c.VolumeMounts))
			}
		}
	})

	t.Run("container", func(t *testing.T) {
		c := pod.Containers[0]
		if c.Name != "seed" || c.Image != "img:1" || c.ImagePullPolicy != corev1.PullAlways {
			t.Errorf("container %s image %s pull %s", c.Name, c.Image, c.ImagePullPolicy)
		}
		if want := []string{"seednode", "--config=/etc/seedfleet/pods/$(POD_NAME)/seed.yaml"}; !slices.Equal(c.Args, want) {
			t.Errorf("args %q, want %q", c.Args, want)
		}
		env := map[string]string{}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
				env[e.Name] = e.ValueFrom.FieldRef.FieldPath
			}
		}
		if env["POD_NAME"] != "metadata.name" || env["POD_NAMESPACE"] != "metadata.namespace" {
			t.Errorf("env %v", env)
		}
		ports := map[string]corev1.ContainerPort{}
		for _, p := range c.Ports {
			ports[p.Name] = p
		}
		want := map[string]corev1.ContainerPort{
			"p2p":      {Name: "p2p", ContainerPort: 4101, Protocol: corev1.ProtocolTCP},
			"p2p-quic": {Name: "p2p-quic", ContainerPort: 4101, Protocol: corev1.ProtocolUDP},
			"admin":    {Name: "admin", ContainerPort: 7501, Protocol: corev1.ProtocolTCP},
			"ws":       {Name: "ws", ContainerPort: 4102, Protocol: corev1.ProtocolTCP},
		}
		if !reflect.DeepEqual(ports, want) {
			t.Errorf("ports %v, want %v", ports, want)
		}
		for _, p := range []struct {
			name              string
			probe             *corev1.Probe
			path              string
			period, threshold int32
		}{
			{"readiness", c.ReadinessProbe, "/readyz", 5, 3},
			{"liveness", c.LivenessProbe, "/healthz", 10, 6},
			{"startup", c.StartupProbe, "/healthz", 2, 30},
		} {
			if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "admin" ||
				p.probe.PeriodSeconds != p.period || p.probe.FailureThreshold != p.threshold {
				t.Errorf("%s probe %s", p.name, jsonOf(t, p.probe))
			}
		}
		if !reflect.DeepEqual(c.Resources, sn.Spec.Resources) {
			t.Errorf("resources %v, want %v", c.Resources, sn.Spec.Resources)
		}
	})

	t.Run("pods volume", func(t *testing.T) {
		// volumeFiles maps the paths in a projected volume to the
		// "configmap/NAME/KEY" or "secret/NAME/KEY" that fills them.
		volumeFiles := func(name string, sources int) map[string]string {
			vol := findVolume(pod.Volumes, name)
			if vol == nil || vol.Projected == nil {
				t.Fatalf("no projected volume %q", name)
			}
			if ptr.Deref(vol.Projected.DefaultMode, 0) != 0o440 {
				t.Errorf("volume %s: defaultMode %o, want 0440", name, ptr.Deref(vol.Projected.DefaultMode, 0))
			}
			src := vol.Projected.Sources
			if len(src) != sources {
				t.Fatalf("volume %s: %d sources, want %d", name, len(src), sources)
			}
			files := map[string]string{}
			for i, s := range src {
				switch {
				case s.ConfigMap != nil && ptr.Deref(s.ConfigMap.Optional, false):
					for _, it := range s.ConfigMap.Items {
						files[it.Path] = "configmap/" + s.ConfigMap.Name + "/" + it.Key
					}
				case s.Secret != nil && ptr.Deref(s.Secret.Optional, false):
					for _, it := range s.Secret.Items {
						files[it.Path] = "secret/" + s.Secret.Name + "/" + it.Key
					}
				default:
					t.Errorf("volume %s: source %d is not an optional ConfigMap or Secret: %s", name, i, jsonOf(t, s))
				}
			}
			return files
		}
		podFiles := volumeFiles(podsVolumeName, seedv1.MaxSeedReplicas)
		if len(podFiles) != 2*seedv1.MaxSeedReplicas {
			t.Errorf("%d distinct files in the pods volume, want %d", len(podFiles), 2*seedv1.MaxSeedReplicas)
		}
		for f, src := range podFiles {
			if strings.HasPrefix(src, "secret/") {
				t.Errorf("the pods volume, which the seed container mounts, holds Secret %s at %s", src, f)
			}
		}
		keyFiles := volumeFiles(identitiesVolumeName, seedv1.MaxSeedReplicas)
		if len(keyFiles) != seedv1.MaxSeedReplicas {
			t.Errorf("%d distinct files in the identities volume, want %d", len(keyFiles), seedv1.MaxSeedReplicas)
		}
		if v := findVolume(pod.Volumes, identityVolumeName); v == nil || v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory {
			t.Errorf("identity volume %s, want an emptyDir in memory", jsonOf(t, v))
		}
		install := pod.InitContainers[0]
		if len(install.Args) != 4 || install.Args[0] != "seednode" || install.Args[1] != "install-key" ||
			install.Image != "img:1" || install.ImagePullPolicy != corev1.PullAlways ||
			len(install.Env) != 1 || install.Env[0].ValueFrom.FieldRef.FieldPath != "metadata.name" {
			t.Fatalf("init container %s", jsonOf(t, install))
		}
		// The files the seed is told to read are the ones projected: the
		// args for seed.yaml, seed.yaml for the rest; its key is the one
		// the init container copies from the pod's identity Secret.
		for _, o := range []int{0, 2, seedv1.MaxSeedReplicas - 1} {
			name := podName(sn, o)
			seedYAML := strings.ReplaceAll(strings.TrimPrefix(pod.Containers[0].Args[1], "--config="), "$(POD_NAME)", name)
			data, err := buildSeedConfig(sn, fixturePlan(t, sn, o, 3))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			for file, want := range map[string]string{
				seedYAML:             "configmap/" + podConfigMapName(sn, o) + "/seed.yaml",
				cfg.HostedVaultsFile: "configmap/" + podConfigMapName(sn, o) + "/vaults",
			} {
				rel, ok := strings.CutPrefix(file, podsMountPath+"/")
				if !ok || podFiles[rel] != want {
					t.Errorf("pod %s reads %s, which the pods volume fills from %q, want %q", name, file, podFiles[rel], want)
				}
			}
			from := strings.ReplaceAll(install.Args[2], "$(POD_NAME)", name)
			rel, ok := strings.CutPrefix(from, identitiesMountPath+"/")
			if want := "secret/" + identitySecretName(sn, o) + "/identity.key"; !ok || keyFiles[rel] != want {
				t.Errorf("pod %s installs its key from %s, which the identities volume fills from %q, want %q", name, from, keyFiles[rel], want)
			}
			if to := install.Args[3]; to != cfg.IdentityFile || path.Dir(to) != identityMountPath {
				t.Errorf("pod %s installs its key at %s, the seed reads %s, the identity volume is at %s", name, to, cfg.IdentityFile, identityMountPath)
			}
			if !strings.HasPrefix(cfg.Admin.TokenFile, tokenMountPath+"/") || path.Base(cfg.Admin.TokenFile) != keyAdminToken {
				t.Errorf("admin token file %s is not the token Secret's key under %s", cfg.Admin.TokenFile, tokenMountPath)
			}
		}
		tok := findVolume(pod.Volumes, tokenVolumeName)
		if tok == nil || tok.Secret == nil || tok.Secret.SecretName != adminTokenSecretName(sn) || ptr.Deref(tok.Secret.DefaultMode, 0) != 0o440 {
			t.Errorf("token volume %s", jsonOf(t, tok))
		}
		if tmp := findVolume(pod.Volumes, tmpVolumeName); tmp == nil || tmp.EmptyDir == nil {
			t.Errorf("tmp volume %s", jsonOf(t, tmp))
		}
	})

	t.Run("scheduling and metrics", func(t *testing.T) {
		sc := sn.Spec.Scheduling
		if !reflect.DeepEqual(pod.NodeSelector, sc.NodeSelector) || !reflect.DeepEqual(pod.Tolerations, sc.Tolerations) ||
			!reflect.DeepEqual(pod.TopologySpreadConstraints, sc.TopologySpreadConstraints) || pod.PriorityClassName != "seeds" ||
			!reflect.DeepEqual(pod.ImagePullSecrets, sn.Spec.ImagePullSecrets) {
			t.Errorf("scheduling not passed on: %s", jsonOf(t, pod))
		}
		aa := pod.Affinity
		if aa == nil || aa.PodAntiAffinity == nil || len(aa.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 {
			t.Fatalf("default affinity %s", jsonOf(t, aa))
		}
		term := aa.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm
		if term.TopologyKey != corev1.LabelHostname || !reflect.DeepEqual(term.LabelSelector.MatchLabels, selectorLabels(sn)) {
			t.Errorf("default anti-affinity term %s", jsonOf(t, term))
		}

		own := fixtureFullSeedNode()
		own.Spec.Scheduling.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "pool", Operator: corev1.NodeSelectorOpIn, Values: []string{"seeds"}}},
			}}},
		}}
		if got := buildStatefulSet(own, "img", 1, "").Spec.Template.Spec.Affinity; !reflect.DeepEqual(got, own.Spec.Scheduling.Affinity) {
			t.Errorf("spec affinity replaced: %s", jsonOf(t, got))
		}

		wantAnn := map[string]string{AnnotationConfigHash: "abc", "prometheus.io/scrape": "true", "prometheus.io/port": "7501", "prometheus.io/path": "/metrics"}
		if got := sts.Spec.Template.Annotations; !reflect.DeepEqual(got, wantAnn) {
			t.Errorf("template annotations %v, want %v", got, wantAnn)
		}
		if got := buildStatefulSet(fixtureSeedNode(), "img", 1, "abc").Spec.Template.Annotations; !reflect.DeepEqual(got, map[string]string{AnnotationConfigHash: "abc"}) {
			t.Errorf("template annotations without metrics %v", got)
		}
	})

	t.Run("builder does not alias the SeedNode", func(t *testing.T) {
		sts := buildStatefulSet(sn, "img", 1, "")
		sts.Spec.Template.Spec.NodeSelector["pool"] = "changed"
		sts.Spec.Template.Spec.Tolerations[0].Value = "changed"
		if sn.Spec.Scheduling.NodeSelector["pool"] != "seeds" || sn.Spec.Scheduling.Tolerations[0].Value != "seeds" {
			t.Error("changing the built StatefulSet changed the SeedNode")
		}
	})
}

func findVolume(vols []corev1.Volume, name string) *corev1.Volume {
	for i := range vols {
		if vols[i].Name == name {
			return &vols[i]
		}
	}
	return nil
}

func TestBuildPodService(t *testing.T) {
	tests := []struct {
		name        string
		typ         seedv1.ServiceType
		ws          bool
		wantType    corev1.ServiceType // "" wants nil
		wantLocal   bool
		annotations map[string]string
	}{
		{name: "none", typ: seedv1.ServiceTypeNone},
		{name: "unset is ClusterIP", typ: "", wantType: corev1.ServiceTypeClusterIP},
		{name: "cluster IP with WebSocket", typ: seedv1.ServiceTypeClusterIP, ws: true, wantType: corev1.ServiceTypeClusterIP},
		{name: "node port", typ: seedv1.ServiceTypeNodePort, wantType: corev1.ServiceTypeNodePort, wantLocal: true},
		{name: "load balancer", typ: seedv1.ServiceTypeLoadBalancer, ws: true, wantType: corev1.ServiceTypeLoadBalancer, wantLocal: true,
			annotations: map[string]string{"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sn := fixtureSeedNode()
			sn.Spec.Expose.ServiceType = tt.typ
			sn.Spec.Expose.Annotations = tt.annotations
			if tt.ws {
				sn.Spec.Ports.WebSocket = ptr.To[int32](4002)
			}
			svc := buildPodService(sn, 2)
			if tt.wantType == "" {
				if svc != nil {
					t.Fatalf("got a Service for type None: %s", jsonOf(t, svc))
				}
				return
			}
			if svc == nil {
				t.Fatal("no Service")
			}
			if svc.Name != "seeds-2" || svc.Namespace != "fleet" || svc.Labels[LabelPod] != "seeds-2" {
				t.Errorf("meta %s", jsonOf(t, svc.ObjectMeta))
			}
			if want := map[string]string{"statefulset.kubernetes.io/pod-name": "seeds-2"}; !reflect.DeepEqual(svc.Spec.Selector, want) {
				t.Errorf("selector %v, want %v", svc.Spec.Selector, want)
			}
			if svc.Spec.Type != tt.wantType {
				t.Errorf("type %s, want %s", svc.Spec.Type, tt.wantType)
			}
			// Seeds bootstrap through each other's Services before they are Ready.
			if !svc.Spec.PublishNotReadyAddresses {
				t.Error("publishNotReadyAddresses is off: no seed could reach another before both are Ready")
			}
			if local := svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal; local != tt.wantLocal {
				t.Errorf("externalTrafficPolicy %q", svc.Spec.ExternalTrafficPolicy)
			}
			if !reflect.DeepEqual(svc.Annotations, tt.annotations) {
				t.Errorf("annotations %v, want %v", svc.Annotations, tt.annotations)
			}
			var got []string
			for _, p := range svc.Spec.Ports {
				if p.Name == portNameAdmin || p.Port == 7401 || p.TargetPort.IntValue() == 7401 {
					t.Errorf("exposes the admin port: %+v", p)
				}
				got = append(got, fmt.Sprintf("%s %s %d->%s", p.Name, p.Protocol, p.Port, p.TargetPort.String()))
			}
			want := []string{"p2p TCP 4001->4001", "p2p-quic UDP 4001->4001"}
			if tt.ws {
				want = append(want, "ws TCP 4002->4002")
			}
			if !slices.Equal(got, want) {
				t.Errorf("ports %q, want %q", got, want)
			}
		})
	}
}

func TestBuildHeadlessService(t *testing.T) {
	sn := fixtureFullSeedNode()
	svc := buildHeadlessService(sn)
	if svc.Name != "seeds-peers" || svc.Spec.ClusterIP != corev1.ClusterIPNone || !svc.Spec.PublishNotReadyAddresses {
		t.Errorf("headless Service %s", jsonOf(t, svc))
	}
	if !reflect.DeepEqual(svc.Spec.Selector, selectorLabels(sn)) {
		t.Errorf("selector %v", svc.Spec.Selector)
	}
	var got []string
	for _, p := range svc.Spec.Ports {
		got = append(got, fmt.Sprintf("%s %s %d", p.Name, p.Protocol, p.Port))
	}
	if want := []string{"p2p TCP 4101", "p2p-quic UDP 4101", "admin TCP 7501"}; !slices.Equal(got, want) {
		t.Errorf("ports %q, want %q", got, want)
	}
}

func TestBuildIdentitySecret(t *testing.T) {
	sn := fixtureSeedNode()
	for _, o := range []int{0, 7} {
		key := fixtureKey(o)
		sec, err := buildIdentitySecret(sn, o, key)
		if err != nil {
			t.Fatal(err)
		}
		if sec.Name != identitySecretName(sn, o) || sec.Namespace != "fleet" || sec.Type != corev1.SecretTypeOpaque || sec.Labels[LabelPod] != podName(sn, o) {
			t.Errorf("meta %s type %s", jsonOf(t, sec.ObjectMeta), sec.Type)
		}
		got, err := identity.DecodePEM(sec.Data[keyIdentity])
		if err != nil {
			t.Fatalf("%s does not decode: %v", keyIdentity, err)
		}
		if !got.Equal(key) {
			t.Error("decoded key differs from the one given")
		}
		id, err := peer.Decode(sec.Annotations[AnnotationPeerID])
		if err != nil {
			t.Fatalf("peer-id annotation %q: %v", sec.Annotations[AnnotationPeerID], err)
		}
		if id != fixturePeerID(t, o) {
			t.Errorf("peer-id annotation %s, want %s", id, fixturePeerID(t, o))
		}
		if pub, err := identity.PublicKeyFromPeerID(id); err != nil || !pub.Equal(key.Public()) {
			t.Errorf("peer-id annotation does not hold the key's public half (%v)", err)
		}
	}
	if _, err := buildIdentitySecret(sn, 0, ed25519.PrivateKey(make([]byte, 10))); err == nil {
		t.Error("a malformed key was accepted")
	}
}

func TestBuildSmallObjects(t *testing.T) {
	sn := fixtureSeedNode()
	tok := buildAdminTokenSecret(sn, "s3cret")
	if tok.Name != "seeds-admin-token" || string(tok.Data[keyAdminToken]) != "s3cret" || tok.Type != corev1.SecretTypeOpaque {
		t.Errorf("token Secret %s", jsonOf(t, tok))
	}
	plan := fixturePlan(t, sn, 1, 2)
	cm := buildPodConfigMap(sn, plan, []byte("dataDir: /data\n"))
	if cm.Name != "seeds-1-config" || cm.Data[keySeedConfig] != "dataDir: /data\n" || cm.Data[keyVaults] != string(plan.Vaults) || cm.Labels[LabelPod] != "seeds-1" {
		t.Errorf("ConfigMap %s", jsonOf(t, cm))
	}
	if cm := buildPodConfigMap(sn, podPlan{Ordinal: 0}, nil); cm.Data[keyVaults] != "" || len(cm.Data) != 2 {
		t.Errorf("ConfigMap without vaults %v: both keys must exist", cm.Data)
	}
	pdb := buildPDB(sn)
	if pdb.Name != "seeds" || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.MinAvailable != nil ||
		!reflect.DeepEqual(pdb.Spec.Selector.MatchLabels, selectorLabels(sn)) {
		t.Errorf("PDB %s", jsonOf(t, pdb))
	}
}

func TestBuildConfigHash(t *testing.T) {
	a, b := []byte("logLevel: info\n"), []byte("logLevel: debug\n")
	h := configHash(a, b)
	if len(h) != 16 || strings.Trim(h, "0123456789abcdef") != "" {
		t.Errorf("hash %q is not 16 hex digits", h)
	}
	for name, other := range map[string]string{
		"same files":          configHash([]byte("logLevel: info\n"), []byte("logLevel: debug\n")),
		"one file changed":    configHash(a, []byte("logLevel: warn\n")),
		"order changed":       configHash(b, a),
		"a file added":        configHash(a, b, nil),
		"bytes moved between": configHash([]byte("logLevel: info\nl"), []byte("ogLevel: debug\n")),
	} {
		if same := other == h; same != (name == "same files") {
			t.Errorf("%s: hash %s vs %s", name, other, h)
		}
	}
}

// TestResourcesAcceptedByAPIServer creates every built object in a real API
// server, which validates them as a cluster would.
func TestResourcesAcceptedByAPIServer(t *testing.T) {
	e := envtestutil.Start(t)
	ctx := context.Background()
	c := e.Client

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "resources-"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	sn := fixtureFullSeedNode()
	sn.Namespace = ns.Name
	sn.Spec.DHT.ReprovideInterval = &metav1.Duration{Duration: 2 * time.Hour}
	if err := c.Create(ctx, sn); err != nil {
		t.Fatalf("creating the SeedNode: %v", err)
	}
	minimal := fixtureSeedNode()
	minimal.Name, minimal.Namespace = "minimal", ns.Name
	if err := c.Create(ctx, minimal); err != nil {
		t.Fatalf("creating the minimal SeedNode: %v", err)
	}
	// The API server's defaulting (the CRD's markers) and the API's Default
	// agree, so the builders see an unset field as the cluster would.
	if want := fixtureSeedNode().WithDefaults().Spec; !equality.Semantic.DeepEqual(minimal.Spec, want) {
		t.Errorf("the API server defaults an empty spec to\n%s\nseedv1's Default to\n%s", jsonOf(t, minimal.Spec), jsonOf(t, want))
	}

	var objs []client.Object
	for _, s := range []*seedv1.SeedNode{sn, minimal} {
		const replicas = 3
		var yamls [][]byte
		for o := range replicas {
			plan := fixturePlan(t, s, o, replicas)
			y, err := buildSeedConfig(s, plan)
			if err != nil {
				t.Fatalf("%s: %v", s.Name, err)
			}
			yamls = append(yamls, y)
			sec, err := buildIdentitySecret(s, o, fixtureKey(o))
			if err != nil {
				t.Fatal(err)
			}
			objs = append(objs, buildPodConfigMap(s, plan, y), sec)
		}
		objs = append(objs,
			buildAdminTokenSecret(s, "token"),
			buildHeadlessService(s),
			buildStatefulSet(s, "example.org/seedfleet:v1", replicas, configHash(yamls...)),
			buildPDB(s))
	}
	// One per-pod Service of each type; "minimal" leaves the type unset.
	for o, typ := range []seedv1.ServiceType{seedv1.ServiceTypeClusterIP, seedv1.ServiceTypeNodePort, seedv1.ServiceTypeLoadBalancer} {
		s := sn.DeepCopy()
		s.Spec.Expose.ServiceType = typ
		objs = append(objs, buildPodService(s, o))
	}
	objs = append(objs, buildPodService(minimal, 0))

	for _, obj := range objs {
		kind := fmt.Sprintf("%T %s", obj, obj.GetName())
		if err := c.Create(ctx, obj); err != nil {
			t.Errorf("%s: the API server refuses it: %v", kind, err)
		}
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
