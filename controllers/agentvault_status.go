/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/seednode/ticket"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// setCondition sets one condition with the generation it describes: every
// condition the operator writes goes through here, so none lacks its
// ObservedGeneration.
func setCondition(conds *[]metav1.Condition, typ seedv1.ConditionType, ok bool, reason seedv1.ConditionReason, msg string, gen int64) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: string(typ), Status: status, Reason: string(reason), Message: firstLine(msg), ObservedGeneration: gen,
	})
}

// updateStatus writes the AgentVault's status derived from view, only when
// it changed.
func (r *AgentVaultReconciler) updateStatus(ctx context.Context, av *seedv1.AgentVault, v *vaultView) error {
	st := seedv1.AgentVaultStatus{ObservedGeneration: av.Generation, Placement: v.replicas, Conditions: slices.Clone(av.Status.Conditions)}
	gen := av.Generation
	wasPlaced := meta.IsStatusConditionTrue(av.Status.Conditions, string(seedv1.ConditionPlaced))
	switch {
	case v.sn == nil:
		msg := fmt.Sprintf("SeedNode %q does not exist in namespace %s: create it, or fix spec.seedNodeRef", av.Spec.SeedNodeRef.Name, av.Namespace)
		setCondition(&st.Conditions, seedv1.ConditionPlaced, false, seedv1.ReasonSeedNodeNotFound, msg, gen)
		setCondition(&st.Conditions, seedv1.ConditionReady, false, seedv1.ReasonSeedNodeNotFound, msg, gen)
		setCondition(&st.Conditions, seedv1.ConditionDegraded, true, seedv1.ReasonSeedNodeNotFound, msg, gen)
		return r.writeStatus(ctx, av, st)
	}
	var pods, missing []string
	for _, o := range v.desired {
		pods = append(pods, podName(v.sn, o))
		if !v.published[o] {
			missing = append(missing, podName(v.sn, o))
		}
	}
	placed := len(v.desired) > 0 && len(missing) == 0
	switch {
	case placed:
		setCondition(&st.Conditions, seedv1.ConditionPlaced, true, seedv1.ReasonPlaced, "placed on "+strings.Join(pods, ", "), gen)
	case len(v.desired) == 0:
		setCondition(&st.Conditions, seedv1.ConditionPlaced, false, seedv1.ReasonTooFewPods, "no pod of SeedNode "+v.sn.Name+" can take the vault (every pod is full)", gen)
	default:
		setCondition(&st.Conditions, seedv1.ConditionPlaced, false, seedv1.ReasonMoving, "publishing the placement to "+strings.Join(missing, ", "), gen)
	}
	if placed && !wasPlaced {
		r.Recorder.Eventf(av, v.sn, corev1.EventTypeNormal, string(seedv1.ReasonPlaced), "Place", "placed on %s", strings.Join(pods, ", "))
	}
	damaged := damagedReplicas(v.replicas)
	if want := int(av.Spec.Replicas); len(v.desired) < want {
		setCondition(&st.Conditions, seedv1.ConditionDegraded, true, seedv1.ReasonTooFewPods,
			fmt.Sprintf("spec.replicas is %d but SeedNode %s can give it only %d pods: scale the SeedNode or lower spec.replicas", want, v.sn.Name, len(v.desired)), gen)
	} else if len(damaged) > 0 {
		setCondition(&st.Conditions, seedv1.ConditionDegraded, true, seedv1.ReasonReplicaDamaged,
			"rebuilding damaged replicas from the others: "+strings.Join(damaged, "; "), gen)
	} else {
		setCondition(&st.Conditions, seedv1.ConditionDegraded, false, seedv1.ReasonReconciled, "placement matches spec.replicas", gen)
	}
	for _, d := range newlyDamaged(av.Status.Placement, v.replicas) {
		r.Recorder.Eventf(av, v.sn, corev1.EventTypeWarning, string(seedv1.ReasonReplicaDamaged), "Repair",
			"%s found its copy of the vault damaged and is rebuilding it from the other replicas: %s", d.Pod, d.Damage)
	}
	ready, reason, msg := readiness(v)
	st.ReadyReplicas = int32(ready)
	setCondition(&st.Conditions, seedv1.ConditionReady, v.ready, reason, msg, gen)
	st.SeedAddrs, st.ReadTicket = seedAddrs(av.Spec.NamespaceID, v)
	return r.writeStatus(ctx, av, st)
}

// damagedReplicas lists "pod: damage" for each damaged replica.
func damagedReplicas(replicas []seedv1.ReplicaStatus) []string {
	var out []string
	for _, rs := range replicas {
		if rs.Damage != "" {
			out = append(out, rs.Pod+": "+rs.Damage)
		}
	}
	return out
}

// newlyDamaged returns the replicas damaged now that were not in before.
func newlyDamaged(before, now []seedv1.ReplicaStatus) []seedv1.ReplicaStatus {
	var out []seedv1.ReplicaStatus
	for _, rs := range now {
		if rs.Damage == "" {
			continue
		}
		i := slices.IndexFunc(before, func(b seedv1.ReplicaStatus) bool { return b.Pod == rs.Pod })
		if i < 0 || before[i].Damage == "" {
			out = append(out, rs)
		}
	}
	return out
}

// readiness summarises the replicas for the Ready condition.
func readiness(v *vaultView) (ready int, reason seedv1.ConditionReason, msg string) {
	var waiting []string
	leaving := 0
	for _, rs := range v.replicas {
		switch {
		case rs.Role == seedv1.ReplicaActive:
			ready++
		case rs.Role == seedv1.ReplicaLeaving:
			leaving++
		default:
			waiting = append(waiting, rs.Pod+": "+rs.Message)
		}
	}
	switch {
	case v.ready:
		return ready, seedv1.ReasonInSync, fmt.Sprintf("%d replicas hosted and in sync", ready)
	case leaving > 0:
		return ready, seedv1.ReasonMoving, fmt.Sprintf("moving: %d replicas kept until the new ones have synced; %s", leaving, strings.Join(waiting, "; "))
	}
	return ready, seedv1.ReasonSyncing, strings.Join(waiting, "; ")
}

// seedAddrs lists the placed pods' addresses and a read ticket with them.
func seedAddrs(nsID string, v *vaultView) ([]string, string) {
	var addrs []string
	var infos []peer.AddrInfo
	for _, o := range v.desired {
		name := podName(v.sn, o)
		var pod []string
		if v.fleet != nil && v.fleet.Pods[o] != nil && v.fleet.Pods[o].Status != nil {
			pod = preferredAddrs(v.fleet.Pods[o].Status.Addrs)
		} else {
			for _, p := range v.sn.Status.Pods {
				if p.Name == name {
					pod = p.Addrs
				}
			}
		}
		for _, a := range pod {
			m, err := ma.NewMultiaddr(a)
			if err != nil {
				continue
			}
			info, err := peer.AddrInfoFromP2pAddr(m)
			if err != nil {
				continue
			}
			addrs = append(addrs, a)
			infos = append(infos, *info)
		}
	}
	ns, err := vault.ParseNamespaceID(nsID)
	if err != nil || len(infos) == 0 {
		return addrs, ""
	}
	t, err := ticket.NewDocTicket(ns, infos)
	if err != nil {
		return addrs, ""
	}
	return addrs, t.String()
}

// writeStatus writes st as av's status (patchStatus).
func (r *AgentVaultReconciler) writeStatus(ctx context.Context, av *seedv1.AgentVault, st seedv1.AgentVaultStatus) error {
	return patchStatus(ctx, r.Client, av, func(av *seedv1.AgentVault) { av.Status = st })
}
