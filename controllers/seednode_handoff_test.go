/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/seedfleet/seedfleet/seednode/admin"
)

// shrinkState is a public fleet of spec.replicas 2 whose pods are told
// fleetPods members.
func shrinkState(t *testing.T, fleetPods int) *seedState {
	sn := fixtureFleetSeedNode(2)
	st := &seedState{sn: sn, fleetPods: fleetPods, peerIDs: map[int]string{}}
	for o := range 3 {
		st.peerIDs[o] = fixturePeerID(t, o).String()
	}
	return st
}

// seedYAMLs are the seed.yaml of pods 0-2 as ensurePodConfigs writes them.
func (st *seedState) seedYAMLs(t *testing.T) [][]byte {
	var out [][]byte
	for o := range 3 {
		plan := fixturePlan(t, st.sn, o, 3)
		plan.FleetMembers, plan.FleetLeaving = st.fleetMembers(), st.fleetLeaving()
		data, err := buildSeedConfig(st.sn, plan)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// TestShrinkingFleetConfig: while a public fleet shrinks from 3 to 2 pods,
// every pod, the leaving one included, lists all 3 members with leaving 1;
// once the hand-off is over the 2 remaining pods list 2 with leaving 0 and
// the third pod has no fleet section. No change moves the pods' config
// hash: the seeds apply their members without a restart.
func TestShrinkingFleetConfig(t *testing.T) {
	handing := shrinkState(t, 3)
	all := fixtureMembers(t, handing.sn, 3)
	var hashes []string
	for o, data := range handing.seedYAMLs(t) {
		f := parseSeedYAML(t, data).Fleet
		if f.Self != o || !slices.Equal(f.Members, all) || f.Leaving != 1 {
			t.Errorf("during the hand-off, pod %d: self %d, members %v, leaving %d; want all 3 members, leaving 1", o, f.Self, f.Members, f.Leaving)
		}
	}
	for _, st := range []*seedState{handing, shrinkState(t, 2), shrinkState(t, 0)} {
		base, err := templateSeedConfig(st.sn, st.fleetMembers())
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, configHash(base))
	}
	if hashes[0] != hashes[1] || hashes[1] != hashes[2] {
		t.Errorf("config hashes during and after the hand-off differ (the pods would restart): %v", hashes)
	}

	after := shrinkState(t, 2).seedYAMLs(t)
	for o, data := range after {
		f := parseSeedYAML(t, data).Fleet
		switch {
		case o < 2 && (f.Self != o || !slices.Equal(f.Members, all[:2]) || f.Leaving != 0):
			t.Errorf("after the hand-off, pod %d: self %d, members %v, leaving %d; want the 2 first, leaving 0", o, f.Self, f.Members, f.Leaving)
		case o == 2 && f.Enabled():
			t.Errorf("after the hand-off, the removed pod keeps a fleet section %+v", f)
		}
	}
}

// TestHandoffPending: a leaving pod is done only when every pod reports
// that it places by the membership with leaving set, and the leaving pod
// holds no self-service vault.
func TestHandoffPending(t *testing.T) {
	current := shrinkState(t, 3).membersVersion(3, 1)
	if current == "" || current == shrinkState(t, 3).membersVersion(3, 0) {
		t.Fatalf("membership versions: %q", current)
	}
	build := func(members0 string, f2 *admin.FleetStatus) *seedState {
		st := shrinkState(t, 3)
		st.fleet = &fleetView{Pods: map[int]*podView{}}
		for o := range 3 {
			f := &admin.FleetStatus{Name: FleetName(st.sn), Pods: 3, HostedVaults: 5, Members: current}
			switch o {
			case 0:
				f.Members = members0
			case 2:
				f = f2
			}
			st.fleet.Pods[o] = &podView{Ordinal: o, Fleet: f}
		}
		return st
	}
	name := FleetName(fixtureFleetSeedNode(2))
	done := &admin.FleetStatus{Name: name, Pods: 3, Members: current}
	for what, tc := range map[string]struct {
		st      *seedState
		leaving int
		pending int
		why     string
	}{
		"done":                       {build(current, done), 1, 0, ""},
		"still holding":              {build(current, &admin.FleetStatus{Name: name, Pods: 3, HostedVaults: 4, Members: current}), 1, 4, ""},
		"not answering":              {build(current, nil), 1, 0, "to apply"},
		"another fleet's answer":     {build(current, &admin.FleetStatus{Name: "x/y", Pods: 3, Members: current}), 1, 0, "to apply"},
		"leaving pod on old members": {build(current, &admin.FleetStatus{Name: name, Pods: 3, Members: "old"}), 1, 0, "to apply"},
		"other pod on old members":   {build("old", done), 1, 0, "pods seeds-0 to apply"},
		"not yet told it is leaving": {build(current, done), 0, 0, "being told"},
	} {
		pending, why := tc.st.handoffPending(3, tc.leaving)
		if pending != tc.pending || (tc.why == "") != (why == "") || !strings.Contains(why, tc.why) {
			t.Errorf("%s: %d pending (%q), want %d (%q)", what, pending, why, tc.pending, tc.why)
		}
	}
}

// TestHandoffSettles: the leaving pods must report nothing held for
// handoffSettle, from their first such report.
func TestHandoffSettles(t *testing.T) {
	var h handoffs
	key := types.NamespacedName{Namespace: "a", Name: "b"}
	t0 := time.Unix(1000, 0)
	if h.done(key, t0) || h.done(key, t0.Add(handoffSettle-time.Millisecond)) {
		t.Fatal("done before handoffSettle")
	}
	if !h.done(key, t0.Add(handoffSettle)) {
		t.Fatal("not done after handoffSettle")
	}
	h.forget(key)
	if h.done(key, t0.Add(time.Hour)) {
		t.Fatal("done right after forget")
	}
}

// TestHandoffMessage: the condition's message names the leaving pods as a
// range and at most a few waited-for pods, however large the fleet.
func TestHandoffMessage(t *testing.T) {
	if got := handoffMessage("pub", 2, 5, 7, ""); got != "scaling the public fleet from 5 to 2 pods: handing off 7 self-service vaults from pods pub-{2..4}" {
		t.Errorf("5 to 2: %q", got)
	}
	if got := handoffMessage("pub", 2, 3, 0, "x"); !strings.HasSuffix(got, "from pods pub-{2}; x") {
		t.Errorf("3 to 2: %q", got)
	}
	var names []string
	for o := range 1000 {
		names = append(names, podName(fixtureSeedNode(), o))
	}
	if got := someNames(names); got != "seeds-0, seeds-1, seeds-2, seeds-3, seeds-4 and 995 more" {
		t.Errorf("1000 names: %q", got)
	}
}
