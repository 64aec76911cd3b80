/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

// Package controllers holds the Seedfleet operator's reconcilers. The
// SeedNode reconciler turns a SeedNode into a StatefulSet of seed pods with
// per-pod identities, Services and configuration, reads each pod's admin
// API, and publishes to every pod the vaults it hosts (placement by
// rendezvous hashing; a moving replica is dropped only after its successor
// has synced). The AgentVault reconciler reports each vault's placement and
// replica state and, through a finalizer, waits on deletion until no pod
// hosts the vault.
package controllers
