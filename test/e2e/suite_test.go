//go:build e2e

/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/controllers"
	"github.com/seedfleet/seedfleet/seednode/admin"
)

// Names the test creates and looks for.
const (
	operatorNamespace = "seedfleet-system"
	releaseName       = "seedfleet"
	testNamespace     = "e2e"
	seedNodeName      = "seeds"
	agentVaultName    = "laptop"
	defaultAdminPort  = 7401 // the CRD's default spec.ports.admin
	pollEvery         = time.Second
)

// suite is the state the ordered steps of TestSeedfleet share.
type suite struct {
	cfg   config
	start time.Time
	ctx   context.Context // the test's; steps derive per-call timeouts from it
	k8s   client.Client   // direct (uncached) client: every read goes to the API server
	homes string          // parent directory of the devices' homes

	// Filled in by the steps.
	did       string // device 1's DID, the AgentVault's agentDID
	ns        string // the vault's namespace ID
	laptop    *device
	blob      []byte // the blob's content, as written
	blobPath  string
	adminPort int
}

func newSuite(t *testing.T) *suite {
	t.Helper()
	cfg := loadConfig(t)
	restCfg, err := clientcmd.BuildConfigFromFlags("", cfg.kubeconfig)
	if err != nil {
		t.Fatalf("E2E_KUBECONFIG=%s: %v", cfg.kubeconfig, err)
	}
	restCfg.Timeout = 30 * time.Second
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := seedv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(restCfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatalf("client for E2E_KUBECONFIG=%s: %v", cfg.kubeconfig, err)
	}
	return &suite{cfg: cfg, start: time.Now(), ctx: t.Context(), k8s: c, homes: t.TempDir(), adminPort: defaultAdminPort}
}

// logf logs with the time since the suite started, so a CI log shows where
// the minutes go.
func (s *suite) logf(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("[%6.1fs] %s", time.Since(s.start).Seconds(), fmt.Sprintf(format, args...))
}

// waitFor polls check every second until it returns nil. After timeout it
// fails the test, naming what it awaited and the state check last reported
// (check's error describes what it saw).
func (s *suite) waitFor(t *testing.T, what string, timeout time.Duration, check func(ctx context.Context) error) {
	t.Helper()
	begin := time.Now()
	deadline := begin.Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(s.ctx, 15*time.Second)
		err := check(ctx)
		cancel()
		if err == nil {
			s.logf(t, "%s (after %s)", what, time.Since(begin).Round(100*time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last observed:\n%v", timeout, what, err)
		}
		select {
		case <-s.ctx.Done():
			t.Fatalf("test ended while waiting for %s; last observed:\n%v", what, err)
		case <-time.After(pollEvery):
		}
	}
}

// newDevice returns a device with a fresh home directory.
func (s *suite) newDevice(name string) *device {
	return &device{name: name, home: filepath.Join(s.homes, name), bin: s.cfg.seedfleet}
}

func (s *suite) seedNode(ctx context.Context) (*seedv1.SeedNode, error) {
	sn := &seedv1.SeedNode{}
	err := s.k8s.Get(ctx, client.ObjectKey{Namespace: testNamespace, Name: seedNodeName}, sn)
	return sn, err
}

// agentVault is the laptop's AgentVault.
func (s *suite) agentVault(ctx context.Context) (*seedv1.AgentVault, error) {
	return s.agentVaultNamed(ctx, agentVaultName)
}

func (s *suite) agentVaultNamed(ctx context.Context, name string) (*seedv1.AgentVault, error) {
	av := &seedv1.AgentVault{}
	err := s.k8s.Get(ctx, client.ObjectKey{Namespace: testNamespace, Name: name}, av)
	return av, err
}

// mustAgentVault reads the AgentVault or fails the test.
func (s *suite) mustAgentVault(t *testing.T) *seedv1.AgentVault {
	t.Helper()
	av, err := s.agentVault(s.ctx)
	if err != nil {
		t.Fatalf("reading AgentVault %s/%s: %v", testNamespace, agentVaultName, err)
	}
	return av
}

// seedPods lists the SeedNode's pods.
func (s *suite) seedPods(ctx context.Context) ([]corev1.Pod, error) {
	list := &corev1.PodList{}
	err := s.k8s.List(ctx, list, client.InNamespace(testNamespace),
		client.MatchingLabels{controllers.LabelSeedNode: seedNodeName, controllers.LabelComponent: "seed"})
	return list.Items, err
}

// adminStatus reads a seed pod's /status through its pod IP.
func (s *suite) adminStatus(ctx context.Context, pod *corev1.Pod) (admin.Status, error) {
	if pod.Status.PodIP == "" {
		return admin.Status{}, fmt.Errorf("pod %s has no IP yet", pod.Name)
	}
	url := "http://" + net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(s.adminPort))
	st, err := admin.NewClient(url, admin.WithTimeout(3*time.Second), admin.WithRetry(1, 0)).Status(ctx)
	if err != nil {
		return st, fmt.Errorf("pod %s: %w", pod.Name, err)
	}
	return st, nil
}

// hostedVault is the pod's report of vault ns, or nil when it does not host it.
func hostedVault(st admin.Status, ns string) *admin.VaultStatus {
	for i := range st.Vaults {
		if st.Vaults[i].Namespace == ns {
			return &st.Vaults[i]
		}
	}
	return nil
}

// conditionIs reports nil when the condition has the wanted status and was
// computed for the object's current generation.
func conditionIs(conds []metav1.Condition, typ seedv1.ConditionType, want metav1.ConditionStatus, generation int64) error {
	c := meta.FindStatusCondition(conds, string(typ))
	switch {
	case c == nil:
		return fmt.Errorf("no %s condition", typ)
	case c.Status != want:
		return fmt.Errorf("%s=%s (%s: %s)", typ, c.Status, c.Reason, c.Message)
	case c.ObservedGeneration != generation:
		return fmt.Errorf("%s=%s is for generation %d, the object is at %d", typ, c.Status, c.ObservedGeneration, generation)
	}
	return nil
}

// seedNodeReady reports nil when sn is Ready with exactly replicas pods, each
// ready, with a peer ID and addresses, for its current generation.
func seedNodeReady(sn *seedv1.SeedNode, replicas int32) error {
	st := &sn.Status
	var problems []string
	if st.ObservedGeneration != sn.Generation {
		problems = append(problems, fmt.Sprintf("status is for generation %d, spec is at %d", st.ObservedGeneration, sn.Generation))
	}
	if err := conditionIs(st.Conditions, seedv1.ConditionReady, metav1.ConditionTrue, sn.Generation); err != nil {
		problems = append(problems, err.Error())
	}
	if st.Replicas != replicas || st.ReadyReplicas != replicas || len(st.Pods) != int(replicas) {
		problems = append(problems, fmt.Sprintf("want %d pods: status.replicas %d, readyReplicas %d, %d pods listed",
			replicas, st.Replicas, st.ReadyReplicas, len(st.Pods)))
	}
	for _, p := range st.Pods {
		if !p.Ready || p.PeerID == "" || len(p.Addrs) == 0 {
			problems = append(problems, fmt.Sprintf("pod %s: ready=%t peerID=%q addrs=%v %s", p.Name, p.Ready, p.PeerID, p.Addrs, p.Message))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(problems, "\n"))
}

// vaultSettled reports nil when av is Placed and Ready with exactly replicas
// placement entries, every one Active, hosted and synced with no blob
// missing and holding entries entries, and has seed addresses and a read
// ticket.
func vaultSettled(av *seedv1.AgentVault, replicas int, entries int64) error {
	st := &av.Status
	var problems []string
	for _, typ := range []seedv1.ConditionType{seedv1.ConditionPlaced, seedv1.ConditionReady} {
		if err := conditionIs(st.Conditions, typ, metav1.ConditionTrue, av.Generation); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(st.Placement) != replicas || int(st.ReadyReplicas) != replicas {
		problems = append(problems, fmt.Sprintf("want %d replicas: %d placement entries, readyReplicas %d", replicas, len(st.Placement), st.ReadyReplicas))
	}
	for _, r := range st.Placement {
		if r.Role != seedv1.ReplicaActive || !r.Hosted || !r.Synced || r.BlobsMissing != 0 || r.Entries != entries {
			problems = append(problems, fmt.Sprintf("replica on %s: want Active, hosted, synced, %d entries, no blob missing", r.Pod, entries))
		}
	}
	if len(st.SeedAddrs) == 0 {
		problems = append(problems, "no status.seedAddrs")
	}
	if st.ReadTicket == "" {
		problems = append(problems, "no status.readTicket")
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%s\n%s", strings.Join(problems, "\n"), describeVault(av))
}

// describeVault is av's status in a few lines, for logs and failures.
func describeVault(av *seedv1.AgentVault) string {
	var b strings.Builder
	fmt.Fprintf(&b, "AgentVault %s (generation %d, observed %d):", av.Name, av.Generation, av.Status.ObservedGeneration)
	for _, c := range av.Status.Conditions {
		fmt.Fprintf(&b, " %s=%s(%s)", c.Type, c.Status, c.Reason)
	}
	for _, r := range av.Status.Placement {
		fmt.Fprintf(&b, "\n  %s: role=%s hosted=%t synced=%t entries=%d bytes=%d blobsMissing=%d %s",
			r.Pod, r.Role, r.Hosted, r.Synced, r.Entries, r.Bytes, r.BlobsMissing, r.Message)
	}
	if c := meta.FindStatusCondition(av.Status.Conditions, string(seedv1.ConditionReady)); c != nil && c.Message != "" {
		fmt.Fprintf(&b, "\n  Ready: %s", c.Message)
	}
	return b.String()
}

// p2pTCPAddrs keeps the plain TCP multiaddrs of addrs (not QUIC, not
// WebSocket, not relayed), of peer id when id is not empty. The devices dial
// these: a ClusterIP forwards TCP without the conntrack surprises UDP can
// have after a pod restart.
func p2pTCPAddrs(addrs []string, id string) []string {
	var out []string
	for _, a := range addrs {
		if !strings.Contains(a, "/tcp/") || strings.Contains(a, "/ws") || strings.Contains(a, "/p2p-circuit") {
			continue
		}
		if id != "" && !strings.HasSuffix(a, "/p2p/"+id) {
			continue
		}
		out = append(out, a)
	}
	return out
}
