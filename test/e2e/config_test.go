//go:build e2e

/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// config is the contract with hack/e2e/run.sh: everything the test needs to
// know about the cluster and the build comes from these variables.
type config struct {
	kubeconfig string // E2E_KUBECONFIG
	kubectl    string // E2E_KUBECTL
	helm       string // E2E_HELM
	seedfleet  string // E2E_SEEDFLEET
	imageRepo  string // E2E_IMAGE_REPOSITORY
	imageTag   string // E2E_IMAGE_TAG
	chart      string // E2E_CHART
	artifacts  string // E2E_ARTIFACTS
}

// envVar is one variable of the contract: where its value goes, what it
// means, and whether it names a path that must exist.
type envVar struct {
	name string
	dst  *string
	what string
	path bool
}

func (c *config) vars() []envVar {
	return []envVar{
		{"E2E_KUBECONFIG", &c.kubeconfig, "the cluster's admin kubeconfig file", true},
		{"E2E_KUBECTL", &c.kubectl, "the kubectl binary", true},
		{"E2E_HELM", &c.helm, "the helm binary", true},
		{"E2E_SEEDFLEET", &c.seedfleet, "the static seedfleet binary, run as the device CLI", true},
		{"E2E_IMAGE_REPOSITORY", &c.imageRepo, "repository of the image imported into the node's containerd, such as seedfleet", false},
		{"E2E_IMAGE_TAG", &c.imageTag, "tag of that image, such as e2e", false},
		{"E2E_CHART", &c.chart, "the charts/seedfleet directory", true},
		{"E2E_ARTIFACTS", &c.artifacts, "a directory for diagnostics on failure, created if missing", false},
	}
}

// loadConfig reads the environment, failing (never skipping) with every
// missing or wrong variable named: a run without them is a broken runner.
func loadConfig(t *testing.T) config {
	t.Helper()
	var c config
	var problems []string
	for _, v := range c.vars() {
		*v.dst = os.Getenv(v.name)
		switch {
		case *v.dst == "":
			problems = append(problems, fmt.Sprintf("%s is not set (%s)", v.name, v.what))
		case v.path:
			if _, err := os.Stat(*v.dst); err != nil {
				problems = append(problems, fmt.Sprintf("%s=%s: %v (%s)", v.name, *v.dst, err, v.what))
			}
		}
	}
	if len(problems) > 0 {
		t.Fatalf("the e2e test runs against a cluster that hack/e2e/run.sh (make test-e2e) brings up and describes in E2E_* variables:\n  %s",
			strings.Join(problems, "\n  "))
	}
	if err := os.MkdirAll(c.artifacts, 0o755); err != nil {
		t.Fatalf("E2E_ARTIFACTS=%s: %v", c.artifacts, err)
	}
	return c
}
