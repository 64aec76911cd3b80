package controllers_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/seedfleet/seedfleet/controllers"
)

// TestStatusPatchKeepsAConcurrentWrite: a status written from a stale copy
// of an object conflicts, is set again on the object as it is now and
// written then, so what another writer put in the status meanwhile stays (a
// plain merge patch would replace the conditions list with the stale one).
// The object is a Pod no reconciler touches.
func TestStatusPatchKeepsAConcurrentWrite(t *testing.T) {
	ns := newNamespace(t)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "contended"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "none"}}}}
	mustCreate(t, pod)
	stale := &corev1.Pod{}
	if err := get(t, stale, ns, "contended"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	addCondition := func(typ corev1.PodConditionType) func(client.Object) {
		return func(o client.Object) {
			p := o.(*corev1.Pod)
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: typ, Status: corev1.ConditionTrue})
		}
	}
	if err := controllers.PatchStatus(ctx, k8s, stale.DeepCopy(), addCondition("WrittenFirst")); err != nil {
		t.Fatal(err)
	}
	if err := controllers.PatchStatus(ctx, k8s, stale, addCondition("WrittenFromAStaleCopy")); err != nil {
		t.Fatal(err)
	}
	got := &corev1.Pod{}
	if err := get(t, got, ns, "contended"); err != nil {
		t.Fatal(err)
	}
	have := map[corev1.PodConditionType]bool{}
	for _, c := range got.Status.Conditions {
		have[c.Type] = true
	}
	if !have["WrittenFirst"] || !have["WrittenFromAStaleCopy"] || len(got.Status.Conditions) != 2 {
		t.Fatalf("conditions %+v, want both writes once each", got.Status.Conditions)
	}
}
