//go:build e2e

/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// kubectl runs kubectl against the test cluster.
func (s *suite) kubectl(ctx context.Context, args ...string) (stdout string, err error) {
	args = append([]string{"--kubeconfig", s.cfg.kubeconfig}, args...)
	stdout, combined, err := runCommand(ctx, kubectlTimeout, s.cfg.kubectl, args...)
	if err != nil {
		return combined, fmt.Errorf("%s: %w\n%s", commandLine(s.cfg.kubectl, args), err, combined)
	}
	return stdout, nil
}

// collectDiagnosticsOnFailure registers a cleanup that, if the test failed,
// writes the cluster's state to E2E_ARTIFACTS and prints it to the test log.
func (s *suite) collectDiagnosticsOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if t.Failed() {
			s.collectDiagnostics(t)
		}
	})
}

// collectDiagnostics writes one file per command or pod. It runs after the
// test's context is gone, so it makes its own.
func (s *suite) collectDiagnostics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t.Logf("collecting diagnostics into %s", s.cfg.artifacts)
	save := func(name, content string) {
		path := filepath.Join(s.cfg.artifacts, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Logf("writing %s: %v", path, err)
		}
		t.Logf("===== %s =====\n%s", name, content)
	}
	kubectl := func(name string, args ...string) {
		out, err := s.kubectl(ctx, args...)
		if err != nil {
			out = err.Error()
		}
		save(name, out)
	}

	kubectl("get-all.txt", "get", "all,seednodes,agentvaults,pvc,pv,events", "-A", "-o", "wide")
	kubectl("seedfleet-objects.yaml", "get", "seednodes,agentvaults", "-n", testNamespace, "-o", "yaml")
	kubectl("describe-seedfleet.txt", "describe", "seednodes,agentvaults", "-n", testNamespace)
	kubectl("describe-pods-"+testNamespace+".txt", "describe", "pods", "-n", testNamespace)
	kubectl("describe-pods-"+operatorNamespace+".txt", "describe", "pods", "-n", operatorNamespace)
	kubectl("describe-nodes.txt", "describe", "nodes")

	for _, ns := range []string{testNamespace, operatorNamespace} {
		pods := &corev1.PodList{}
		if err := s.k8s.List(ctx, pods, client.InNamespace(ns)); err != nil {
			save("pods-"+ns+".txt", fmt.Sprintf("listing pods in %s: %v", ns, err))
			continue
		}
		for i := range pods.Items {
			pod := &pods.Items[i]
			prefix := "logs-" + ns + "-" + pod.Name
			kubectl(prefix+".txt", "logs", "-n", ns, pod.Name, "--all-containers", "--timestamps")
			if restarted(pod) {
				kubectl(prefix+"-previous.txt", "logs", "-n", ns, pod.Name, "--all-containers", "--timestamps", "--previous")
			}
			if ns == testNamespace {
				s.saveAdminStatus(ctx, pod, save)
			}
		}
	}
}

// saveAdminStatus saves a seed pod's admin /status, what the operator reads.
func (s *suite) saveAdminStatus(ctx context.Context, pod *corev1.Pod, save func(name, content string)) {
	name := "admin-status-" + pod.Name + ".json"
	st, err := s.adminStatus(ctx, pod)
	if err != nil {
		save(name, err.Error())
		return
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		save(name, err.Error())
		return
	}
	save(name, string(data))
}

func restarted(pod *corev1.Pod) bool {
	for _, c := range pod.Status.ContainerStatuses {
		if c.RestartCount > 0 {
			return true
		}
	}
	return false
}
