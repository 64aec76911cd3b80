/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/seednode/admin"
)

// Field index: AgentVaults by the SeedNode that hosts them.
const indexSeedNodeRef = "spec.seedNodeRef.name"

// Poll intervals: how often a SeedNode's pods are read when all is well, and
// while replicas move or pods are not ready.
const (
	DefaultPollInterval = 15 * time.Second
	busyPollInterval    = 3 * time.Second
)

// SeedNodeReconciler turns a SeedNode into a StatefulSet of seed pods and
// everything around it, reads the pods' admin API, and publishes to each pod
// the vaults it hosts.
type SeedNodeReconciler struct {
	client.Client
	Recorder events.EventRecorder
	// SeedImage runs seed pods whose SeedNode names no image.
	SeedImage string
	// Pods talks to the pods' admin API (NewPodClient by default).
	Pods PodClient
	// Clock is injectable for tests.
	Clock clock.PassiveClock
	// PollInterval between reads of healthy pods (DefaultPollInterval).
	PollInterval time.Duration

	fleets   *fleetCache
	handoffs handoffs
}

// seedState is what one reconcile of a SeedNode gathers, step by step.
type seedState struct {
	sn       *seedv1.SeedNode
	token    string
	peerIDs  map[int]string
	services map[int]*corev1.Service
	pods     map[int]*corev1.Pod
	fleet    *fleetView
	plan     hostingPlan
	replicas int32 // StatefulSet replicas: spec.replicas, or more while leaving replicas drain
	// fleetPods is how many members a public fleet's pods are told: spec.replicas,
	// or more while the last ones hand their self-service vaults off
	// (seednode_handoff.go); handoff says so for the status.
	fleetPods int
	handoff   string
	// shrink is the hand-off planHandoff found, judged by judgeHandoff.
	shrink *shrink
	// applying says which pods have not applied the fleet's membership
	// yet (Progressing, ApplyingMembers), when no hand-off runs.
	applying string
	// published is what each pod was last told (its ConfigMap); every
	// ordinal in it keeps getting its list rewritten, so a pod past the
	// StatefulSet's end is told to drop what it no longer hosts.
	published map[int]map[string]bool
	busy      bool
	degraded  error
}

// Reconcile brings one SeedNode's children and status in line with its spec.
func (r *SeedNodeReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	sn := &seedv1.SeedNode{}
	if err := r.Get(ctx, req.NamespacedName, sn); err != nil {
		if apierrors.IsNotFound(err) {
			r.fleets.forget(req.NamespacedName)
			r.handoffs.forget(req.NamespacedName)
			return ctrl.Result{}, nil // children go with their owner references
		}
		return ctrl.Result{}, err
	}
	if !sn.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	st := &seedState{sn: sn}
	steps := []func(context.Context, *seedState) error{
		r.ensureAdminToken,
		r.ensureFleetKey,
		r.readFleet,
		r.planPlacement,
		r.planHandoff,
		r.ensureIdentities,
		r.judgeHandoff,
		r.ensureServices,
		r.ensurePodConfigs,
		r.ensureStatefulSet,
		r.ensurePDB,
		r.pushPlacement,
		r.pushMembers,
	}
	for _, step := range steps {
		if err := step(ctx, st); err != nil {
			var invalid *invalidSpecError
			if errors.As(err, &invalid) {
				st.degraded = err
				break
			}
			r.Recorder.Eventf(sn, nil, corev1.EventTypeWarning, string(seedv1.ReasonApplyFailed), "Reconcile", "%v", err)
			_ = r.updateStatus(ctx, st, err)
			return ctrl.Result{}, err
		}
	}
	if err := r.updateStatus(ctx, st, st.degraded); err != nil {
		return ctrl.Result{}, err
	}
	if st.degraded != nil {
		return ctrl.Result{}, nil // a spec change triggers the next attempt
	}
	switch {
	case st.busy:
		return ctrl.Result{RequeueAfter: min(busyPollInterval, r.pollInterval())}, nil
	case len(st.pods) > 0:
		return ctrl.Result{RequeueAfter: r.pollInterval()}, nil
	}
	return ctrl.Result{}, nil
}

func (r *SeedNodeReconciler) pollInterval() time.Duration {
	if r.PollInterval > 0 {
		return r.PollInterval
	}
	return DefaultPollInterval
}

// invalidSpecError is a spec the API server accepted but that cannot be
// carried out; the SeedNode gets Degraded=True with reason InvalidSpec.
type invalidSpecError struct{ err error }

func (e *invalidSpecError) Error() string { return e.err.Error() }
func (e *invalidSpecError) Unwrap() error { return e.err }

// readFleet lists the pods and reads each running one's admin API, in
// parallel, and shares the result with the AgentVault reconciler.
func (r *SeedNodeReconciler) readFleet(ctx context.Context, st *seedState) error {
	list := &corev1.PodList{}
	if err := r.List(ctx, list, client.InNamespace(st.sn.Namespace), client.MatchingLabels(selectorLabels(st.sn))); err != nil {
		return fmt.Errorf("listing pods: %w", err)
	}
	st.pods = map[int]*corev1.Pod{}
	for i := range list.Items {
		if o := ordinalOf(st.sn, list.Items[i].Name); o >= 0 {
			st.pods[o] = &list.Items[i]
		}
	}
	st.fleet = readPods(ctx, r.Pods, st.sn, st.pods, st.token, r.Clock.Now())
	r.fleets.put(client.ObjectKeyFromObject(st.sn), st.fleet)
	return nil
}

// planPlacement computes where every AgentVault of this SeedNode lives now,
// and how many pods the StatefulSet must keep while replicas move.
func (r *SeedNodeReconciler) planPlacement(ctx context.Context, st *seedState) error {
	avs := &seedv1.AgentVaultList{}
	if err := r.List(ctx, avs, client.InNamespace(st.sn.Namespace), client.MatchingFields{indexSeedNodeRef: st.sn.Name}); err != nil {
		return fmt.Errorf("listing AgentVaults: %w", err)
	}
	published, err := r.fleets.published(ctx, r.Client, st.sn)
	if err != nil {
		return err
	}
	st.published = published
	desired := place(avs.Items, int(st.sn.Spec.Replicas), int(st.sn.Spec.Hosting.MaxVaultsPerPod))
	st.plan = planHosting(desired, published, st.fleet)
	for i := range avs.Items {
		av := &avs.Items[i]
		if h := st.plan[av.Spec.NamespaceID]; h != nil && av.DeletionTimestamp.IsZero() && h.Options == (admin.VaultOptions{}) {
			h.Options = vaultOptions(av)
		}
	}
	st.replicas = st.sn.Spec.Replicas
	for _, h := range st.plan {
		if len(h.Leaving) > 0 || !h.Synced {
			st.busy = true
		}
		for _, o := range h.Leaving {
			st.replicas = max(st.replicas, int32(o)+1)
		}
	}
	return nil
}

// pushPlacement tells every readable pod what it hosts, through its admin
// API, when that differs from what it runs with: pods learn a placement
// within seconds, without waiting for the kubelet to refresh the ConfigMap.
//
// The fleet view is shared with the AgentVault reconciler, which reads it
// concurrently: a pushed placement goes into copies, published as a new
// view, never into the published podViews.
func (r *SeedNodeReconciler) pushPlacement(ctx context.Context, st *seedState) error {
	log := logf.FromContext(ctx)
	pushed := map[int]*admin.HostedVaults{}
	defer func() {
		if len(pushed) == 0 {
			return
		}
		next := &fleetView{At: st.fleet.At, Pods: maps.Clone(st.fleet.Pods)}
		for o, h := range pushed {
			cp := *next.Pods[o]
			cp.Hosted = h
			next.Pods[o] = &cp
		}
		st.fleet = next
		r.fleets.put(client.ObjectKeyFromObject(st.sn), next)
	}()
	for o, p := range st.fleet.Pods {
		if p.Status == nil {
			continue
		}
		want, _ := podHosting(st.plan, o, st.addrsOf)
		if sameHosting(p.Hosted, want) {
			continue
		}
		url := adminURL(st.pods[o], st.sn)
		if err := r.Pods.SetHostedVaults(ctx, url, st.token, want); err != nil {
			log.Info("pod did not take its placement; retried on the next poll", "pod", p.Name, "err", err)
			st.busy = true
			continue
		}
		pushed[o] = &want
		log.V(1).Info("placement pushed", "pod", p.Name, "vaults", len(want.Vaults))
	}
	return nil
}

// SetupWithManager registers the reconciler, its watches and the field
// index AgentVault lookups use.
func (r *SeedNodeReconciler) SetupWithManager(mgr ctrl.Manager, fleets *fleetCache) error {
	r.fleets = fleets
	if r.Pods == nil {
		r.Pods = NewPodClient()
	}
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.Recorder == nil {
		r.Recorder = mgr.GetEventRecorder("seednode-controller")
	}
	bySeedNode := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		name := ""
		switch obj := o.(type) {
		case *seedv1.AgentVault:
			name = obj.Spec.SeedNodeRef.Name
		default:
			name = o.GetLabels()[LabelSeedNode]
		}
		if name == "" {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
	})
	return ctrl.NewControllerManagedBy(mgr).
		For(&seedv1.SeedNode{}).
		Owns(&appsv1.StatefulSet{}).
		Owns(&corev1.Service{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&corev1.Secret{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Watches(&seedv1.AgentVault{}, bySeedNode).
		Watches(&corev1.Pod{}, bySeedNode).
		Named("seednode").
		Complete(r)
}

// configured is how many ordinals get a ConfigMap: every pod the
// StatefulSet runs, and any pod beyond it that still exists or was told to
// host something.
func (st *seedState) configured() int {
	n := int(st.replicas)
	for o := range st.published {
		n = max(n, o+1)
	}
	for o := range st.pods {
		n = max(n, o+1)
	}
	return n
}
