/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/hosting"
	"github.com/seedfleet/seedfleet/seednode/ticket"
)

func fixtureFleetSeedNode(replicas int32) *seedv1.SeedNode {
	sn := fixtureSeedNode()
	sn.Spec.Replicas = replicas
	sn.Spec.Hosting.SelfService = &seedv1.SelfServiceSpec{Admission: seedv1.AdmissionInvite}
	return sn
}

func fixtureMembers(t *testing.T, sn *seedv1.SeedNode, n int) []string {
	t.Helper()
	var out []string
	for o := range n {
		out = append(out, fmt.Sprintf("/dns/%s.%s.%s.svc/tcp/4001/p2p/%s", podName(sn, o), headlessServiceName(sn), sn.Namespace, fixturePeerID(t, o)))
	}
	return out
}

func parseSeedYAML(t *testing.T, data []byte) config.Config {
	t.Helper()
	c, err := config.Parse(data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	return c
}

// TestBuildSeedConfigFleet: every member pod gets the fleet section with its
// own ordinal and the same members; limits map onto the seed's, unset ones
// fit around those set; a pod beyond the members and a SeedNode without
// selfService get none.
func TestBuildSeedConfigFleet(t *testing.T) {
	sn := fixtureFleetSeedNode(3)
	ss := sn.Spec.Hosting.SelfService
	ss.Replicas = ptr.To[int32](2)
	ss.IdleExpiry = &metav1.Duration{Duration: 90 * 24 * time.Hour}
	ss.Limits = seedv1.SelfServiceLimits{
		MaxVaultsPerAgent:         ptr.To[int32](4),
		MaxQuota:                  seedv1.Quota{MaxBytes: ptr.To(resource.MustParse("100Mi")), MaxEntries: ptr.To[int64](5000)},
		AdmissionsPerSecond:       ptr.To[int32](7),
		RequestsPerRangePerMinute: ptr.To[int32](9),
	}
	sn.Spec.Hosting.MaxVaultsPerPod = 1234
	members := fixtureMembers(t, sn, 3)
	for o := range 3 {
		plan := fixturePlan(t, sn, o, 3)
		plan.FleetMembers = members
		data, err := buildSeedConfig(sn, plan)
		if err != nil {
			t.Fatal(err)
		}
		got := parseSeedYAML(t, data).Fleet
		want := config.Fleet{Name: "fleet/seeds", Self: o, Members: members, Replicas: 2, Admission: fleet.Invite,
			KeyFile: "/etc/seedfleet/identity/fleet.key", IdleExpiry: config.Duration{Duration: 90 * 24 * time.Hour},
			Limits: config.FleetLimits{MaxVaultsPerAgent: 4, MaxQuotaBytes: 100 << 20, MaxQuotaEntries: 5000,
				// Below the new maxima: the seed's defaults are lowered to fit.
				DefaultQuotaBytes: 100 << 20, DefaultQuotaEntries: 5000,
				MaxAgentBytes: hosting.DefaultMaxAgentBytes, MaxVaultsPerPod: 1234, AdmissionsPerSecond: 7, RequestsPerRangePerMinute: 9}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("pod %d's fleet section\n%+v\nwant\n%+v", o, got, want)
		}
	}

	// A larger maxQuota raises the agent's limit when that is unset.
	big := sn.DeepCopy()
	big.Spec.Hosting.SelfService.Limits.MaxQuota.MaxBytes = ptr.To(resource.MustParse("8Gi"))
	plan := fixturePlan(t, big, 0, 3)
	plan.FleetMembers = members
	data, err := buildSeedConfig(big, plan)
	if err != nil {
		t.Fatal(err)
	}
	if l := parseSeedYAML(t, data).Fleet.Limits; l.MaxAgentBytes != 8<<30 || l.DefaultQuotaBytes != hosting.DefaultQuotaBytes {
		t.Errorf("maxQuota 8Gi: limits %+v", l)
	}

	// Unset replicas: 3, or fewer pods.
	for replicas, want := range map[int32]int{1: 1, 2: 2, 5: 3} {
		one := fixtureFleetSeedNode(replicas)
		plan := fixturePlan(t, one, 0, int(replicas))
		plan.FleetMembers = fixtureMembers(t, one, int(replicas))
		data, err := buildSeedConfig(one, plan)
		if err != nil {
			t.Fatal(err)
		}
		if got := parseSeedYAML(t, data).Fleet.Replicas; got != want {
			t.Errorf("%d pods: R %d, want %d", replicas, got, want)
		}
	}

	for name, tc := range map[string]struct {
		sn      *seedv1.SeedNode
		ordinal int
	}{"a pod beyond the members": {sn, 3}, "no selfService": {fixtureSeedNode(), 0}} {
		plan := fixturePlan(t, tc.sn, tc.ordinal, 4)
		plan.FleetMembers = members
		data, err := buildSeedConfig(tc.sn, plan)
		if err != nil {
			t.Fatal(err)
		}
		if f := parseSeedYAML(t, data).Fleet; f.Enabled() {
			t.Errorf("%s: fleet section %+v", name, f)
		}
	}
}

// TestBuildSeedConfigFleetErrors: limits the seeds would refuse name the
// SeedNode field.
func TestBuildSeedConfigFleetErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		set  func(ss *seedv1.SelfServiceSpec)
		want string
	}{
		"default over max": {func(ss *seedv1.SelfServiceSpec) {
			ss.Limits.DefaultQuota.MaxBytes = ptr.To(resource.MustParse("2Gi"))
			ss.Limits.MaxQuota.MaxBytes = ptr.To(resource.MustParse("1Gi"))
		}, "spec.hosting.selfService.limits.defaultQuota.maxBytes"},
		"agent under vault": {func(ss *seedv1.SelfServiceSpec) {
			ss.Limits.MaxAgentBytes = ptr.To(resource.MustParse("10Mi"))
		}, "spec.hosting.selfService.limits.maxAgentBytes"},
		"zero bytes": {func(ss *seedv1.SelfServiceSpec) {
			ss.Limits.MaxQuota.MaxBytes = ptr.To(resource.MustParse("0"))
		}, "spec.hosting.selfService.limits.maxQuota.maxBytes: must be positive"},
		"unknown admission": {func(ss *seedv1.SelfServiceSpec) { ss.Admission = "open" }, `spec.hosting.selfService.admission: unknown value "open"`},
		"short idle expiry": {func(ss *seedv1.SelfServiceSpec) {
			ss.IdleExpiry = &metav1.Duration{Duration: time.Minute}
		}, "spec.hosting.selfService.idleExpiry"},
	} {
		t.Run(name, func(t *testing.T) {
			sn := fixtureFleetSeedNode(3)
			tc.set(sn.Spec.Hosting.SelfService)
			plan := fixturePlan(t, sn, 0, 3)
			plan.FleetMembers = fixtureMembers(t, sn, 3)
			_, err := buildSeedConfig(sn, plan)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

// TestFleetPodTemplate: a public fleet's pods install the fleet key in an
// init container; the hash restarts them when the members change, and a
// SeedNode without selfService keeps its template on scaling.
func TestFleetPodTemplate(t *testing.T) {
	sn := fixtureFleetSeedNode(3)
	sts := buildStatefulSet(sn, "img", 3, "h")
	spec := sts.Spec.Template.Spec
	if len(spec.InitContainers) != 2 || spec.InitContainers[1].Name != fleetKeyContainer ||
		!slices.Equal(spec.InitContainers[1].Args, []string{"seednode", "install-key", "/etc/seedfleet/fleet-key/fleet.key", "/etc/seedfleet/identity/fleet.key"}) {
		t.Fatalf("init containers %+v", spec.InitContainers)
	}
	if i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == fleetKeyVolumeName }); i < 0 ||
		spec.Volumes[i].Secret == nil || spec.Volumes[i].Secret.SecretName != "seeds-fleet-key" {
		t.Fatalf("volumes %+v", spec.Volumes)
	}
	for _, c := range spec.Containers {
		for _, m := range c.VolumeMounts {
			if m.Name == fleetKeyVolumeName {
				t.Fatalf("the seed container mounts the fleet key Secret: %+v", m)
			}
		}
	}
	if plain := buildStatefulSet(fixtureSeedNode(), "img", 3, "h").Spec.Template.Spec; len(plain.InitContainers) != 1 ||
		slices.ContainsFunc(plain.Volumes, func(v corev1.Volume) bool { return v.Name == fleetKeyVolumeName }) {
		t.Fatal("a SeedNode without selfService got the fleet key")
	}

	hash := func(sn *seedv1.SeedNode, members []string) string {
		base, err := templateSeedConfig(sn, members)
		if err != nil {
			t.Fatal(err)
		}
		return configHash(base)
	}
	three, four := fixtureMembers(t, sn, 3), fixtureMembers(t, sn, 4)
	if hash(sn, three) != hash(sn, four) {
		t.Error("the fleet's members change the config hash: scaling would restart every pod")
	}
	open := sn.DeepCopy()
	open.Spec.Hosting.SelfService.Admission = seedv1.AdmissionOpen
	if hash(sn, three) == hash(open, three) {
		t.Error("the config hash ignores the fleet's admission: the pods would keep the old one")
	}
	plain := fixtureSeedNode()
	if hash(plain, three) != hash(plain, four) {
		t.Error("without selfService the members change the hash")
	}
}

// TestFleetTicketAndTotals: the operator's ticket is the seeds' own, and the
// totals sum the pods of this fleet with bounded refusal reasons.
func TestFleetTicketAndTotals(t *testing.T) {
	sn := fixtureFleetSeedNode(3)
	sn.Namespace = "ns"
	members := fixtureMembers(t, sn, 3)
	tk, err := ticket.ParseFleetTicket(fleetTicket(sn, members))
	if err != nil {
		t.Fatal(err)
	}
	if tk.Name != "ns/seeds" || tk.Admission != fleet.Invite || tk.Replicas != 3 || tk.Pods != 3 || len(tk.Peers) != 3 ||
		tk.Peers[2].ID != fixturePeerID(t, 2) {
		t.Fatalf("ticket %+v", tk)
	}

	st := &seedState{sn: sn, fleet: &fleetView{Pods: map[int]*podView{}}, peerIDs: map[int]string{}}
	for o := range 3 {
		st.peerIDs[o] = fixturePeerID(t, o).String()
	}
	refusals := map[string]uint64{"InviteNeeded": 2, "Quota": 1, "bad reason!": 5, strings.Repeat("x", 40): 1}
	for i := range 40 {
		refusals[fmt.Sprintf("R%c%c", 'a'+i/26, 'a'+i%26)] = 1
	}
	st.fleet.Pods[0] = &podView{Fleet: &admin.FleetStatus{Name: "ns/seeds", Agents: 2, Vaults: 3, Bytes: 100, Admissions: 2, HostedVaults: 5,
		Refusals: map[string]uint64{"InviteNeeded": 1}}}
	st.fleet.Pods[1] = &podView{Fleet: &admin.FleetStatus{Name: "ns/seeds", Agents: 1, Vaults: 1, Bytes: 50, Admissions: 1, Refusals: refusals}}
	st.fleet.Pods[2] = &podView{Fleet: &admin.FleetStatus{Name: "ns/other", Agents: 100}}
	fs := st.fleetStatus()
	if fs.Agents != 3 || fs.Vaults != 4 || fs.Bytes != 150 || fs.Admissions != 3 || fs.PodsReporting != 2 || fs.Ticket == "" {
		t.Fatalf("totals %+v", fs)
	}
	if len(fs.Refusals) > maxRefusalReasons || fs.Refusals[0].Reason != "InviteNeeded" || fs.Refusals[0].Count != 3 {
		t.Fatalf("refusals %+v", fs.Refusals)
	}
	for _, r := range fs.Refusals {
		if !validReason(r.Reason) {
			t.Fatalf("refusal reason %q passed", r.Reason)
		}
	}
}
