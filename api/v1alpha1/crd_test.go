/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package v1alpha1

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// crdVersion is the part of a generated CRD's only version the tests read,
// as generic JSON where the schema is concerned.
type crdVersion struct {
	PrinterColumns []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		JSONPath string `json:"jsonPath"`
	} `json:"additionalPrinterColumns"`
	Schema struct {
		OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
	} `json:"schema"`
}

// loadCRD reads config/crd/bases/file, as make manifests generated it.
func loadCRD(t *testing.T, file string) crdVersion {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", file))
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []crdVersion `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(crd.Spec.Versions) != 1 {
		t.Fatalf("%s: %d versions, want 1", file, len(crd.Spec.Versions))
	}
	return crd.Spec.Versions[0]
}

// property returns the schema of the named property of schema, failing the
// test when there is none.
func property(t *testing.T, schema map[string]any, name string) map[string]any {
	t.Helper()
	props, _ := schema["properties"].(map[string]any)
	sub, ok := props[name].(map[string]any)
	if !ok {
		t.Fatalf("no property %q in the schema", name)
	}
	return sub
}

var (
	fieldPath     = regexp.MustCompile(`^(\.[A-Za-z]+)+$`)
	conditionPath = regexp.MustCompile(`^\.status\.conditions\[\?\(@\.type=="([A-Za-z]+)"\)\]\.(status|reason)$`)
)

// TestPrinterColumns checks that a column showing a field has the field's
// schema type (an int32 column typed integer sorts and aligns as a number),
// and that a column showing a condition names a condition type of the kind.
func TestPrinterColumns(t *testing.T) {
	for _, tc := range []struct {
		crd        string
		conditions []ConditionType
	}{
		{"seedfleet.io_seednodes.yaml", []ConditionType{ConditionReady, ConditionDegraded}},
		{"seedfleet.io_agentvaults.yaml", []ConditionType{ConditionReady, ConditionDegraded, ConditionPlaced}},
	} {
		t.Run(tc.crd, func(t *testing.T) {
			v := loadCRD(t, tc.crd)
			if len(v.PrinterColumns) == 0 {
				t.Fatal("no printer columns")
			}
			for _, col := range v.PrinterColumns {
				if m := conditionPath.FindStringSubmatch(col.JSONPath); m != nil {
					known := false
					for _, c := range tc.conditions {
						known = known || string(c) == m[1]
					}
					if !known || col.Type != "string" {
						t.Errorf("column %s shows condition %q as %s: want a condition type of the kind, as a string", col.Name, m[1], col.Type)
					}
					continue
				}
				if !fieldPath.MatchString(col.JSONPath) || strings.HasPrefix(col.JSONPath, ".metadata.") {
					continue
				}
				schema := v.Schema.OpenAPIV3Schema
				for _, name := range strings.Split(col.JSONPath, ".")[1:] {
					schema = property(t, schema, name)
				}
				if want := schema["type"]; col.Type != want {
					t.Errorf("column %s (%s) is typed %s, the field is %v", col.Name, col.JSONPath, col.Type, want)
				}
			}
		})
	}
}
