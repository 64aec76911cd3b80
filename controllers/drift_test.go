package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// handEditor is the field manager of the edits these tests make, as a
// person's `kubectl edit` or `kubectl scale` would be.
const handEditor = "kubectl-edit"

// TestHandEditsOfChildrenAreReverted: the operator owns the fields it sets
// in its children, so a `kubectl scale` of the StatefulSet, a changed
// container field, a changed ConfigMap or Service port go back on the next
// reconcile (the watch on the child triggers it), while fields the operator
// never sets (a label someone adds) stay. Once repaired, an idle operator
// sends nothing: no apply at all, not merely no change.
func TestHandEditsOfChildrenAreReverted(t *testing.T) {
	ns := newNamespace(t)
	mustCreate(t, seedNode(ns, "drift", 2))
	ctx := context.Background()

	sts := &appsv1.StatefulSet{}
	eventually(t, 30*time.Second, "StatefulSet", func() error { return get(t, sts, ns, "drift") })
	want := sts.DeepCopy()
	waitIdle(t, ns)

	// The edits, each by another field manager.
	sts.Spec.Replicas = ptr.To[int32](5)
	sts.Spec.Template.Spec.Containers[0].Image = "attacker.example/seed:latest"
	sts.Spec.Template.Spec.Containers[0].Args = append(sts.Spec.Template.Spec.Containers[0].Args, "--log-level=debug")
	sts.Labels["team"] = "p2p" // not the operator's: stays
	if err := k8s.Update(ctx, sts, client.FieldOwner(handEditor)); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{}
	if err := get(t, cm, ns, "drift-1-config"); err != nil {
		t.Fatal(err)
	}
	wantYAML := cm.Data["seed.yaml"]
	cm.Data["seed.yaml"] = "dht:\n  mode: Client\n"
	if err := k8s.Update(ctx, cm, client.FieldOwner(handEditor)); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{}
	if err := get(t, svc, ns, "drift-0"); err != nil {
		t.Fatal(err)
	}
	wantPorts := svc.Spec.DeepCopy().Ports
	svc.Spec.Ports[0].Port = 4999
	if err := k8s.Update(ctx, svc, client.FieldOwner(handEditor)); err != nil {
		t.Fatal(err)
	}

	eventually(t, 30*time.Second, "StatefulSet repaired", func() error {
		if err := get(t, sts, ns, "drift"); err != nil {
			return err
		}
		c, w := sts.Spec.Template.Spec.Containers[0], want.Spec.Template.Spec.Containers[0]
		switch {
		case *sts.Spec.Replicas != *want.Spec.Replicas:
			return fmt.Errorf("replicas %d, want %d", *sts.Spec.Replicas, *want.Spec.Replicas)
		case c.Image != w.Image:
			return fmt.Errorf("image %q, want %q", c.Image, w.Image)
		case fmt.Sprint(c.Args) != fmt.Sprint(w.Args):
			return fmt.Errorf("args %q, want %q", c.Args, w.Args)
		}
		return nil
	})
	if sts.Labels["team"] != "p2p" {
		t.Errorf("label another manager added is gone: %v", sts.Labels)
	}
	eventually(t, 30*time.Second, "ConfigMap repaired", func() error {
		if err := get(t, cm, ns, "drift-1-config"); err != nil {
			return err
		}
		if cm.Data["seed.yaml"] != wantYAML {
			return fmt.Errorf("seed.yaml is\n%s", cm.Data["seed.yaml"])
		}
		return nil
	})
	eventually(t, 30*time.Second, "Service repaired", func() error {
		if err := get(t, svc, ns, "drift-0"); err != nil {
			return err
		}
		if svc.Spec.Ports[0].Port != wantPorts[0].Port {
			return fmt.Errorf("ports %+v, want %+v", svc.Spec.Ports, wantPorts)
		}
		return nil
	})
	waitIdle(t, ns)
}

// TestLegacyChildrenAreAdopted: a child written by a release before
// server-side apply (created by the operator's client without a field
// manager, carrying the old spec-hash annotation) is taken over, and what
// only that release set goes.
func TestLegacyChildrenAreAdopted(t *testing.T) {
	ns := newNamespace(t)
	// The old release's ConfigMap, written by this binary's client with no
	// field manager, as the old release's was.
	legacy := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "old-0-config",
			Labels:      map[string]string{"seedfleet.io/seednode": "old", "app.kubernetes.io/component": "seed", "seedfleet.io/pod": "old-0"},
			Annotations: map[string]string{"seedfleet.io/spec-hash": "0123456789abcdef"}},
		Data: map[string]string{"seed.yaml": "stale", "vaults": "", "left-over": "x"},
	}
	mustCreate(t, legacy)
	mustCreate(t, seedNode(ns, "old", 1))

	eventually(t, 30*time.Second, "legacy ConfigMap adopted", func() error {
		cm := &corev1.ConfigMap{}
		if err := get(t, cm, ns, "old-0-config"); err != nil {
			return err
		}
		switch {
		case cm.Data["seed.yaml"] == "stale":
			return fmt.Errorf("seed.yaml not rewritten")
		case cm.Annotations["seedfleet.io/spec-hash"] != "":
			return fmt.Errorf("spec-hash annotation left behind: %v", cm.Annotations)
		case cm.Data["left-over"] != "":
			return fmt.Errorf("key the old release owned left behind: %v", cm.Data)
		case len(cm.OwnerReferences) != 1:
			return fmt.Errorf("owners %+v", cm.OwnerReferences)
		}
		for _, m := range cm.ManagedFields {
			if m.Operation == metav1.ManagedFieldsOperationUpdate && m.Subresource == "" {
				return fmt.Errorf("%s still owns fields through an update", m.Manager)
			}
		}
		return nil
	})
}

// waitIdle waits until the operator stops writing to ns, then checks that
// it sends no write at all (not even one that changes nothing) over ten
// more polls.
func waitIdle(t *testing.T, ns string) {
	t.Helper()
	last := writes.in(ns)
	eventually(t, 30*time.Second, "operator done writing", func() error {
		time.Sleep(3 * testPoll)
		now := writes.in(ns)
		if now != last {
			defer func() { last = now }()
			return fmt.Errorf("%d writes since the last look", now-last)
		}
		return nil
	})
	before, beforeVersions := writes.in(ns), resourceVersions(t, ns)
	time.Sleep(10 * testPoll)
	if after := writes.in(ns); after != before {
		t.Fatalf("an idle operator sent %d writes", after-before)
	}
	if after := resourceVersions(t, ns); after != beforeVersions {
		t.Fatalf("an idle operator wrote to the API server:\nbefore %s\nafter  %s", beforeVersions, after)
	}
}
