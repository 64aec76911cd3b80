/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package v1alpha1

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
)

// TestDefaultMarkersMatchDefault checks that the generated CRDs' defaults
// (from the kubebuilder markers) are exactly what Default sets on an empty
// spec: every defaulted field, with the same value, both ways. A marker and
// a constant that drift apart, or a default added on one side only, fail it.
func TestDefaultMarkersMatchDefault(t *testing.T) {
	for _, tc := range []struct {
		crd      string
		defaults any // an empty spec after Default
	}{
		// Optional structs are set, so the defaults inside them count.
		{"seedfleet.io_seednodes.yaml", func() any {
			s := SeedNodeSpec{Hosting: HostingSpec{SelfService: &SelfServiceSpec{}}}
			s.Default()
			return s
		}()},
		{"seedfleet.io_agentvaults.yaml", func() any { var s AgentVaultSpec; s.Default(); return s }()},
	} {
		t.Run(tc.crd, func(t *testing.T) {
			schema := property(t, loadCRD(t, tc.crd).Schema.OpenAPIV3Schema, "spec")
			markers := map[string]any{}
			if err := schemaDefaults(schema, "spec", markers); err != nil {
				t.Fatal(err)
			}
			if len(markers) == 0 {
				t.Fatal("the CRD has no defaults: the schema walk is broken")
			}
			set := map[string]any{}
			flatten(toJSON(t, tc.defaults), "spec", set)
			// Required fields without omitempty marshal as zero values:
			// only what Default sets counts.
			maps.DeleteFunc(set, func(_ string, v any) bool { return v == nil || v == "" || v == 0.0 || v == false })
			for _, path := range slices.Sorted(maps.Keys(markers)) {
				if got, ok := set[path]; !ok {
					t.Errorf("%s: the CRD defaults it to %v, Default leaves it empty", path, markers[path])
				} else if !reflect.DeepEqual(got, markers[path]) {
					t.Errorf("%s: the CRD defaults it to %v, Default to %v", path, markers[path], got)
				}
			}
			for _, path := range slices.Sorted(maps.Keys(set)) {
				if _, ok := markers[path]; !ok {
					t.Errorf("%s: Default sets it to %v, the CRD has no default for it", path, set[path])
				}
			}
		})
	}
}

// schemaDefaults records, by dotted path, the leaf values of every default
// in schema and below it. Defaults of whole objects are split into their
// leaves, which must agree with the fields' own defaults. List items are
// not walked: the defaults there belong to core types (a
// LocalObjectReference's name), and Default sets no list.
func schemaDefaults(schema map[string]any, path string, out map[string]any) error {
	if d, ok := schema["default"]; ok {
		leaves := map[string]any{}
		flatten(d, path, leaves)
		for p, v := range leaves {
			if prev, seen := out[p]; seen && !reflect.DeepEqual(prev, v) {
				return fmt.Errorf("%s: defaulted to %v by one marker and %v by another", p, prev, v)
			}
			out[p] = v
		}
	}
	props, _ := schema["properties"].(map[string]any)
	for name, sub := range props {
		sub, ok := sub.(map[string]any)
		if !ok {
			return fmt.Errorf("%s.%s: not a schema", path, name)
		}
		if err := schemaDefaults(sub, path+"."+name, out); err != nil {
			return err
		}
	}
	return nil
}

// flatten records the leaves of v, a generic JSON value, by dotted path.
func flatten(v any, path string, out map[string]any) {
	if m, ok := v.(map[string]any); ok {
		for k, sub := range m {
			flatten(sub, path+"."+k, out)
		}
		return
	}
	out[path] = v
}

// toJSON turns v into generic JSON (numbers as float64, as YAML's are).
func toJSON(t *testing.T, v any) any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
