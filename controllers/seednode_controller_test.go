package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/seednode/config"
)

func TestSeedNodeCreatesItsChildren(t *testing.T) {
	ns := newNamespace(t)
	mustCreate(t, seedNode(ns, "seeds", 3))

	sts := &appsv1.StatefulSet{}
	eventually(t, 30*time.Second, "StatefulSet", func() error {
		if err := get(t, sts, ns, "seeds"); err != nil {
			return err
		}
		if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 3 {
			return fmt.Errorf("replicas %v", sts.Spec.Replicas)
		}
		return nil
	})
	if c := sts.Spec.Template.Spec.Containers[0]; c.Image != "seedfleet:test" || c.SecurityContext == nil ||
		c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Fatalf("seed container %s: image %q, security context %+v", c.Name, c.Image, c.SecurityContext)
	}
	if len(sts.OwnerReferences) != 1 || sts.OwnerReferences[0].Kind != "SeedNode" {
		t.Fatalf("StatefulSet owners %+v", sts.OwnerReferences)
	}

	peerIDs := map[string]string{}
	for o := range 3 {
		pod := fmt.Sprintf("seeds-%d", o)
		secret := &corev1.Secret{}
		if err := get(t, secret, ns, pod+"-identity"); err != nil {
			t.Fatalf("identity Secret of %s: %v", pod, err)
		}
		peerIDs[pod] = secret.Annotations["seedfleet.io/peer-id"]
		cm := &corev1.ConfigMap{}
		if err := get(t, cm, ns, pod+"-config"); err != nil {
			t.Fatalf("ConfigMap of %s: %v", pod, err)
		}
		cfg, err := config.Parse([]byte(cm.Data["seed.yaml"]))
		if err != nil {
			t.Fatalf("%s's seed.yaml does not parse: %v\n%s", pod, err, cm.Data["seed.yaml"])
		}
		if len(cfg.DHT.BootstrapPeers) != 2 {
			t.Fatalf("%s bootstraps from %v, want its 2 siblings", pod, cfg.DHT.BootstrapPeers)
		}
		if len(cfg.Announce) == 0 {
			t.Fatalf("%s announces nothing; its per-pod Service has a cluster IP", pod)
		}
		svc := &corev1.Service{}
		if err := get(t, svc, ns, pod); err != nil {
			t.Fatalf("Service of %s: %v", pod, err)
		}
		for _, p := range svc.Spec.Ports {
			if p.Port == 7401 {
				t.Fatalf("per-pod Service exposes the admin port: %+v", svc.Spec.Ports)
			}
		}
	}
	if err := get(t, &policyv1.PodDisruptionBudget{}, ns, "seeds"); err != nil {
		t.Fatalf("PodDisruptionBudget: %v", err)
	}

	// Status: every pod's peer ID is known before any pod runs.
	sn := &seedv1.SeedNode{}
	eventually(t, 30*time.Second, "status", func() error {
		if err := get(t, sn, ns, "seeds"); err != nil {
			return err
		}
		if len(sn.Status.Pods) != 3 || sn.Status.ObservedGeneration != sn.Generation {
			return fmt.Errorf("status %+v", sn.Status)
		}
		return wantCondition(sn.Status.Conditions, seedv1.ConditionReady, metav1.ConditionFalse, seedv1.ReasonPodsNotReady)
	})
	for _, p := range sn.Status.Pods {
		if p.PeerID == "" || p.PeerID != peerIDs[p.Name] {
			t.Fatalf("pod %s: status peer ID %q, identity Secret %q", p.Name, p.PeerID, peerIDs[p.Name])
		}
	}
	if len(sn.Status.BootstrapPeers) == 0 {
		t.Fatal("no bootstrap peers in the status")
	}
	if err := wantCondition(sn.Status.Conditions, seedv1.ConditionDegraded, metav1.ConditionFalse, ""); err != nil {
		t.Fatal(err)
	}

	// A pod's identity survives the pod: delete the pod, the Secret (and the
	// peer ID in the status) stay.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "seeds-1", Labels: map[string]string{
		"seedfleet.io/seednode": "seeds", "app.kubernetes.io/component": "seed"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "seed", Image: "seedfleet:test"}}}}
	mustCreate(t, pod)
	if err := k8s.Delete(context.Background(), pod, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * testPoll) // let the operator see the deletion
	secret := &corev1.Secret{}
	if err := get(t, secret, ns, "seeds-1-identity"); err != nil {
		t.Fatalf("identity Secret after the pod's deletion: %v", err)
	}
	if got := secret.Annotations["seedfleet.io/peer-id"]; got != peerIDs["seeds-1"] {
		t.Fatalf("peer ID changed from %s to %s", peerIDs["seeds-1"], got)
	}

	// Idle: nothing is written once everything is in place. The operator
	// first finishes reacting to the deletion (on a loaded machine its
	// last reconcile may come later than the pause above).
	for i, last := 0, -1; i < 20; i++ {
		n := writes.in(ns)
		if n == last {
			break
		}
		last = n
		time.Sleep(3 * testPoll)
	}
	before, sent := resourceVersions(t, ns), writes.in(ns)
	time.Sleep(10 * testPoll)
	if after := resourceVersions(t, ns); after != before {
		t.Fatalf("an idle operator wrote to the API server:\nbefore %s\nafter  %s", before, after)
	}
	if n := writes.in(ns) - sent; n != 0 {
		t.Fatalf("an idle operator sent %d writes (that changed nothing)", n)
	}
}

// resourceVersions fingerprints the operator's objects in ns.
func resourceVersions(t *testing.T, ns string) string {
	t.Helper()
	lists := []client.ObjectList{&seedv1.SeedNodeList{}, &appsv1.StatefulSetList{}, &corev1.ServiceList{},
		&corev1.ConfigMapList{}, &corev1.SecretList{}, &policyv1.PodDisruptionBudgetList{}, &seedv1.AgentVaultList{}}
	out := ""
	for _, l := range lists {
		if err := k8s.List(context.Background(), l, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		items, err := meta.ExtractList(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range items {
			m := o.(client.Object)
			out += m.GetName() + "@" + m.GetResourceVersion() + " "
		}
	}
	return out
}

func TestSeedNodeWithBadSpecIsDegradedNotCrashing(t *testing.T) {
	ns := newNamespace(t)
	sn := seedNode(ns, "bad", 2)
	// The schema accepts the template, but "notaport" is no TCP port: only
	// the operator can tell.
	sn.Spec.Expose.Announce = []string{"/dns4/seed-{ordinal}.example.org/tcp/notaport"}
	mustCreate(t, sn)
	eventually(t, 30*time.Second, "Degraded condition", func() error {
		if err := get(t, sn, ns, "bad"); err != nil {
			return err
		}
		if sn.Status.ObservedGeneration != sn.Generation {
			return fmt.Errorf("observedGeneration %d, generation %d", sn.Status.ObservedGeneration, sn.Generation)
		}
		return wantCondition(sn.Status.Conditions, seedv1.ConditionDegraded, metav1.ConditionTrue, seedv1.ReasonInvalidSpec)
	})
	if msg := condition(sn.Status.Conditions, seedv1.ConditionDegraded).Message; msg == "" {
		t.Fatal("Degraded without a message")
	}
	if err := get(t, &appsv1.StatefulSet{}, ns, "bad"); !isNotFound(err) {
		t.Fatalf("a StatefulSet was created from a bad spec (%v)", err)
	}

	// Fixing the spec clears the condition.
	sn.Spec.Expose.Announce = []string{"/dns4/seed-{ordinal}.example.org/tcp/4001"}
	if err := k8s.Update(context.Background(), sn); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "Degraded cleared", func() error {
		if err := get(t, sn, ns, "bad"); err != nil {
			return err
		}
		return wantCondition(sn.Status.Conditions, seedv1.ConditionDegraded, metav1.ConditionFalse, "")
	})
	cm := &corev1.ConfigMap{}
	if err := get(t, cm, ns, "bad-1-config"); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(cm.Data["seed.yaml"]))
	if err != nil || len(cfg.Announce) == 0 || cfg.Announce[0] != "/dns4/seed-1.example.org/tcp/4001" {
		t.Fatalf("pod 1 announces %v (%v)", cfg.Announce, err)
	}
}
