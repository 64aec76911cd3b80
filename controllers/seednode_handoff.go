/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
)

// Shrinking a public fleet from N to M pods hands the self-service vaults
// of the last N-M pods over before they go. The StatefulSet keeps its N
// pods and every pod's fleet section lists all N members with
// leaving: N-M, so every seed places by the first M and the leaving ones
// hand each subject's vaults to its new home pods (the seeds' hand-off).
// The StatefulSet shrinks to M, and the members go back to the M pods,
// only once every pod reports that it places by that membership (the
// seeds apply it without a restart) and every leaving pod has
// answered GET /v1/fleet with no self-service vault held, twice, at least
// handoffSettle apart (a seed reuses its counted figures for up to 5 s).
// A pod that does not answer is not done.
//
// What the pods were told is kept on the StatefulSet (AnnotationFleetPods
// and AnnotationFleetLeaving), so an operator restart resumes a hand-off
// instead of cutting it short.

// Annotations on the StatefulSet: how many members its pods' fleet sections
// list, and how many of the last of them are leaving.
const (
	AnnotationFleetPods    = "seedfleet.io/fleet-pods"
	AnnotationFleetLeaving = "seedfleet.io/fleet-leaving"
)

// handoffSettle is how long the leaving pods must keep reporting nothing
// held before the StatefulSet shrinks: longer than a seed reuses its counted
// fleet figures (fleetFiguresTTL in the seed, 5 s).
const handoffSettle = 6 * time.Second

// handoffs remembers, per SeedNode, since when its leaving pods report
// nothing held. Losing it (an operator restart) only restarts the wait.
type handoffs struct {
	mu    sync.Mutex
	since map[types.NamespacedName]time.Time
}

// done records that the leaving pods of key report nothing held at now, and
// reports whether they have done so for handoffSettle.
func (h *handoffs) done(key types.NamespacedName, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.since == nil {
		h.since = map[types.NamespacedName]time.Time{}
	}
	since, ok := h.since[key]
	if !ok {
		h.since[key] = now
		return false
	}
	return now.Sub(since) >= handoffSettle
}

func (h *handoffs) forget(key types.NamespacedName) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.since, key)
}

// planHandoff reads what the public fleet's pods were told (the
// StatefulSet's annotations) and, while a shrink's hand-off may still run,
// tells them the same for now: st.fleetPods members, with the StatefulSet
// at least that large. It runs after planPlacement, which sized the
// StatefulSet for AgentVault replicas, and before ensureIdentities, so
// that every member's peer ID is known when judgeHandoff decides.
func (r *SeedNodeReconciler) planHandoff(ctx context.Context, st *seedState) error {
	m := int(st.sn.WithDefaults().Spec.Replicas)
	st.fleetPods = m
	key := client.ObjectKeyFromObject(st.sn)
	if st.sn.Spec.Hosting.SelfService == nil {
		r.handoffs.forget(key)
		return nil
	}
	sts := &appsv1.StatefulSet{}
	if err := r.Get(ctx, key, sts); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading StatefulSet %s: %w", key.Name, err)
	}
	// The annotations may have been edited: a hand-off never keeps more
	// pods than the StatefulSet has.
	told, _ := strconv.Atoi(sts.Annotations[AnnotationFleetPods])
	leaving, _ := strconv.Atoi(sts.Annotations[AnnotationFleetLeaving])
	if sts.Spec.Replicas != nil {
		told = min(told, int(*sts.Spec.Replicas))
	}
	if told <= m {
		r.handoffs.forget(key)
		return nil
	}
	st.shrink = &shrink{told: told, leaving: leaving, placed: st.replicas}
	st.fleetPods = told
	st.replicas = max(st.replicas, int32(told))
	return nil
}

// shrink is a hand-off that may still run: how many members the pods were
// told, how many of them leave, and the StatefulSet's size without it.
type shrink struct {
	told, leaving int
	placed        int32
}

// judgeHandoff decides whether the shrink planHandoff found is over: the
// pods go back to spec.replicas members only once every pod places by the
// membership with the leaving pods and those report nothing held, for
// handoffSettle. Without a shrink, it notes pods still applying the
// fleet's membership.
func (r *SeedNodeReconciler) judgeHandoff(ctx context.Context, st *seedState) error {
	if st.sn.Spec.Hosting.SelfService == nil {
		return nil
	}
	sh := st.shrink
	if sh == nil {
		st.noteMembersApplying(st.fleetPods, 0)
		return nil
	}
	m := int(st.sn.WithDefaults().Spec.Replicas)
	key := client.ObjectKeyFromObject(st.sn)
	log := logf.FromContext(ctx)
	keep := func(msg string) {
		st.busy = true
		st.handoff = msg
	}
	pending, why := st.handoffPending(sh.told, sh.leaving)
	if pending > 0 || why != "" {
		r.handoffs.forget(key)
		keep(handoffMessage(st.sn.Name, m, sh.told, pending, why))
		// Logged when it changes, not at every poll.
		if c := meta.FindStatusCondition(st.sn.Status.Conditions, string(seedv1.ConditionProgressing)); c == nil || c.Message != st.handoff {
			log.Info("public fleet shrinking: the leaving pods still hand off", "from", sh.told, "to", m, "state", st.handoff)
		}
		return nil
	}
	if !r.handoffs.done(key, r.Clock.Now()) {
		keep(handoffMessage(st.sn.Name, m, sh.told, 0, fmt.Sprintf("the leaving pods report none; confirming after %s", handoffSettle)))
		return nil
	}
	r.handoffs.forget(key)
	st.fleetPods, st.replicas = m, sh.placed
	log.Info("public fleet shrinking: the leaving pods handed off every self-service vault", "from", sh.told, "to", m)
	return nil
}

// noteMembersApplying makes the SeedNode Progressing (ApplyingMembers)
// while a pod that answers reports a membership other than the one it is
// told (told members, leaving of them leaving): the push (pushMembers) has
// not reached it yet, nor the kubelet's update of its configuration file.
// A pod that does not answer is Ready's business, not this.
func (st *seedState) noteMembersApplying(told, leaving int) {
	if st.sn.Spec.Hosting.SelfService == nil || told < 1 {
		return
	}
	if stale := st.membersNotApplied(told, leaving, false); len(stale) > 0 {
		st.busy = true
		st.applying = fmt.Sprintf("pods %s have not applied the fleet's membership of %d pods yet (the operator gives it to them through their admin API; "+
			"a pod it cannot reach applies it when the kubelet updates its configuration file, usually within a minute)", someNames(stale), told)
	}
}

// handoffPending counts the self-service vaults the leaving pods [m, told)
// still hold, or says why the hand-off cannot be judged yet: a pod does not
// place by the membership with leaving set yet, or did not answer.
func (st *seedState) handoffPending(told, leaving int) (int, string) {
	m := int(st.sn.WithDefaults().Spec.Replicas)
	if leaving != told-m {
		return 0, fmt.Sprintf("the pods are being told that %d are leaving", told-m)
	}
	if stale := st.membersNotApplied(told, leaving, true); len(stale) > 0 {
		return 0, "waiting for pods " + someNames(stale) + " to apply the membership with the leaving pods"
	}
	pending := 0
	var silent []string
	for o := m; o < told; o++ {
		f := st.podFleet(o)
		if f == nil || f.Pods != told {
			silent = append(silent, podName(st.sn, o))
			continue
		}
		pending += min(max(f.HostedVaults, 0), 1<<40) // pods are not trusted to keep it sane
	}
	if len(silent) > 0 {
		return pending, "pods " + someNames(silent) + " did not report their fleet figures"
	}
	return pending, ""
}

// handoffMessage is the Progressing condition's message during a hand-off.
func handoffMessage(name string, m, told, pending int, why string) string {
	leaving := fmt.Sprintf("%s-{%d..%d}", name, m, told-1)
	if told-m == 1 {
		leaving = fmt.Sprintf("%s-{%d}", name, m)
	}
	msg := fmt.Sprintf("scaling the public fleet from %d to %d pods: handing off %d self-service vaults from pods %s",
		told, m, pending, leaving)
	if why != "" {
		msg += "; " + why
	}
	return msg
}

// someNames lists the first few of names, for a condition message that
// stays short on a large fleet.
func someNames(names []string) string {
	const shown = 5
	if len(names) <= shown {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:shown], ", "), len(names)-shown)
}
