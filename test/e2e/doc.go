//go:build e2e

/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

// Package e2e is Seedfleet's end-to-end test on a real single-node Kubernetes
// cluster (kubelet, containerd, real pods and volumes): it installs the Helm
// chart, runs a SeedNode and an AgentVault, and drives the device CLI against
// the seed pods through writes, reads, a pod restart, scaling, a replica
// damaged on a pod's volume and healed, the SeedNode made a public fleet
// that admits by invite (an agent self-hosted, read by a paired device
// through the fleet ticket, one of its pods deleted), and deletion.
//
// It is not part of `go test ./...`: every file carries the e2e build tag.
// Run it with `make test-e2e`, which runs hack/e2e/run.sh: the script brings
// the cluster up, imports the seedfleet image into the node's containerd,
// builds the test with `go test -c -tags e2e ./test/e2e` and runs the binary
// as root inside the cluster's network namespace (pod IPs and ClusterIPs are
// reachable; there is no DNS), with -test.timeout 20m (the test itself takes
// about two and a quarter minutes). The script passes the cluster to the test through
// E2E_* environment variables, listed in config_test.go; on failure the test
// writes diagnostics to $E2E_ARTIFACTS and prints them to its log.
package e2e
