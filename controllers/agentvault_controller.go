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
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
)

// AgentVaultReconciler places an AgentVault on its SeedNode's pods (the
// SeedNode reconciler publishes the placement to the pods), reports each
// replica's state as the pods report it, and on deletion waits until no pod
// hosts the vault any more.
type AgentVaultReconciler struct {
	client.Client
	Recorder events.EventRecorder
	// Pods reads pods' hosted lists while an AgentVault is deleted.
	Pods PodClient
	// PollInterval between status refreshes of a vault in sync.
	PollInterval time.Duration

	fleets *fleetCache
}

const notReadyPoll = 5 * time.Second

// Reconcile handles one AgentVault.
func (r *AgentVaultReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	av := &seedv1.AgentVault{}
	if err := r.Get(ctx, req.NamespacedName, av); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	sn := &seedv1.SeedNode{}
	err := r.Get(ctx, types.NamespacedName{Namespace: av.Namespace, Name: av.Spec.SeedNodeRef.Name}, sn)
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	if apierrors.IsNotFound(err) {
		sn = nil
	}
	if !av.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, av, sn)
	}
	if controllerutil.AddFinalizer(av, FinalizerAgentVault) {
		if err := r.Update(ctx, av); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding finalizer: %w", err)
		}
	}
	view, err := r.observe(ctx, av, sn)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.updateStatus(ctx, av, view); err != nil {
		return ctrl.Result{}, err
	}
	switch {
	case sn == nil:
		return ctrl.Result{}, nil // the SeedNode's creation triggers the next attempt
	case !view.ready:
		return ctrl.Result{RequeueAfter: min(notReadyPoll, r.pollInterval())}, nil
	case view.fleet != nil && len(view.fleet.Pods) > 0:
		return ctrl.Result{RequeueAfter: 2 * r.pollInterval()}, nil
	}
	return ctrl.Result{}, nil
}

func (r *AgentVaultReconciler) pollInterval() time.Duration {
	if r.PollInterval > 0 {
		return r.PollInterval
	}
	return DefaultPollInterval
}

// vaultView is what one reconcile learned about an AgentVault's replicas.
type vaultView struct {
	sn        *seedv1.SeedNode
	desired   []int
	published map[int]bool // pods whose ConfigMap lists the vault
	fleet     *fleetView
	replicas  []seedv1.ReplicaStatus
	ready     bool
}

// observe derives the vault's placement and replica states from the
// SeedNode, its pods' ConfigMaps and the pods' last reports.
func (r *AgentVaultReconciler) observe(ctx context.Context, av *seedv1.AgentVault, sn *seedv1.SeedNode) (*vaultView, error) {
	v := &vaultView{sn: sn, published: map[int]bool{}}
	if sn == nil {
		return v, nil
	}
	desired, err := r.desiredPods(ctx, av, sn)
	if err != nil {
		return nil, err
	}
	v.desired = desired
	published, err := r.fleets.published(ctx, r.Client, sn)
	if err != nil {
		return nil, err
	}
	ns := av.Spec.NamespaceID
	for o, vaults := range published {
		if vaults[ns] {
			v.published[o] = true
		}
	}
	v.fleet = r.fleets.get(client.ObjectKeyFromObject(sn))
	members := slices.Clone(desired)
	for o := range v.published {
		if !slices.Contains(members, o) {
			members = append(members, o)
		}
	}
	slices.Sort(members)
	reference := referenceFingerprint(ns, members, v.fleet)
	ready := 0
	for _, o := range members {
		rs := seedv1.ReplicaStatus{Pod: podName(sn, o), Role: seedv1.ReplicaJoining}
		for _, p := range sn.Status.Pods {
			if p.Name == rs.Pod {
				rs.PeerID = p.PeerID
			}
		}
		var pv *podView
		if v.fleet != nil {
			pv = v.fleet.Pods[o]
		}
		switch vs := pv.vault(ns); {
		case !v.published[o]:
			rs.Message = "waiting for the SeedNode to publish the placement"
		case pv == nil:
			rs.Message = "pod not running"
		case pv.Status == nil:
			rs.Message = "pod unreachable: " + firstLine(pv.Err)
		case vs == nil || !pv.hosts(ns):
			rs.Message = "pod has not taken the placement yet"
		default:
			rs.Hosted = true
			rs.Entries, rs.Bytes, rs.BlobsMissing = int64(vs.Entries), int64(vs.Bytes), int32(vs.BlobsMissing)
			rs.Synced = vs.Fingerprint == reference && vs.BlobsMissing == 0 && vs.Damage == nil
			switch {
			case vs.Damage != nil:
				rs.Damage = firstLine(fmt.Sprintf("%s: %s", vs.Damage.State, vs.Damage.Reason))
				rs.Message = "the pod found its copy damaged and is rebuilding it from the other replicas"
			case !rs.Synced:
				rs.Message = fmt.Sprintf("syncing: %d blobs missing", vs.BlobsMissing)
				if vs.Fingerprint != reference {
					rs.Message = "syncing entries from the other replicas"
				}
			}
		}
		switch {
		case !slices.Contains(desired, o):
			rs.Role = seedv1.ReplicaLeaving
			if rs.Message == "" {
				rs.Message = "kept until the new replicas have synced"
			}
		case rs.Synced:
			rs.Role = seedv1.ReplicaActive
			ready++
		}
		v.replicas = append(v.replicas, rs)
	}
	v.ready = ready == int(av.Spec.Replicas) && len(members) == len(desired)
	return v, nil
}

// desiredPods is where placement puts the vault. With a per-pod limit the
// placement depends on the other vaults, so it is computed over all of them
// exactly as the SeedNode reconciler does.
func (r *AgentVaultReconciler) desiredPods(ctx context.Context, av *seedv1.AgentVault, sn *seedv1.SeedNode) ([]int, error) {
	vaults := []seedv1.AgentVault{*av}
	if sn.Spec.Hosting.MaxVaultsPerPod > 0 {
		list := &seedv1.AgentVaultList{}
		if err := r.List(ctx, list, client.InNamespace(sn.Namespace), client.MatchingFields{indexSeedNodeRef: sn.Name}); err != nil {
			return nil, fmt.Errorf("listing AgentVaults: %w", err)
		}
		vaults = list.Items
	}
	return place(vaults, int(sn.Spec.Replicas), int(sn.Spec.Hosting.MaxVaultsPerPod))[av.Spec.NamespaceID], nil
}

// referenceFingerprint is the fingerprint the replicas should converge on:
// that of the readable holder with the most entries.
func referenceFingerprint(ns string, members []int, fleet *fleetView) string {
	best, entries := "", int64(-1)
	if fleet == nil {
		return best
	}
	for _, o := range members {
		if vs := fleet.Pods[o].vault(ns); vs != nil && fleet.Pods[o].hosts(ns) && vs.Damage == nil && int64(vs.Entries) > entries {
			best, entries = vs.Fingerprint, int64(vs.Entries)
		}
	}
	return best
}

// finalize drops the vault from its pods before the AgentVault goes: the
// SeedNode reconciler stops publishing it (the AgentVault is being deleted),
// each pod then drops the replica and its blobs; the finalizer comes off
// when no pod's ConfigMap lists the vault and no running pod hosts it.
func (r *AgentVaultReconciler) finalize(ctx context.Context, av *seedv1.AgentVault, sn *seedv1.SeedNode) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(av, FinalizerAgentVault) {
		return ctrl.Result{}, nil
	}
	if sn != nil {
		remaining, err := r.stillHosted(ctx, av, sn)
		if err != nil {
			return ctrl.Result{}, err
		}
		if len(remaining) > 0 {
			err := patchStatus(ctx, r.Client, av, func(av *seedv1.AgentVault) {
				setCondition(&av.Status.Conditions, seedv1.ConditionReady, false, seedv1.ReasonDeleting,
					"waiting for "+strings.Join(remaining, ", ")+" to drop the replica", av.Generation)
			})
			if err != nil && !apierrors.IsNotFound(err) {
				return ctrl.Result{}, err
			}
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		r.Recorder.Eventf(av, sn, corev1.EventTypeNormal, string(seedv1.ReasonReplicasDropped), "Delete", "no pod of SeedNode %s hosts vault %s any more", sn.Name, short(av.Spec.NamespaceID))
	}
	controllerutil.RemoveFinalizer(av, FinalizerAgentVault)
	if err := r.Update(ctx, av); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("removing finalizer: %w", err)
	}
	return ctrl.Result{}, nil
}

// stillHosted names the pods that still list or host the vault. Another
// live AgentVault of the same vault keeps it hosted on purpose: then nothing
// waits.
func (r *AgentVaultReconciler) stillHosted(ctx context.Context, av *seedv1.AgentVault, sn *seedv1.SeedNode) ([]string, error) {
	list := &seedv1.AgentVaultList{}
	if err := r.List(ctx, list, client.InNamespace(sn.Namespace), client.MatchingFields{indexSeedNodeRef: sn.Name}); err != nil {
		return nil, fmt.Errorf("listing AgentVaults: %w", err)
	}
	for _, other := range list.Items {
		if other.UID != av.UID && other.DeletionTimestamp.IsZero() && other.Spec.NamespaceID == av.Spec.NamespaceID {
			return nil, nil
		}
	}
	ns := av.Spec.NamespaceID
	var remaining []string
	published, err := r.fleets.published(ctx, r.Client, sn)
	if err != nil {
		return nil, err
	}
	for o, vaults := range published {
		if vaults[ns] {
			remaining = append(remaining, podName(sn, o)+" (its ConfigMap)")
		}
	}
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(sn.Namespace), client.MatchingLabels(selectorLabels(sn))); err != nil {
		return nil, err
	}
	token, err := adminToken(ctx, r.Client, sn)
	if err != nil {
		return nil, err
	}
	for i := range pods.Items {
		url := adminURL(&pods.Items[i], sn)
		if url == "" || !pods.Items[i].DeletionTimestamp.IsZero() {
			continue
		}
		hv, err := r.Pods.HostedVaults(ctx, url, token)
		if err != nil {
			continue // an unreachable pod drops the vault when it restarts: its ConfigMap no longer lists it
		}
		if slices.Contains(hv.Vaults, ns) {
			remaining = append(remaining, pods.Items[i].Name)
		}
	}
	return remaining, nil
}

func short(ns string) string {
	if len(ns) > 12 {
		return ns[:12]
	}
	return ns
}

// SetupWithManager registers the reconciler and the index it shares with
// the SeedNode reconciler.
func (r *AgentVaultReconciler) SetupWithManager(mgr ctrl.Manager, fleets *fleetCache) error {
	r.fleets = fleets
	if r.Pods == nil {
		r.Pods = NewPodClient()
	}
	if r.Recorder == nil {
		r.Recorder = mgr.GetEventRecorder("agentvault-controller")
	}
	// Placement changes (pod ConfigMaps) and SeedNode changes reach every
	// AgentVault of that SeedNode.
	byHostingSeedNode := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		name := o.GetName()
		if _, isSeedNode := o.(*seedv1.SeedNode); !isSeedNode {
			name = o.GetLabels()[LabelSeedNode]
		}
		if name == "" {
			return nil
		}
		list := &seedv1.AgentVaultList{}
		if err := r.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexSeedNodeRef: name}); err != nil {
			return nil
		}
		out := make([]reconcile.Request, len(list.Items))
		for i := range list.Items {
			out[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}
		}
		return out
	})
	return ctrl.NewControllerManagedBy(mgr).
		For(&seedv1.AgentVault{}).
		Watches(&seedv1.SeedNode{}, byHostingSeedNode).
		Watches(&corev1.ConfigMap{}, byHostingSeedNode).
		Named("agentvault").
		Complete(r)
}
