/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

// Package v1alpha1 holds the seedfleet.io/v1alpha1 API: the SeedNode and
// AgentVault custom resources reconciled by the Seedfleet operator. Schema
// validation lives in the kubebuilder markers (CEL rules included), so the
// API server itself refuses a bad object with a clear message. Each kind keeps
// its types, defaults and condition types in files of its own
// (seednode_types.go, seednode_defaults.go, seednode_conditions.go). Enum
// values are CamelCase, as in Kubernetes' own types; the operator converts
// them to the seed's configuration in one place.
//
// +kubebuilder:object:generate=true
// +groupName=seedfleet.io
package v1alpha1
