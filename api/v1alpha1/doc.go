/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

// Package v1alpha1 holds the seedfleet.io/v1alpha1 API: the SeedNode and
// AgentVault custom resources reconciled by the Seedfleet operator.
//
// The package is empty for now; the SeedNode and AgentVault types, their
// GroupVersion registration and the generated deepcopy code land with the
// operator work.
//
// +kubebuilder:object:generate=true
// +groupName=seedfleet.io
package v1alpha1
