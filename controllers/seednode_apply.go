/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/csaupgrade"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
)

// FieldOwner is the field manager under which the operator server-side
// applies the children it writes (StatefulSet, Services, ConfigMaps, PDB).
// It owns exactly the fields the builders set: a field another manager
// changes (a `kubectl scale`, a hand edit) is taken back on the next
// reconcile, and fields it never sets (a Service's cluster IP and node
// ports, what the API server defaults, what other controllers add) are left
// alone.
const FieldOwner = "seedfleet"

// eventReasonEditsReverted is the reason of the Warning event recorded when
// hand edits of a child could not be merged and were reverted whole.
const eventReasonEditsReverted = "EditsReverted"

// childApplies counts the applies the operator sends, by kind. A steady
// state sends none: an apply is sent only when the child is missing or the
// fields the operator owns differ from what it wants (a spec change, or
// drift another manager caused).
var childApplies = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "seedfleet_operator_child_applies_total",
	Help: "Server-side applies of SeedNode children, by kind; each creates a child, carries a spec change or reverts drift (an unchanged child is never written).",
}, []string{"kind"})

func init() {
	// controller-runtime's registry is the one the operator's metrics
	// endpoint serves, beside the controller and client metrics.
	metrics.Registry.MustRegister(childApplies)
}

// legacyFieldManagers are the managers under which releases before
// server-side apply created and updated children: the API server names a
// request without a field manager after its user agent's first word, the
// binary's name. Their fields move to FieldOwner before the first apply, so
// what those releases set and this one no longer does (the old spec-hash
// annotation) is removed rather than left behind by a manager that never
// writes again.
var legacyFieldManagers = sets.New(strings.SplitN(rest.DefaultKubernetesUserAgent(), "/", 2)[0])

// apply server-side applies desired, controlled by sn, unless the fields
// FieldOwner owns in the stored object already hold what desired sets. It
// returns the object as stored.
func (r *SeedNodeReconciler) apply(ctx context.Context, sn *seedv1.SeedNode, desired client.Object) (client.Object, error) {
	gvk, err := apiutil.GVKForObject(desired, r.Scheme())
	if err != nil {
		return nil, err
	}
	what := gvk.Kind + " " + desired.GetName()
	if err := controllerutil.SetControllerReference(sn, desired, r.Scheme()); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	content, err := applyContent(desired, gvk.GroupVersion().String(), gvk.Kind)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}

	existing := desired.DeepCopyObject().(client.Object)
	err = r.Get(ctx, client.ObjectKeyFromObject(desired), existing)
	switch {
	case err == nil:
		same, err := ownsAlready(existing, content)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if same {
			return existing, nil
		}
		if err := r.adoptLegacyFields(ctx, existing); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}

	u := &unstructured.Unstructured{Object: content}
	err = r.sendApply(ctx, u)
	if apierrors.IsInvalid(err) && existing.GetResourceVersion() != "" {
		// Another manager's edit can leave what no apply removes: a
		// Service port whose number was changed by hand is a new entry
		// of the ports list, owned by that manager, and the operator's
		// port, applied again beside it, duplicates its name. The
		// operator takes over what others set by update outside the
		// metadata, so its next apply removes what it does not set.
		took, terr := r.takeOverUpdatedFields(ctx, existing)
		if terr != nil {
			return nil, fmt.Errorf("applying %s: %w (taking over the fields other managers set: %v)", what, err, terr)
		}
		if len(took) > 0 {
			r.Recorder.Eventf(sn, existing, corev1.EventTypeWarning, eventReasonEditsReverted, "Apply",
				"%s: edits by %v could not be merged with the operator's fields (%v); they are reverted", what, took, err)
			u = &unstructured.Unstructured{Object: content}
			err = r.sendApply(ctx, u)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("applying %s: %w", what, err)
	}
	stored := desired.DeepCopyObject().(client.Object)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, stored); err != nil {
		return nil, fmt.Errorf("%s as applied: %w", what, err)
	}
	return stored, nil
}

// sendApply applies u as FieldOwner, taking over fields other managers
// own, and counts it.
func (r *SeedNodeReconciler) sendApply(ctx context.Context, u *unstructured.Unstructured) error {
	childApplies.WithLabelValues(u.GetKind()).Inc()
	return r.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldOwner), client.ForceOwnership)
}

// takeOverUpdatedFields moves to FieldOwner's applied set every field that
// other managers set by update in obj, outside its metadata (labels,
// annotations and finalizers others add stay theirs). It returns the
// managers whose fields it took, none when FieldOwner has applied nothing
// yet. Like adoptLegacyFields, the patch carries obj's resource version.
func (r *SeedNodeReconciler) takeOverUpdatedFields(ctx context.Context, obj client.Object) ([]string, error) {
	entries := obj.GetManagedFields()
	ours := slices.IndexFunc(entries, func(e metav1.ManagedFieldsEntry) bool {
		return e.Manager == FieldOwner && e.Operation == metav1.ManagedFieldsOperationApply && e.Subresource == ""
	})
	if ours < 0 {
		return nil, nil
	}
	owned, err := fieldSet(entries[ours])
	if err != nil {
		return nil, err
	}
	metadata := fieldpath.MakePrefixMatcherOrDie("metadata")
	var took []string
	out := make([]metav1.ManagedFieldsEntry, 0, len(entries))
	for i, e := range entries {
		if i == ours || e.Operation != metav1.ManagedFieldsOperationUpdate || e.Subresource != "" || e.APIVersion != entries[ours].APIVersion {
			out = append(out, e)
			continue
		}
		theirs, err := fieldSet(e)
		if err != nil {
			return nil, err
		}
		keep := theirs.FilterIncludeMatches(metadata)
		moved := theirs.Difference(keep)
		if moved.Empty() {
			out = append(out, e)
			continue
		}
		took = append(took, e.Manager)
		owned = owned.Union(moved)
		if keep.Empty() {
			continue
		}
		if e.FieldsV1, err = fieldsOf(keep); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if len(took) == 0 {
		return nil, nil
	}
	at := slices.IndexFunc(out, func(e metav1.ManagedFieldsEntry) bool {
		return e.Manager == FieldOwner && e.Operation == metav1.ManagedFieldsOperationApply && e.Subresource == ""
	})
	if out[at].FieldsV1, err = fieldsOf(owned); err != nil {
		return nil, err
	}
	patch, err := json.Marshal([]map[string]any{
		{"op": "replace", "path": "/metadata/managedFields", "value": out},
		{"op": "replace", "path": "/metadata/resourceVersion", "value": obj.GetResourceVersion()},
	})
	if err != nil {
		return nil, err
	}
	if err := r.Patch(ctx, obj, client.RawPatch(types.JSONPatchType, patch)); err != nil {
		return nil, err
	}
	return took, nil
}

func fieldSet(e metav1.ManagedFieldsEntry) (*fieldpath.Set, error) {
	s := &fieldpath.Set{}
	if e.FieldsV1 == nil {
		return s, nil
	}
	if err := s.FromJSON(bytes.NewReader(e.FieldsV1.GetRawBytes())); err != nil {
		return nil, fmt.Errorf("fields of %s: %w", e.Manager, err)
	}
	return s, nil
}

func fieldsOf(s *fieldpath.Set) (*metav1.FieldsV1, error) {
	raw, err := s.ToJSON()
	if err != nil {
		return nil, err
	}
	f := &metav1.FieldsV1{}
	f.SetRawBytes(raw)
	return f, nil
}

// adoptLegacyFields moves the fields a legacy manager owns in obj to
// FieldOwner, once: an object no release before server-side apply wrote has
// none, and the patch carries obj's resource version, so it fails rather
// than overwrite ownership that changed since obj was read.
func (r *SeedNodeReconciler) adoptLegacyFields(ctx context.Context, obj client.Object) error {
	patch, err := csaupgrade.UpgradeManagedFieldsPatch(obj, legacyFieldManagers, FieldOwner)
	if err != nil {
		return fmt.Errorf("moving the fields of %v to %s: %w", sets.List(legacyFieldManagers), FieldOwner, err)
	}
	if patch == nil {
		return nil
	}
	if err := r.Patch(ctx, obj, client.RawPatch(types.JSONPatchType, patch)); err != nil {
		return fmt.Errorf("moving the fields of %v to %s: %w", sets.List(legacyFieldManagers), FieldOwner, err)
	}
	return nil
}

// applyContent is desired as an apply request's body. The builders' typed
// objects say what they mean in every field they set, but encoding a Go
// struct also writes what no builder set: null for the zero creation
// timestamps and an empty status (the whole object's, a volume claim
// template's). Those are dropped, so the operator owns no status and claims
// nothing it did not set.
func applyContent(desired client.Object, apiVersion, kind string) (map[string]any, error) {
	data, err := json.Marshal(desired)
	if err != nil {
		return nil, err
	}
	var content map[string]any
	if err := json.Unmarshal(data, &content); err != nil {
		return nil, err
	}
	delete(content, "status")
	pruneUnset(content)
	content["apiVersion"], content["kind"] = apiVersion, kind
	return content, nil
}

// pruneUnset removes null values and empty "status" objects at any depth.
func pruneUnset(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if e == nil {
				delete(v, k)
				continue
			}
			if m, ok := e.(map[string]any); ok && k == "status" && len(m) == 0 {
				delete(v, k)
				continue
			}
			pruneUnset(e)
		}
	case []any:
		for _, e := range v {
			pruneUnset(e)
		}
	}
}

// ownsAlready reports whether the fields FieldOwner owns in existing hold
// exactly what content sets. Both sides are decoded into the typed object
// and compared semantically, so a value the API server only normalized
// (a quantity written "0.5" and stored "500m") is no difference. A field
// another manager changed is no longer FieldOwner's, so it counts as
// missing: the drift is repaired.
func ownsAlready(existing client.Object, content map[string]any) (bool, error) {
	owned, err := extractOwned(existing)
	if err != nil {
		return false, fmt.Errorf("reading the fields %s owns: %w", FieldOwner, err)
	}
	have, want := newLike(existing), newLike(existing)
	if err := decodeInto(owned, have); err != nil {
		return false, err
	}
	if err := decodeInto(content, want); err != nil {
		return false, err
	}
	return equality.Semantic.DeepEqual(have, want), nil
}

// extractOwned returns the fields of obj that FieldOwner applied, as an
// apply configuration (only those fields, with their stored values).
func extractOwned(obj client.Object) (any, error) {
	switch o := obj.(type) {
	case *appsv1.StatefulSet:
		return appsv1ac.ExtractStatefulSet(o, FieldOwner)
	case *corev1.Service:
		return corev1ac.ExtractService(o, FieldOwner)
	case *corev1.ConfigMap:
		return corev1ac.ExtractConfigMap(o, FieldOwner)
	case *policyv1.PodDisruptionBudget:
		return policyv1ac.ExtractPodDisruptionBudget(o, FieldOwner)
	}
	return nil, fmt.Errorf("no field extraction for %T", obj)
}

// newLike returns a new, empty object of obj's type.
func newLike(obj client.Object) client.Object {
	return reflect.New(reflect.TypeOf(obj).Elem()).Interface().(client.Object)
}

// decodeInto fills into from v's JSON encoding.
func decodeInto(v any, into client.Object) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, into)
}
