/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
)

// updateStatus derives the SeedNode's status from what this reconcile saw
// (never from the previous status) and writes it only when it changed.
func (r *SeedNodeReconciler) updateStatus(ctx context.Context, st *seedState, failure error) error {
	sn := st.sn
	status := seedv1.SeedNodeStatus{
		ObservedGeneration: sn.Generation,
		Replicas:           st.replicas,
		Selector:           labels.SelectorFromSet(selectorLabels(sn)).String(),
		Conditions:         slices.Clone(sn.Status.Conditions), // set below, never in sn's own
	}
	for o := range int(st.replicas) {
		ps := seedv1.SeedPodStatus{Name: podName(sn, o), PeerID: st.peerIDs[o]}
		pv := (*podView)(nil)
		if st.fleet != nil {
			pv = st.fleet.Pods[o]
		}
		switch {
		case pv == nil:
			ps.Message = "pod not created yet"
			ps.Addrs = st.stableAddrs(o)
		case pv.Status == nil:
			ps.Message = firstLine(pv.Err)
			ps.Addrs = st.stableAddrs(o)
		default:
			ps.Addrs = preferredAddrs(pv.Status.Addrs)
			ps.Ready = pv.Status.Ready
			ps.Vaults = int32(len(pv.Status.Vaults))
			if f := st.podFleet(o); f != nil {
				ps.SelfServiceVaults = int32(min(f.HostedVaults, math.MaxInt32))
			}
			if !ps.Ready {
				ps.Message = pv.Status.ReadyReason
			}
			if pv.Status.PeerID != "" && ps.PeerID != "" && pv.Status.PeerID != ps.PeerID {
				ps.Message = fmt.Sprintf("runs as peer %s, not the %s its identity Secret holds", pv.Status.PeerID, ps.PeerID)
				ps.Ready = false
			}
		}
		if ps.Ready {
			status.ReadyReplicas++
		}
		if o < int(sn.Spec.Replicas) {
			status.BootstrapPeers = append(status.BootstrapPeers, ps.Addrs...)
		}
		status.Pods = append(status.Pods, ps)
	}
	status.Fleet = st.fleetStatus()
	gen := sn.Generation
	if failure != nil {
		setCondition(&status.Conditions, seedv1.ConditionDegraded, true, degradedReason(failure), failure.Error(), gen)
	} else {
		setCondition(&status.Conditions, seedv1.ConditionDegraded, false, seedv1.ReasonReconciled, "children match the spec", gen)
	}
	switch {
	case st.handoff != "":
		setCondition(&status.Conditions, seedv1.ConditionProgressing, true, seedv1.ReasonHandingOff, st.handoff, gen)
	case st.applying != "":
		setCondition(&status.Conditions, seedv1.ConditionProgressing, true, seedv1.ReasonApplyingMembers, st.applying, gen)
	default:
		setCondition(&status.Conditions, seedv1.ConditionProgressing, false, seedv1.ReasonReconciled, "no pod is handing off or applying the fleet's membership", gen)
	}
	summary := fmt.Sprintf("%d of %d pods ready", status.ReadyReplicas, sn.Spec.Replicas)
	if status.ReadyReplicas >= sn.Spec.Replicas && failure == nil {
		setCondition(&status.Conditions, seedv1.ConditionReady, true, seedv1.ReasonAllPodsReady, summary, gen)
	} else {
		var notReady []string
		for _, p := range status.Pods {
			if !p.Ready && len(notReady) < 3 {
				notReady = append(notReady, p.Name+": "+p.Message)
			}
		}
		setCondition(&status.Conditions, seedv1.ConditionReady, false, seedv1.ReasonPodsNotReady, summary+"; "+strings.Join(notReady, "; "), gen)
	}
	return patchStatus(ctx, r.Client, sn, func(sn *seedv1.SeedNode) { sn.Status = status })
}

func degradedReason(err error) seedv1.ConditionReason {
	var invalid *invalidSpecError
	if errors.As(err, &invalid) {
		return seedv1.ReasonInvalidSpec
	}
	return seedv1.ReasonApplyFailed
}

// firstLine keeps condition messages short.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 512 {
		s = s[:512]
	}
	return s
}
