/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

// Package controllers holds the Seedfleet operator's reconcilers: one
// reconciler per kind (SeedNode, AgentVault), each split into small steps
// that can be read and tested on their own.
//
// The package is empty for now; the reconcilers arrive with the operator work.
package controllers
