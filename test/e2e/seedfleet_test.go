//go:build e2e

/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/seednode/fleet"
)

// How long each wait may take. Most are bounded by the operator's default
// poll interval (15 s for healthy pods; an AgentVault in sync refreshes its
// status every 30 s) and the seeds' replicate interval (10 s), not by work.
const (
	helmTimeout          = 4 * time.Minute // helm's own --timeout 3m, plus slack
	operatorReadyTimeout = time.Minute
	seedsReadyTimeout    = 3 * time.Minute // three pods with fresh volumes
	placementTimeout     = 2 * time.Minute
	replicationTimeout   = 2 * time.Minute // the second replica fetches the blob from the first
	podGoneTimeout       = time.Minute     // the pod's grace period is 30 s
	podBackTimeout       = 2 * time.Minute
	scaleTimeout         = 3 * time.Minute
	finalizerTimeout     = 2 * time.Minute
)

// What the devices write.
const (
	seedReplicas  = 3
	vaultReplicas = 2
	blobKey       = "photos/cat"
	blobSize      = 3 << 20 // several 16 KiB groups and 64 KiB segments, small enough for CI
)

var textEntries = []struct{ key, value string }{
	{"notes/today", "buy oat milk"},
	{"notes/tomorrow", "call the dentist"},
	{"notes/later", "water the plants"},
	{"lists/groceries", "oats, rice, lentils"},
	{"settings/theme", "dark"},
}

// wantEntries is how many entries the vault holds once everything is
// written: one per text entry and one for the blob, all by one author.
var wantEntries = int64(len(textEntries) + 1)

var namespaceIDPattern = regexp.MustCompile(`^[a-z2-7]{52}$`)

// TestSeedfleet walks Seedfleet through its life on a real cluster, one
// ordered step after another; a failed step ends the test. Run it through
// make test-e2e (hack/e2e/run.sh), with -test.timeout 20m: it takes about
// two and a quarter minutes.
func TestSeedfleet(t *testing.T) {
	s := newSuite(t)
	s.collectDiagnosticsOnFailure(t)
	steps := []struct {
		name string
		run  func(*testing.T)
	}{
		{"01-install-operator", s.installOperator},
		{"02-create-vault", s.createVault},
		{"03-apply-seednode-and-agentvault", s.applyResources},
		{"04-await-placement", s.awaitPlacement},
		{"05-write-and-sync", s.writeAndSync},
		{"06-read-on-second-device", s.readOnSecondDevice},
		{"07-restart-hosting-pod", s.restartHostingPod},
		{"08-scale-up-and-down", s.scaleUpAndDown},
		{"09-damaged-replica-heals", s.damagedReplicaHeals},
		{"10-public-fleet", s.publicFleet},
		{"11-delete-agentvault", s.deleteAgentVault},
		{"12-delete-namespace", s.deleteNamespace},
	}
	for _, step := range steps {
		s.logf(t, "step %s", step.name)
		if !t.Run(step.name, step.run) {
			t.FailNow()
		}
	}
	s.logf(t, "all steps passed")
}

// installOperator installs the chart with the image imported into the node
// and waits for the operator.
func (s *suite) installOperator(t *testing.T) {
	args := []string{"install", releaseName, s.cfg.chart,
		"--kubeconfig", s.cfg.kubeconfig,
		"--namespace", operatorNamespace, "--create-namespace",
		"--wait", "--timeout", "3m",
		// --set-string: a numeric tag such as 123 must stay a string for the values schema.
		"--set-string", "image.repository=" + s.cfg.imageRepo,
		"--set-string", "image.tag=" + s.cfg.imageTag,
		"--set", "image.pullPolicy=Never",
	}
	out, combined, err := runCommand(s.ctx, helmTimeout, s.cfg.helm, args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", commandLine(s.cfg.helm, args), err, combined)
	}
	s.logf(t, "helm install: %s", firstLines(out, 6))

	s.waitFor(t, "the operator Deployment to be available", operatorReadyTimeout, func(ctx context.Context) error {
		list := &appsv1.DeploymentList{}
		if err := s.k8s.List(ctx, list, client.InNamespace(operatorNamespace),
			client.MatchingLabels{"app.kubernetes.io/instance": releaseName, "app.kubernetes.io/component": "operator"}); err != nil {
			return err
		}
		if len(list.Items) != 1 {
			return fmt.Errorf("%d operator Deployments in %s", len(list.Items), operatorNamespace)
		}
		d := &list.Items[0]
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue && d.Status.ReadyReplicas >= 1 {
				return nil
			}
		}
		return fmt.Errorf("Deployment %s: %d/%d ready, conditions %+v", d.Name, d.Status.ReadyReplicas, d.Status.Replicas, d.Status.Conditions)
	})
}

// createVault makes device 1 (the laptop): its key and a vault.
func (s *suite) createVault(t *testing.T) {
	s.laptop = s.newDevice("laptop")
	out := s.laptop.must(t, s.ctx, cliTimeout, "key", "create")
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "did:"); ok {
			s.did = strings.TrimSpace(rest)
		}
	}
	if !strings.HasPrefix(s.did, "did:key:z6Mk") {
		t.Fatalf("key create printed no Ed25519 did:key line:\n%s", out)
	}
	// A vault that scaling to four pods must move (its top two of four
	// include the new pod), so step 8 moves a replica there and back
	// instead of passing by luck of the hash. About half of all vaults
	// qualify.
	for attempt := 1; ; attempt++ {
		ns := strings.TrimSpace(s.laptop.must(t, s.ctx, cliTimeout, "vault", "create"))
		if !namespaceIDPattern.MatchString(ns) {
			t.Fatalf("vault create printed %q, not a 52-character namespace ID", ns)
		}
		if slices.Contains(expectedPods(ns, seedReplicas+1), podName(seedReplicas)) {
			s.ns = ns
			break
		}
		if attempt == 64 {
			t.Fatal("64 vaults in a row would not move to a fourth pod: is fleet.Rank still rendezvous hashing?")
		}
	}
	s.logf(t, "laptop %s created vault %s: on %v with %d pods, on %v with %d", s.did, s.ns,
		expectedPods(s.ns, seedReplicas), seedReplicas, expectedPods(s.ns, seedReplicas+1), seedReplicas+1)
}

// expectedPods are the pods the operator places the vault on when the
// SeedNode has pods pods (no per-pod limit is set).
func expectedPods(ns string, pods int32) []string {
	var out []string
	for _, o := range fleet.Rank(ns, int(pods))[:vaultReplicas] {
		out = append(out, podName(int32(o)))
	}
	slices.Sort(out)
	return out
}

func podName(ordinal int32) string { return fmt.Sprintf("%s-%d", seedNodeName, ordinal) }

// placedOn reports nil when the vault's replicas are exactly on pods.
func placedOn(av *seedv1.AgentVault, pods []string) error {
	var got []string
	for _, r := range av.Status.Placement {
		got = append(got, r.Pod)
	}
	slices.Sort(got)
	if !slices.Equal(got, pods) {
		return fmt.Errorf("placed on %v, want %v:\n%s", got, pods, describeVault(av))
	}
	return nil
}

// applyResources creates the test namespace, a SeedNode of three small pods
// and the AgentVault of the laptop's vault.
func (s *suite) applyResources(t *testing.T) {
	create := func(obj client.Object) {
		t.Helper()
		kind := strings.TrimPrefix(fmt.Sprintf("%T", obj), "*")
		// Retried: the API server may take a moment to serve the chart's CRDs.
		s.waitFor(t, "creating "+kind+" "+obj.GetName(), 30*time.Second, func(ctx context.Context) error {
			err := s.k8s.Create(ctx, obj)
			if apierrors.IsAlreadyExists(err) {
				return nil
			}
			return err
		})
	}
	create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNamespace}})
	create(&seedv1.SeedNode{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: seedNodeName},
		Spec: seedv1.SeedNodeSpec{
			Replicas: seedReplicas,
			// The image is imported into the node's containerd, not pulled.
			ImagePullPolicy: corev1.PullNever,
			// Small requests: four pods and the operator fit on two cores.
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
			},
			// The default StorageClass (hostPath PVs).
			Storage: seedv1.StorageSpec{Size: resource.MustParse("64Mi")},
			// Each pod announces its own ClusterIP, which the test reaches.
			Expose: seedv1.ExposeSpec{ServiceType: seedv1.ServiceTypeClusterIP},
		},
	})
	create(&seedv1.AgentVault{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: agentVaultName},
		Spec: seedv1.AgentVaultSpec{
			AgentDID:    s.did,
			NamespaceID: s.ns,
			SeedNodeRef: seedv1.SeedNodeReference{Name: seedNodeName},
			Replicas:    vaultReplicas,
		},
	})
	sn, err := s.seedNode(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p := sn.Spec.Ports.Admin; p != 0 {
		s.adminPort = int(p)
	}
}

// awaitPlacement waits for the seed pods and the vault's placement.
func (s *suite) awaitPlacement(t *testing.T) {
	s.waitFor(t, fmt.Sprintf("SeedNode %s Ready with %d pods", seedNodeName, seedReplicas), seedsReadyTimeout, func(ctx context.Context) error {
		sn, err := s.seedNode(ctx)
		if err != nil {
			return err
		}
		return seedNodeReady(sn, seedReplicas)
	})
	s.waitFor(t, "every seed pod to run with the peer ID its SeedNode status lists", 30*time.Second, s.podsMatchPeerIDs)
	s.waitFor(t, fmt.Sprintf("AgentVault %s Placed and Ready on %d pods", agentVaultName, vaultReplicas), placementTimeout, func(ctx context.Context) error {
		av, err := s.agentVault(ctx)
		if err != nil {
			return err
		}
		return vaultSettled(av, vaultReplicas, 0)
	})
	s.logf(t, "%s", describeVault(s.mustAgentVault(t)))
}

// podsMatchPeerIDs checks each pod's admin /status against the peer ID the
// SeedNode status gives it (from its identity Secret).
func (s *suite) podsMatchPeerIDs(ctx context.Context) error {
	sn, err := s.seedNode(ctx)
	if err != nil {
		return err
	}
	pods, err := s.seedPods(ctx)
	if err != nil {
		return err
	}
	want := map[string]string{}
	for _, p := range sn.Status.Pods {
		want[p.Name] = p.PeerID
	}
	var problems []string
	for i := range pods {
		st, err := s.adminStatus(ctx, &pods[i])
		switch {
		case err != nil:
			problems = append(problems, err.Error())
		case st.PeerID != want[pods[i].Name]:
			problems = append(problems, fmt.Sprintf("pod %s runs as %s, its status says %q", pods[i].Name, st.PeerID, want[pods[i].Name]))
		}
	}
	if len(pods) != len(want) {
		problems = append(problems, fmt.Sprintf("%d pods, %d in the SeedNode status", len(pods), len(want)))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}

// writeAndSync has the laptop write text entries and a blob and sync them
// to one seed; the seeds then replicate among themselves.
func (s *suite) writeAndSync(t *testing.T) {
	for _, e := range textEntries {
		s.laptop.must(t, s.ctx, cliTimeout, "put", s.ns, e.key, e.value)
	}
	s.blob = make([]byte, blobSize)
	if _, err := rand.Read(s.blob); err != nil {
		t.Fatal(err)
	}
	s.blobPath = filepath.Join(s.homes, "photo.bin")
	if err := os.WriteFile(s.blobPath, s.blob, 0o644); err != nil {
		t.Fatal(err)
	}
	s.logf(t, "%s", strings.TrimSpace(s.laptop.must(t, s.ctx, cliTimeout, "put", s.ns, blobKey, "--file", s.blobPath)))

	av := s.mustAgentVault(t)
	addrs := p2pTCPAddrs(av.Status.SeedAddrs, "")
	if len(addrs) == 0 {
		t.Fatalf("no TCP address in status.seedAddrs %v", av.Status.SeedAddrs)
	}
	s.sync(t, s.laptop, s.ns, addrs[0])

	s.waitFor(t, fmt.Sprintf("both replicas to hold %d entries and every blob", wantEntries), replicationTimeout, func(ctx context.Context) error {
		av, err := s.agentVault(ctx)
		if err != nil {
			return err
		}
		return vaultSettled(av, vaultReplicas, wantEntries)
	})
	s.logf(t, "%s", describeVault(s.mustAgentVault(t)))
}

// readOnSecondDevice syncs a fresh device with the read ticket from the
// AgentVault status and reads everything.
func (s *suite) readOnSecondDevice(t *testing.T) {
	av := s.mustAgentVault(t)
	phone := s.newDevice("phone")
	s.sync(t, phone, av.Status.ReadTicket)
	s.readsEverything(t, phone, p2pTCPAddrs(av.Status.SeedAddrs, ""))
}

// restartHostingPod deletes the pod of the first Active replica: a device
// still reads everything from the other replica, and the pod comes back
// with its identity, its volume and its replica.
func (s *suite) restartHostingPod(t *testing.T) {
	av := s.mustAgentVault(t)
	var active []seedv1.ReplicaStatus
	for _, r := range av.Status.Placement {
		if r.Role == seedv1.ReplicaActive {
			active = append(active, r)
		}
	}
	if len(active) < 2 {
		t.Fatalf("want two Active replicas before deleting one:\n%s", describeVault(av))
	}
	victim, survivor := active[0], active[1]
	survivorAddrs := p2pTCPAddrs(av.Status.SeedAddrs, survivor.PeerID)
	if len(survivorAddrs) == 0 {
		t.Fatalf("no TCP address of %s (peer %s) in status.seedAddrs %v", survivor.Pod, survivor.PeerID, av.Status.SeedAddrs)
	}
	peerBefore := s.statusPeerID(t, victim.Pod)
	if victim.PeerID != peerBefore {
		t.Fatalf("placement says %s is peer %s, the SeedNode status says %s", victim.Pod, victim.PeerID, peerBefore)
	}
	pod := &corev1.Pod{}
	if err := s.k8s.Get(s.ctx, client.ObjectKey{Namespace: testNamespace, Name: victim.Pod}, pod); err != nil {
		t.Fatal(err)
	}
	claimName := dataClaim(pod)
	pvcBefore := &corev1.PersistentVolumeClaim{}
	if err := s.k8s.Get(s.ctx, client.ObjectKey{Namespace: testNamespace, Name: claimName}, pvcBefore); err != nil {
		t.Fatalf("pod %s's data volume claim %q: %v", pod.Name, claimName, err)
	}
	oldUID := pod.UID

	s.logf(t, "deleting pod %s (peer %s, claim %s, volume %s); %s keeps serving", pod.Name, peerBefore, claimName, pvcBefore.Spec.VolumeName, survivor.Pod)
	if err := s.k8s.Delete(s.ctx, pod, client.Preconditions{UID: &oldUID}); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, "pod "+pod.Name+" to be gone", podGoneTimeout, func(ctx context.Context) error {
		p := &corev1.Pod{}
		err := s.k8s.Get(ctx, client.ObjectKeyFromObject(pod), p)
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		case p.UID != oldUID:
			return nil // already replaced
		}
		return fmt.Errorf("pod %s still exists (phase %s, deletion requested at %v)", p.Name, p.Status.Phase, p.DeletionTimestamp)
	})

	tablet := s.newDevice("tablet")
	s.sync(t, tablet, s.ns, survivorAddrs[0])
	s.readsEverything(t, tablet, survivorAddrs)

	var back *corev1.Pod
	s.waitFor(t, "pod "+pod.Name+" to come back Ready", podBackTimeout, func(ctx context.Context) error {
		p := &corev1.Pod{}
		if err := s.k8s.Get(ctx, client.ObjectKeyFromObject(pod), p); err != nil {
			return err
		}
		if p.UID == oldUID {
			return fmt.Errorf("still the old pod (UID %s)", oldUID)
		}
		if !podReady(p) || p.Status.PodIP == "" {
			return fmt.Errorf("new pod %s: phase %s, IP %q, conditions %+v", p.UID, p.Status.Phase, p.Status.PodIP, p.Status.Conditions)
		}
		back = p
		return nil
	})

	if got := dataClaim(back); got != claimName {
		t.Fatalf("the new pod mounts claim %q, the old one mounted %q", got, claimName)
	}
	pvcAfter := &corev1.PersistentVolumeClaim{}
	if err := s.k8s.Get(s.ctx, client.ObjectKey{Namespace: testNamespace, Name: claimName}, pvcAfter); err != nil {
		t.Fatal(err)
	}
	if pvcAfter.UID != pvcBefore.UID || pvcAfter.Spec.VolumeName != pvcBefore.Spec.VolumeName {
		t.Fatalf("claim %s changed: UID %s → %s, volume %s → %s", claimName, pvcBefore.UID, pvcAfter.UID, pvcBefore.Spec.VolumeName, pvcAfter.Spec.VolumeName)
	}

	s.waitFor(t, "SeedNode Ready again with "+pod.Name+" as peer "+peerBefore, scaleTimeout, func(ctx context.Context) error {
		sn, err := s.seedNode(ctx)
		if err != nil {
			return err
		}
		for _, p := range sn.Status.Pods {
			if p.Name == pod.Name && p.PeerID != peerBefore {
				return fmt.Errorf("SeedNode status gives %s peer ID %s, it was %s", p.Name, p.PeerID, peerBefore)
			}
		}
		return seedNodeReady(sn, seedReplicas)
	})
	s.waitFor(t, pod.Name+" to report the replica it had, equal to "+survivor.Pod+"'s", replicationTimeout, func(ctx context.Context) error {
		st, err := s.adminStatus(ctx, back)
		if err != nil {
			return err
		}
		if st.PeerID != peerBefore {
			return fmt.Errorf("%s runs as peer %s, it was %s", back.Name, st.PeerID, peerBefore)
		}
		v := hostedVault(st, s.ns)
		if v == nil {
			return fmt.Errorf("%s does not list vault %s in /status", back.Name, s.ns)
		}
		ref, err := s.replicaFingerprint(ctx, survivor.Pod)
		if err != nil {
			return err
		}
		if v.Entries != uint64(wantEntries) || v.BlobsMissing != 0 || v.Fingerprint != ref {
			return fmt.Errorf("%s: %d entries, %d blobs missing, fingerprint %s (%s: %s)", back.Name, v.Entries, v.BlobsMissing, v.Fingerprint, survivor.Pod, ref)
		}
		return nil
	})
	s.waitFor(t, "the AgentVault Ready with both replicas Active", replicationTimeout, func(ctx context.Context) error {
		av, err := s.agentVault(ctx)
		if err != nil {
			return err
		}
		if err := vaultSettled(av, vaultReplicas, wantEntries); err != nil {
			return err
		}
		for _, r := range av.Status.Placement {
			if r.Pod == victim.Pod {
				return nil
			}
		}
		return fmt.Errorf("the placement no longer names %s:\n%s", victim.Pod, describeVault(av))
	})
}

// scaleUpAndDown scales the SeedNode to four pods and back to three while a
// watcher checks that the vault always has a hosted, synced replica; then a
// fresh device reads everything through the (re-read) read ticket.
func (s *suite) scaleUpAndDown(t *testing.T) {
	w := s.watchReplicas(t)

	for _, replicas := range []int32{seedReplicas + 1, seedReplicas} {
		s.scaleSeedNode(t, replicas)
		if replicas == seedReplicas {
			s.waitFor(t, "the StatefulSet back to 3 pods", scaleTimeout, s.statefulSetShrunk)
		}
		s.waitFor(t, fmt.Sprintf("SeedNode Ready with %d pods", replicas), scaleTimeout, func(ctx context.Context) error {
			sn, err := s.seedNode(ctx)
			if err != nil {
				return err
			}
			return seedNodeReady(sn, replicas)
		})
		s.waitFor(t, fmt.Sprintf("the AgentVault Ready with %d Active replicas on %d pods", vaultReplicas, replicas), scaleTimeout, func(ctx context.Context) error {
			av, err := s.agentVault(ctx)
			if err != nil {
				return err
			}
			if err := placedOn(av, expectedPods(s.ns, replicas)); err != nil {
				return err
			}
			return vaultSettled(av, vaultReplicas, wantEntries)
		})
		s.logf(t, "%s", describeVault(s.mustAgentVault(t)))
	}

	av := s.mustAgentVault(t)
	desk := s.newDevice("desktop")
	s.sync(t, desk, av.Status.ReadTicket)
	s.readsEverything(t, desk, p2pTCPAddrs(av.Status.SeedAddrs, ""))

	polls, failedReads, gaps := w.stop()
	s.logf(t, "replica watcher: %d status reads, %d failed", polls, failedReads)
	if len(gaps) > 0 {
		t.Fatalf("while scaling, the vault had no hosted, synced replica in %d of %d status reads:\n%s",
			len(gaps), polls, strings.Join(gaps, "\n"))
	}
}

// scaleSeedNode sets the SeedNode's spec.replicas.
func (s *suite) scaleSeedNode(t *testing.T, replicas int32) {
	t.Helper()
	sn, err := s.seedNode(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	orig := sn.DeepCopy()
	sn.Spec.Replicas = replicas
	if err := s.k8s.Patch(s.ctx, sn, client.MergeFrom(orig)); err != nil {
		t.Fatalf("scaling SeedNode %s to %d: %v", seedNodeName, replicas, err)
	}
	s.logf(t, "scaled SeedNode %s from %d to %d pods", seedNodeName, orig.Spec.Replicas, replicas)
}

// statefulSetShrunk reports nil once the StatefulSet runs three pods and the
// fourth is gone (the operator keeps it while a replica moves off it).
func (s *suite) statefulSetShrunk(ctx context.Context) error {
	sts := &appsv1.StatefulSet{}
	if err := s.k8s.Get(ctx, client.ObjectKey{Namespace: testNamespace, Name: seedNodeName}, sts); err != nil {
		return err
	}
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != seedReplicas || sts.Status.Replicas != seedReplicas {
		spec := "unset"
		if sts.Spec.Replicas != nil {
			spec = fmt.Sprint(*sts.Spec.Replicas)
		}
		msg := fmt.Sprintf("StatefulSet: spec.replicas %s, status.replicas %d", spec, sts.Status.Replicas)
		if av, err := s.agentVault(ctx); err == nil {
			msg += "\n" + describeVault(av) // a Leaving replica holds the last pod
		}
		return errors.New(msg)
	}
	extra := podName(seedReplicas)
	err := s.k8s.Get(ctx, client.ObjectKey{Namespace: testNamespace, Name: extra}, &corev1.Pod{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("pod %s still exists", extra)
}

// replicaWatcher reads the AgentVault every second in the background and
// records every read in which no replica was both hosted and synced.
type replicaWatcher struct {
	cancel context.CancelFunc
	done   chan struct{}

	// Written by the goroutine; read after done is closed.
	polls, failedReads int
	gaps               []string
}

func (s *suite) watchReplicas(t *testing.T) *replicaWatcher {
	ctx, cancel := context.WithCancel(s.ctx)
	w := &replicaWatcher{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(pollEvery)
		defer tick.Stop()
		for {
			rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
			av, err := s.agentVault(rctx)
			rcancel()
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				w.failedReads++
			default:
				w.polls++
				serving := 0
				for _, r := range av.Status.Placement {
					if r.Hosted && r.Synced {
						serving++
					}
				}
				if serving == 0 {
					w.gaps = append(w.gaps, fmt.Sprintf("[%6.1fs] %s", time.Since(s.start).Seconds(), describeVault(av)))
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { w.stop() }) // a failed step must not leave it running
	return w
}

// stop ends the watcher and returns what it saw. Safe to call twice.
func (w *replicaWatcher) stop() (polls, failedReads int, gaps []string) {
	w.cancel()
	<-w.done
	return w.polls, w.failedReads, w.gaps
}

// deleteAgentVault deletes the AgentVault: its finalizer holds it until no
// pod hosts the vault, and then a seed refuses to sync it.
func (s *suite) deleteAgentVault(t *testing.T) {
	av := s.mustAgentVault(t)
	if err := s.k8s.Delete(s.ctx, av); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, "the AgentVault to be gone (finalizer done)", finalizerTimeout, func(ctx context.Context) error {
		av, err := s.agentVault(ctx)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("still there: deletion requested at %v, finalizers %v\n%s", av.DeletionTimestamp, av.Finalizers, describeVault(av))
	})
	s.waitFor(t, "no seed pod to list the vault in its /status", 30*time.Second, func(ctx context.Context) error {
		pods, err := s.seedPods(ctx)
		if err != nil {
			return err
		}
		var problems []string
		for i := range pods {
			st, err := s.adminStatus(ctx, &pods[i])
			switch {
			case err != nil:
				problems = append(problems, err.Error())
			case hostedVault(st, s.ns) != nil:
				problems = append(problems, fmt.Sprintf("pod %s still hosts the vault: %+v", pods[i].Name, *hostedVault(st, s.ns)))
			}
		}
		if len(pods) != seedReplicas {
			problems = append(problems, fmt.Sprintf("%d seed pods, want %d", len(pods), seedReplicas))
		}
		if len(problems) > 0 {
			return errors.New(strings.Join(problems, "\n"))
		}
		return nil
	})

	sn, err := s.seedNode(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range sn.Status.Pods {
		addrs := p2pTCPAddrs(p.Addrs, p.PeerID)
		if len(addrs) == 0 {
			t.Fatalf("no TCP address for %s in the SeedNode status: %v", p.Name, p.Addrs)
		}
		out, err := s.laptop.run(s.ctx, syncTimeout, "sync", s.ns, addrs[0])
		switch {
		case err == nil:
			t.Fatalf("sync with %s succeeded after the AgentVault was deleted:\n%s", p.Name, out)
		case !strings.Contains(err.Error(), "does not host"):
			t.Fatalf("sync with %s failed, but not with the seed's \"does not host\" refusal: %v", p.Name, err)
		}
		s.logf(t, "%s refuses the vault: %s", p.Name, lineContaining(err.Error(), "does not host"))
	}
}

// deleteNamespace removes what the test made; only reached when every step
// passed, so a failed run leaves everything for inspection.
func (s *suite) deleteNamespace(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNamespace}}
	if err := s.k8s.Delete(s.ctx, ns); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	s.logf(t, "namespace %s is being deleted", testNamespace)
}

// sync runs `seedfleet sync` as d with args (NAMESPACE ADDR, or a ticket)
// and logs its summary.
func (s *suite) sync(t *testing.T, d *device, args ...string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(d.home, "identity.key")); errors.Is(err, fs.ErrNotExist) {
		d.must(t, s.ctx, cliTimeout, "key", "create") // a new device: sync refuses a home with no key
	}
	args = append([]string{"sync"}, args...)
	out := d.must(t, s.ctx, syncTimeout, append(args, "--timeout", "90s", "-q")...)
	s.logf(t, "%s: %s", d.name, firstLines(out, 3))
}

// readsEverything checks that d holds every text entry as written and can
// fetch the blob from seeds, byte for byte.
func (s *suite) readsEverything(t *testing.T, d *device, seeds []string) {
	t.Helper()
	s.readsVault(t, d, s.ns, seeds)
}

// readsVault checks that d holds every text entry in vault ns (a namespace
// ID, or "agent") and can fetch the blob from seeds, byte for byte.
func (s *suite) readsVault(t *testing.T, d *device, ns string, seeds []string) {
	t.Helper()
	if len(seeds) == 0 {
		t.Fatalf("no seed address to fetch the blob from")
	}
	for _, e := range textEntries {
		if got := d.must(t, s.ctx, cliTimeout, "get", ns, e.key); got != e.value+"\n" {
			t.Fatalf("device %s: get %s = %q, want %q", d.name, e.key, got, e.value+"\n")
		}
	}
	out := filepath.Join(d.home, "blob.out")
	args := []string{"get", ns, blobKey, "--out", out}
	for _, a := range seeds {
		args = append(args, "--from", a)
	}
	d.must(t, s.ctx, syncTimeout, args...)
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, s.blob) {
		t.Fatalf("device %s: blob %s is %d bytes and differs from the %d bytes written", d.name, blobKey, len(got), len(s.blob))
	}
	s.logf(t, "device %s read %d entries and the %d-byte blob", d.name, len(textEntries), len(got))
}

// statusPeerID is the peer ID the SeedNode status gives a pod.
func (s *suite) statusPeerID(t *testing.T, pod string) string {
	t.Helper()
	sn, err := s.seedNode(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range sn.Status.Pods {
		if p.Name == pod && p.PeerID != "" {
			return p.PeerID
		}
	}
	t.Fatalf("the SeedNode status gives pod %s no peer ID: %+v", pod, sn.Status.Pods)
	return ""
}

// replicaFingerprint is the fingerprint of the vault's replica on pod name,
// from its admin /status.
func (s *suite) replicaFingerprint(ctx context.Context, name string) (string, error) {
	pod := &corev1.Pod{}
	if err := s.k8s.Get(ctx, client.ObjectKey{Namespace: testNamespace, Name: name}, pod); err != nil {
		return "", err
	}
	st, err := s.adminStatus(ctx, pod)
	if err != nil {
		return "", err
	}
	v := hostedVault(st, s.ns)
	if v == nil {
		return "", fmt.Errorf("%s does not list vault %s in /status", name, s.ns)
	}
	return v.Fingerprint, nil
}

// dataClaim is the claim behind the pod's data volume.
func dataClaim(pod *corev1.Pod) string {
	for _, v := range pod.Spec.Volumes {
		if v.Name == "data" && v.PersistentVolumeClaim != nil {
			return v.PersistentVolumeClaim.ClaimName
		}
	}
	return ""
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// firstLines keeps log lines short.
func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, " | ")
}

// lineContaining is the first line of s containing sub, or s.
func lineContaining(s, sub string) string {
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			return strings.TrimSpace(line)
		}
	}
	return s
}
