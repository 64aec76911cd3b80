/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package controllers_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/controllers"
	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/config"
)

// handoffIPBase is this file's loopback range: pod o is 127.N.5.(10+o)
// (N: loopbackNet).
const handoffIPBase = 5

// fleetPod is a pod's admin API as the operator reads it: the seeds' own
// admin server (admin.New) over a source that answers from the seed.yaml
// the operator wrote for the pod, read when the pod "starts", and holds as
// many self-service vaults as the test says. The seeds' own count is tested
// with the seeds; this test is about when the operator shrinks.
type fleetPod struct {
	mu      sync.Mutex
	fleet   config.Fleet
	held    int
	silent  bool // GET /v1/fleet fails, as while the seed restarts
	applied admin.HostedVaults
}

func (p *fleetPod) Status(context.Context) (admin.Status, error) {
	return admin.Status{Ready: true}, nil
}
func (p *fleetPod) Ready(context.Context) error { return nil }
func (p *fleetPod) HostedVaults() admin.HostedVaults {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.applied
}
func (p *fleetPod) SetHostedVaults(_ context.Context, hv admin.HostedVaults) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.applied = hv
	return nil
}
func (p *fleetPod) FleetStatus(context.Context) (admin.FleetStatus, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.silent || p.fleet.Name == "" {
		return admin.FleetStatus{}, errors.New("not serving its fleet")
	}
	return admin.FleetStatus{Name: p.fleet.Name, Self: p.fleet.Self, Pods: len(p.fleet.Members), Leaving: p.fleet.Leaving,
		Replicas: p.fleet.Replicas, Members: membersVersion(p.fleet), HostedVaults: p.held}, nil
}

// membersVersion is the version of f's membership, as a seed reports it.
func membersVersion(f config.Fleet) string {
	m, err := f.Membership()
	if err != nil {
		return "unparsable"
	}
	return m.Version()
}
func (p *fleetPod) MintInvite(context.Context, admin.InviteRequest) (admin.Invite, error) {
	return admin.Invite{}, admin.ErrNoInvites
}

func (p *fleetPod) set(held int, silent bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held, p.silent = held, silent
}

// seedYAMLFleet is the fleet section of pod o's seed.yaml.
func seedYAMLFleet(t *testing.T, ns, name string, o int) (config.Fleet, error) {
	cm := &corev1.ConfigMap{}
	if err := get(t, cm, ns, fmt.Sprintf("%s-%d-config", name, o)); err != nil {
		return config.Fleet{}, err
	}
	cfg, err := config.Parse([]byte(cm.Data["seed.yaml"]))
	return cfg.Fleet, err
}

// TestPublicFleetShrinkWaitsForHandoff: scaling a public fleet from 3 to 2
// keeps the StatefulSet at 3 and tells every pod the 3 members with
// leaving 1, as long as pod 2 holds self-service vaults, does not answer,
// or has answered "none" for less than the seeds' figures may be cached;
// then it shrinks to 2 and the members go back to the 2 pods.
func TestPublicFleetShrinkWaitsForHandoff(t *testing.T) {
	ns := newNamespace(t)
	const name = "shrink"
	sn := seedNode(ns, name, 3)
	sn.Spec.Ports = seedv1.PortsSpec{P2P: testP2PPort, Admin: testAdminPort}
	sn.Spec.Expose.Announce = []string{fmt.Sprintf("/ip4/127.%d.%d.1{ordinal}/tcp/%d", loopbackNet, handoffIPBase, testP2PPort)}
	sn.Spec.Hosting.SelfService = &seedv1.SelfServiceSpec{Admission: seedv1.AdmissionOpen, Replicas: ptr.To[int32](2)}
	mustCreate(t, sn)

	sts := &appsv1.StatefulSet{}
	eventually(t, 30*time.Second, "StatefulSet of 3 pods telling 3 members", func() error {
		if err := get(t, sts, ns, name); err != nil {
			return err
		}
		if sts.Annotations[controllers.AnnotationFleetPods] != "3" {
			return fmt.Errorf("annotations %v", sts.Annotations)
		}
		return nil
	})
	token := &corev1.Secret{}
	if err := get(t, token, ns, name+"-admin-token"); err != nil {
		t.Fatal(err)
	}

	// The pods: pod 2 holds 3 self-service vaults, the others 1.
	pods := make([]*fleetPod, 3)
	for o := range 3 {
		pods[o] = &fleetPod{held: 1}
		ip := fmt.Sprintf("127.%d.%d.1%d", loopbackNet, handoffIPBase, o)
		srv, err := admin.New(fmt.Sprintf("%s:%d", ip, testAdminPort), pods[o], nil,
			admin.WithToken(strings.TrimSpace(string(token.Data["token"]))), admin.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = srv.Serve() }()
		t.Cleanup(func() { _ = srv.Close() })
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s-%d", name, o), Labels: map[string]string{
			"seedfleet.io/seednode": name, "app.kubernetes.io/component": "seed"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "seed", Image: "seedfleet:test"}}}}
		mustCreate(t, p)
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
		if err := k8s.Status().Update(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	pods[2].set(3, false)
	// apply plays the seeds applying their seed.yaml of now, as they do
	// when the kubelet updates the file: no pod restarts.
	apply := func(n int) {
		t.Helper()
		for o, fp := range pods[:n] {
			f, err := seedYAMLFleet(t, ns, name, o)
			if err != nil {
				t.Fatal(err)
			}
			fp.mu.Lock()
			fp.fleet = f
			fp.mu.Unlock()
		}
	}
	apply(3)
	hash := sts.Spec.Template.Annotations[controllers.AnnotationConfigHash]
	eventually(t, 30*time.Second, "pod 2's vaults in the status", func() error {
		if err := get(t, sn, ns, name); err != nil {
			return err
		}
		if len(sn.Status.Pods) != 3 || sn.Status.Pods[2].SelfServiceVaults != 3 {
			return fmt.Errorf("pods %+v", sn.Status.Pods)
		}
		return nil
	})

	// A watcher fails the test if the StatefulSet shrinks before pod 2
	// reported no vault for the settle time.
	var (
		mu         sync.Mutex
		emptySince time.Time // when pod 2 last started answering 0 (zero: it does not)
		shrunkAt   time.Time
		early      string
	)
	observe := func(s *appsv1.StatefulSet) {
		mu.Lock()
		defer mu.Unlock()
		if *s.Spec.Replicas >= 3 || !shrunkAt.IsZero() {
			return
		}
		shrunkAt = time.Now()
		if emptySince.IsZero() || shrunkAt.Sub(emptySince) < 5*time.Second {
			early = fmt.Sprintf("shrank to %d while pod 2 held vaults or said so less than 5 s before (since %v)", *s.Spec.Replicas, emptySince)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			s := &appsv1.StatefulSet{}
			if err := get(t, s, ns, name); err == nil {
				observe(s)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	defer func() { cancel(); wg.Wait() }()

	patchReplicas(t, ns, name, 2)
	eventually(t, 30*time.Second, "3 members with leaving 1 on every pod", func() error {
		for o := range 3 {
			f, err := seedYAMLFleet(t, ns, name, o)
			if err != nil {
				return err
			}
			if f.Self != o || len(f.Members) != 3 || f.Leaving != 1 {
				return fmt.Errorf("pod %d: self %d, %d members, leaving %d", o, f.Self, len(f.Members), f.Leaving)
			}
		}
		// The pods' configurations are written before the StatefulSet:
		// its annotations follow within a reconcile.
		if err := get(t, sts, ns, name); err != nil {
			return err
		}
		if sts.Annotations[controllers.AnnotationFleetLeaving] != "1" {
			return fmt.Errorf("StatefulSet annotations %v", sts.Annotations)
		}
		return nil
	})
	if *sts.Spec.Replicas != 3 {
		t.Fatalf("StatefulSet during the hand-off: %d replicas, annotations %v", *sts.Spec.Replicas, sts.Annotations)
	}
	if got := sts.Spec.Template.Annotations[controllers.AnnotationConfigHash]; got != hash {
		t.Fatalf("the pods' config hash moved from %s to %s: scaling would restart them", hash, got)
	}
	eventually(t, 30*time.Second, "Progressing/HandingOff until the pods apply the membership", func() error {
		if err := get(t, sn, ns, name); err != nil {
			return err
		}
		if err := wantCondition(sn.Status.Conditions, seedv1.ConditionProgressing, metav1.ConditionTrue, seedv1.ReasonHandingOff); err != nil {
			return err
		}
		if msg := condition(sn.Status.Conditions, seedv1.ConditionProgressing).Message; !strings.Contains(msg, "to apply the membership with the leaving pods") {
			return fmt.Errorf("message %q", msg)
		}
		return nil
	})
	apply(3)
	eventually(t, 30*time.Second, "Progressing/HandingOff", func() error {
		if err := get(t, sn, ns, name); err != nil {
			return err
		}
		if err := wantCondition(sn.Status.Conditions, seedv1.ConditionProgressing, metav1.ConditionTrue, seedv1.ReasonHandingOff); err != nil {
			return err
		}
		if msg := condition(sn.Status.Conditions, seedv1.ConditionProgressing).Message; !strings.Contains(msg, "handing off 3 self-service vaults from pods shrink-{2}") {
			return fmt.Errorf("message %q", msg)
		}
		return nil
	})

	// Pod 2 still holds vaults, then does not answer: the StatefulSet
	// stays at 3 for longer than the settle time.
	time.Sleep(3 * time.Second)
	pods[2].set(0, true)
	time.Sleep(8 * time.Second)
	mu.Lock()
	if !shrunkAt.IsZero() {
		t.Fatalf("the StatefulSet shrank while pod 2 held vaults or did not answer: %s", early)
	}
	emptySince = time.Now()
	mu.Unlock()
	pods[2].set(0, false)

	eventually(t, 30*time.Second, "the StatefulSet at 2 pods telling 2 members", func() error {
		if err := get(t, sts, ns, name); err != nil {
			return err
		}
		observe(sts)
		if *sts.Spec.Replicas != 2 || sts.Annotations[controllers.AnnotationFleetPods] != "2" || sts.Annotations[controllers.AnnotationFleetLeaving] != "0" {
			return fmt.Errorf("%d replicas, annotations %v", *sts.Spec.Replicas, sts.Annotations)
		}
		return nil
	})
	mu.Lock()
	if early != "" {
		t.Fatal(early)
	}
	t.Logf("shrank %s after pod 2 answered it holds no vault", shrunkAt.Sub(emptySince).Round(time.Millisecond))
	mu.Unlock()
	var members [][]string
	eventually(t, 30*time.Second, "2 members with leaving 0 on the remaining pods", func() error {
		members = nil
		for o := range 2 {
			f, err := seedYAMLFleet(t, ns, name, o)
			if err != nil {
				return err
			}
			if f.Self != o || len(f.Members) != 2 || f.Leaving != 0 {
				return fmt.Errorf("pod %d: self %d, %d members, leaving %d", o, f.Self, len(f.Members), f.Leaving)
			}
			members = append(members, f.Members)
		}
		return nil
	})
	if !slices.Equal(members[0], members[1]) {
		t.Fatalf("the pods disagree on the members: %v", members)
	}
	eventually(t, 30*time.Second, "Progressing/ApplyingMembers until the 2 pods apply their members", func() error {
		if err := get(t, sn, ns, name); err != nil {
			return err
		}
		if err := wantCondition(sn.Status.Conditions, seedv1.ConditionProgressing, metav1.ConditionTrue, seedv1.ReasonApplyingMembers); err != nil {
			return err
		}
		if msg := condition(sn.Status.Conditions, seedv1.ConditionProgressing).Message; !strings.Contains(msg, "pods shrink-0, shrink-1 have not applied") {
			return fmt.Errorf("message %q", msg)
		}
		return nil
	})
	apply(2)
	eventually(t, 30*time.Second, "Progressing False", func() error {
		if err := get(t, sn, ns, name); err != nil {
			return err
		}
		return wantCondition(sn.Status.Conditions, seedv1.ConditionProgressing, metav1.ConditionFalse, seedv1.ReasonReconciled)
	})
}
