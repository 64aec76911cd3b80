/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of the Seedfleet kinds.
	GroupVersion = schema.GroupVersion{Group: "seedfleet.io", Version: "v1alpha1"}

	// SchemeBuilder registers the Seedfleet kinds with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the Seedfleet kinds to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
