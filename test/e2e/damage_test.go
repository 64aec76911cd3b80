//go:build e2e

/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/seednode/admin"
)

// The damaged vault: its AgentVault and what the laptop writes into it.
const (
	diaryVaultName = "diary"
	// diaryEntries values of diaryValueSize bytes (inline: at most
	// MaxInlineValue, 1 KiB) make the vault's entries span several of the
	// vault store's data blocks (about 4 KiB each, uncompressed), so one
	// block in the middle holds this vault's entries alone.
	diaryEntries   = 16
	diaryValueSize = 1000
	// blockReach is how far from a byte its data block can extend: a block
	// is cut once it passes 4 KiB, so it holds at most 4 KiB and one entry
	// (about 1.3 KiB) more.
	blockReach = 6 << 10
	// quarantinesMetric counts the vault replicas a seed process quarantined.
	quarantinesMetric = "seedfleet_vault_quarantines_total"
)

// damagedReplicaHeals damages one replica of a second vault (the diary) on
// a pod that also hosts the laptop's vault: with the node cordoned, the pod
// and the diary's other replica are stopped (gracefully, so the seed
// flushes its entries into tables), a byte of the table that holds a diary
// value is flipped, and only the damaged pod is let back (bound by hand).
// The seed must find the damage (its quarantine counter and /status), keep
// serving the laptop's vault, and the AgentVault must show the damage
// while no sound replica is up to heal from. Once the node is uncordoned
// the other replica returns and the damaged one heals: equal fingerprints,
// no damage anywhere, the damaged value served again.
func (s *suite) damagedReplicaHeals(t *testing.T) {
	// The diary: a vault whose two pods share one (the victim) with the
	// laptop's vault — two pairs out of three pods always do.
	nsA := strings.TrimSpace(s.laptop.must(t, s.ctx, cliTimeout, "vault", "create"))
	if !namespaceIDPattern.MatchString(nsA) {
		t.Fatalf("vault create printed %q, not a 52-character namespace ID", nsA)
	}
	podsA, podsB := expectedPods(nsA, seedReplicas), expectedPods(s.ns, seedReplicas)
	victim := podsA[0]
	if !slices.Contains(podsB, victim) {
		victim = podsA[1]
	}
	other := podsA[0]
	if other == victim {
		other = podsA[1]
	}
	s.logf(t, "diary %s on %v, laptop's vault on %v: damaging %s, holding %s down", nsA, podsA, podsB, victim, other)

	create := &seedv1.AgentVault{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: diaryVaultName},
		Spec: seedv1.AgentVaultSpec{
			AgentDID:    s.did,
			NamespaceID: nsA,
			SeedNodeRef: seedv1.SeedNodeReference{Name: seedNodeName},
			Replicas:    vaultReplicas,
		},
	}
	if err := s.k8s.Create(s.ctx, create); err != nil {
		t.Fatalf("creating AgentVault %s: %v", diaryVaultName, err)
	}
	s.waitFor(t, "the diary placed and Ready", placementTimeout, func(ctx context.Context) error {
		av, err := s.agentVaultNamed(ctx, diaryVaultName)
		if err != nil {
			return err
		}
		if err := placedOn(av, podsA); err != nil {
			return err
		}
		return vaultSettled(av, vaultReplicas, 0)
	})

	// Values with a marker each, unique to this run.
	tag := make([]byte, 4)
	if _, err := rand.Read(tag); err != nil {
		t.Fatal(err)
	}
	values := make([]string, diaryEntries)
	for i := range values {
		marker := fmt.Sprintf("rot-%x-%02d:", tag, i)
		values[i] = marker + strings.Repeat(hex.EncodeToString(tag[:1]), (diaryValueSize-len(marker))/2)
		s.laptop.must(t, s.ctx, cliTimeout, "put", nsA, diaryKey(i), values[i])
	}
	victimAddr := s.podP2PAddr(t, victim)
	s.sync(t, s.laptop, nsA, victimAddr)
	s.waitFor(t, fmt.Sprintf("%s and %s to hold the diary's %d entries alike", victim, other, diaryEntries), replicationTimeout, func(ctx context.Context) error {
		return s.replicasEqual(ctx, nsA, diaryEntries, victim, other)
	})

	// Stop both replicas where nothing can start them again, then damage.
	volume := s.volumeDir(t, victim)
	node := s.cordonNode(t)
	victimUID := s.deletePod(t, victim)
	otherUID := s.deletePod(t, other)
	s.waitFor(t, victim+" and "+other+" stopped, their replacements unscheduled", podGoneTimeout, func(ctx context.Context) error {
		for name, uid := range map[string]string{victim: victimUID, other: otherUID} {
			p := &corev1.Pod{}
			err := s.k8s.Get(ctx, client.ObjectKey{Namespace: testNamespace, Name: name}, p)
			switch {
			case apierrors.IsNotFound(err):
			case err != nil:
				return err
			case string(p.UID) == uid:
				return fmt.Errorf("pod %s still running (phase %s, deletion requested at %v)", name, p.Status.Phase, p.DeletionTimestamp)
			case p.Spec.NodeName != "":
				return fmt.Errorf("pod %s's replacement was scheduled on %s despite the cordon", name, p.Spec.NodeName)
			}
		}
		return nil
	})
	damaged := s.rotDiaryValue(t, volume, values)

	// Only the victim comes back: bound to the node by hand, as the
	// scheduler would, while the other replica stays Pending.
	s.bindPod(t, victim, node)
	back := s.awaitPodReady(t, victim, victimUID)

	// The seed found the damage: a quarantine in this process, the diary
	// Rebuilding (nobody to rebuild from), the laptop's vault sound.
	var damage admin.VaultDamage
	s.waitFor(t, victim+" to report the diary damaged and the laptop's vault sound", replicationTimeout, func(ctx context.Context) error {
		st, err := s.adminStatus(ctx, back)
		if err != nil {
			return err
		}
		a, b := hostedVault(st, nsA), hostedVault(st, s.ns)
		switch {
		case a == nil:
			return fmt.Errorf("%s does not list the diary %s in /status", victim, nsA)
		case a.Damage == nil:
			return fmt.Errorf("%s reports the diary undamaged: %d entries, fingerprint %s", victim, a.Entries, a.Fingerprint)
		case b == nil:
			return fmt.Errorf("%s does not list the laptop's vault %s in /status", victim, s.ns)
		case b.Damage != nil:
			return fmt.Errorf("%s reports the laptop's vault damaged too: %+v", victim, *b.Damage)
		case b.Entries != uint64(wantEntries):
			return fmt.Errorf("%s holds %d entries of the laptop's vault, want %d", victim, b.Entries, wantEntries)
		}
		damage = *a.Damage
		return nil
	})
	s.logf(t, "%s: diary %s: %s", victim, damage.State, damage.Reason)
	if q, err := s.metric(s.ctx, back, quarantinesMetric); err != nil {
		t.Fatal(err)
	} else if q < 1 {
		t.Fatalf("%s reports the diary damaged but %s is %v", victim, quarantinesMetric, q)
	} else {
		s.logf(t, "%s: %s %v", victim, quarantinesMetric, q)
	}

	// It keeps serving the rest: a fresh device reads the laptop's vault,
	// blob included, from the damaged pod alone.
	reader := s.newDevice("reader")
	s.sync(t, reader, s.ns, victimAddr)
	s.readsEverything(t, reader, []string{victimAddr})

	s.waitFor(t, "the diary's AgentVault to show the damage", replicationTimeout, func(ctx context.Context) error {
		av, err := s.agentVaultNamed(ctx, diaryVaultName)
		if err != nil {
			return err
		}
		if err := conditionIs(av.Status.Conditions, seedv1.ConditionDegraded, metav1.ConditionTrue, av.Generation); err != nil {
			return fmt.Errorf("%v\n%s", err, describeVault(av))
		}
		for _, r := range av.Status.Placement {
			if r.Pod == victim && r.Damage != "" && !r.Synced {
				if c := meta.FindStatusCondition(av.Status.Conditions, string(seedv1.ConditionDegraded)); c.Reason != string(seedv1.ReasonReplicaDamaged) {
					return fmt.Errorf("Degraded for %s (%s), want %s\n%s", c.Reason, c.Message, seedv1.ReasonReplicaDamaged, describeVault(av))
				}
				s.logf(t, "%s: placement damage %q", victim, r.Damage)
				return nil
			}
		}
		return fmt.Errorf("no damaged, unsynced replica on %s\n%s", victim, describeVault(av))
	})
	s.waitFor(t, "a Warning event "+string(seedv1.ReasonReplicaDamaged)+" for the diary", 30*time.Second, func(ctx context.Context) error {
		events := &eventsv1.EventList{}
		if err := s.k8s.List(ctx, events, client.InNamespace(testNamespace)); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Reason == string(seedv1.ReasonReplicaDamaged) && e.Type == corev1.EventTypeWarning && e.Regarding.Name == diaryVaultName {
				return nil
			}
		}
		return fmt.Errorf("no %s event for %s among %d events", seedv1.ReasonReplicaDamaged, diaryVaultName, len(events.Items))
	})

	// The other replica returns; the damaged one heals with no step by hand.
	s.uncordonNode(t, node)
	s.awaitPodReady(t, other, otherUID)
	s.waitFor(t, victim+"'s diary healed, equal to "+other+"'s", replicationTimeout, func(ctx context.Context) error {
		return s.replicasEqual(ctx, nsA, diaryEntries, victim, other)
	})
	s.waitFor(t, "the diary's AgentVault Ready, in sync, no damage", replicationTimeout, func(ctx context.Context) error {
		av, err := s.agentVaultNamed(ctx, diaryVaultName)
		if err != nil {
			return err
		}
		if err := vaultSettled(av, vaultReplicas, diaryEntries); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(av.Status.Conditions, string(seedv1.ConditionReady)); c.Reason != string(seedv1.ReasonInSync) {
			return fmt.Errorf("Ready for %s, want %s\n%s", c.Reason, seedv1.ReasonInSync, describeVault(av))
		}
		if err := conditionIs(av.Status.Conditions, seedv1.ConditionDegraded, metav1.ConditionFalse, av.Generation); err != nil {
			return fmt.Errorf("%v\n%s", err, describeVault(av))
		}
		for _, r := range av.Status.Placement {
			if r.Damage != "" {
				return fmt.Errorf("replica on %s still damaged: %s", r.Pod, r.Damage)
			}
		}
		return nil
	})
	// The damaged value itself, from the healed pod alone.
	check := s.newDevice("diary-reader")
	s.sync(t, check, nsA, victimAddr)
	if got := check.must(t, s.ctx, cliTimeout, "get", nsA, diaryKey(damaged)); got != values[damaged]+"\n" {
		t.Fatalf("after healing, %s serves %s = %q, want the value written", victim, diaryKey(damaged), got)
	}
	s.logf(t, "%s serves the diary's %d entries again, %s included", victim, diaryEntries, diaryKey(damaged))

	s.waitFor(t, "the laptop's AgentVault Ready again", replicationTimeout, func(ctx context.Context) error {
		av, err := s.agentVault(ctx)
		if err != nil {
			return err
		}
		return vaultSettled(av, vaultReplicas, wantEntries)
	})
}

func diaryKey(i int) string { return fmt.Sprintf("diary/%02d", i) }

// rotDiaryValue flips a byte of one diary value in the table of the vault
// store in volume (a seed's data directory) that holds them, choosing the
// value in the middle of the diary's entries so that its data block holds
// nothing of another vault. It returns the index of the damaged value.
func (s *suite) rotDiaryValue(t *testing.T, volume string, values []string) int {
	t.Helper()
	dir := filepath.Join(volume, "vaults")
	tables, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	if err != nil || len(tables) == 0 {
		t.Fatalf("no table in %s (%v): did the seed flush its store when it stopped?", dir, err)
	}
	type hit struct{ offset, value int }
	var best []hit
	var bestFile string
	var bestData []byte
	for _, file := range tables {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var hits []hit
		for i, v := range values {
			if off := bytes.Index(data, []byte(v[:strings.IndexByte(v, ':')+1])); off >= 0 {
				hits = append(hits, hit{off, i})
			}
		}
		if len(hits) > len(best) {
			best, bestFile, bestData = hits, file, data
		}
	}
	if len(best) == 0 {
		t.Fatalf("none of the %d tables in %s holds a diary value", len(tables), dir)
	}
	slices.SortFunc(best, func(a, b hit) int { return a.offset - b.offset })
	mid := best[len(best)/2]
	first, last := best[0].offset, best[len(best)-1].offset
	if mid.offset-first < blockReach || last-mid.offset < blockReach {
		t.Fatalf("%s holds %d of the %d diary values between bytes %d and %d: too close together to damage one without its neighbours' blocks",
			bestFile, len(best), len(values), first, last)
	}
	bestData[mid.offset+3] ^= 0x20
	if err := os.WriteFile(bestFile, bestData, 0o600); err != nil {
		t.Fatal(err)
	}
	s.logf(t, "flipped byte %d of %s (%d bytes; %d diary values, bytes %d to %d): %s's value",
		mid.offset+3, filepath.Base(bestFile), len(bestData), len(best), first, last, diaryKey(mid.value))
	return mid.value
}

// volumeDir is the host directory of pod's data volume (a hostPath PV).
func (s *suite) volumeDir(t *testing.T, name string) string {
	t.Helper()
	pod := &corev1.Pod{}
	if err := s.k8s.Get(s.ctx, client.ObjectKey{Namespace: testNamespace, Name: name}, pod); err != nil {
		t.Fatal(err)
	}
	claim := dataClaim(pod)
	pvc := &corev1.PersistentVolumeClaim{}
	if err := s.k8s.Get(s.ctx, client.ObjectKey{Namespace: testNamespace, Name: claim}, pvc); err != nil {
		t.Fatalf("pod %s's data claim %q: %v", name, claim, err)
	}
	pv := &corev1.PersistentVolume{}
	if err := s.k8s.Get(s.ctx, client.ObjectKey{Name: pvc.Spec.VolumeName}, pv); err != nil {
		t.Fatalf("claim %s's volume %q: %v", claim, pvc.Spec.VolumeName, err)
	}
	if pv.Spec.HostPath == nil {
		t.Fatalf("volume %s is not a hostPath volume", pv.Name)
	}
	return pv.Spec.HostPath.Path
}

// replicasEqual reports nil when every pod named lists vault ns undamaged
// with entries entries and the same fingerprint.
func (s *suite) replicasEqual(ctx context.Context, ns string, entries int, pods ...string) error {
	var fps []string
	first := ""
	for i, name := range pods {
		pod := &corev1.Pod{}
		if err := s.k8s.Get(ctx, client.ObjectKey{Namespace: testNamespace, Name: name}, pod); err != nil {
			return err
		}
		st, err := s.adminStatus(ctx, pod)
		if err != nil {
			return err
		}
		v := hostedVault(st, ns)
		switch {
		case v == nil:
			return fmt.Errorf("%s does not list vault %s in /status", name, ns)
		case v.Damage != nil:
			return fmt.Errorf("%s: vault %s %s: %s", name, ns, v.Damage.State, v.Damage.Reason)
		case v.Entries != uint64(entries):
			return fmt.Errorf("%s holds %d entries of vault %s, want %d", name, v.Entries, ns, entries)
		}
		if i == 0 {
			first = v.Fingerprint
		}
		fps = append(fps, name+": "+v.Fingerprint)
		if v.Fingerprint != first {
			return fmt.Errorf("fingerprints differ: %s", strings.Join(fps, ", "))
		}
	}
	return nil
}

// podP2PAddr is a TCP multiaddr of pod from the SeedNode status (its
// per-pod Service, the same across restarts).
func (s *suite) podP2PAddr(t *testing.T, pod string) string {
	t.Helper()
	sn, err := s.seedNode(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range sn.Status.Pods {
		if p.Name == pod {
			if addrs := p2pTCPAddrs(p.Addrs, p.PeerID); len(addrs) > 0 {
				return addrs[0]
			}
		}
	}
	t.Fatalf("no TCP address of pod %s in the SeedNode status: %+v", pod, sn.Status.Pods)
	return ""
}

// theNode is the cluster's only node.
func (s *suite) theNode(t *testing.T) *corev1.Node {
	t.Helper()
	nodes := &corev1.NodeList{}
	if err := s.k8s.List(s.ctx, nodes); err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 1 {
		t.Fatalf("%d nodes, want one", len(nodes.Items))
	}
	return &nodes.Items[0]
}

// cordonNode marks the node unschedulable until uncordonNode, or the end
// of the test.
func (s *suite) cordonNode(t *testing.T) string {
	t.Helper()
	node := s.theNode(t)
	s.setUnschedulable(s.ctx, t, node.Name, true)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s.setUnschedulable(ctx, t, node.Name, false)
	})
	s.logf(t, "cordoned node %s", node.Name)
	return node.Name
}

func (s *suite) uncordonNode(t *testing.T, name string) {
	t.Helper()
	s.setUnschedulable(s.ctx, t, name, false)
	s.logf(t, "uncordoned node %s", name)
}

func (s *suite) setUnschedulable(ctx context.Context, t *testing.T, name string, on bool) {
	t.Helper()
	node := &corev1.Node{}
	if err := s.k8s.Get(ctx, client.ObjectKey{Name: name}, node); err != nil {
		t.Errorf("node %s: %v", name, err)
		return
	}
	if node.Spec.Unschedulable == on {
		return
	}
	orig := node.DeepCopy()
	node.Spec.Unschedulable = on
	if err := s.k8s.Patch(ctx, node, client.MergeFrom(orig)); err != nil {
		t.Errorf("setting node %s unschedulable=%t: %v", name, on, err)
	}
}

// deletePod deletes a seed pod gracefully and returns its UID.
func (s *suite) deletePod(t *testing.T, name string) string {
	t.Helper()
	pod := &corev1.Pod{}
	if err := s.k8s.Get(s.ctx, client.ObjectKey{Namespace: testNamespace, Name: name}, pod); err != nil {
		t.Fatal(err)
	}
	uid := pod.UID
	if err := s.k8s.Delete(s.ctx, pod, client.Preconditions{UID: &uid}); err != nil {
		t.Fatalf("deleting pod %s: %v", name, err)
	}
	return string(uid)
}

// bindPod binds the replacement of pod name (created by the StatefulSet,
// Pending on the cordoned node) to node, as the scheduler would.
func (s *suite) bindPod(t *testing.T, name, node string) {
	t.Helper()
	pod := &corev1.Pod{}
	s.waitFor(t, "the StatefulSet to recreate pod "+name, podGoneTimeout, func(ctx context.Context) error {
		return s.k8s.Get(ctx, client.ObjectKey{Namespace: testNamespace, Name: name}, pod)
	})
	binding := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: name, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}
	if err := s.k8s.SubResource("binding").Create(s.ctx, pod, binding); err != nil {
		t.Fatalf("binding pod %s to node %s: %v", name, node, err)
	}
	s.logf(t, "bound pod %s to node %s", name, node)
}

// awaitPodReady waits for pod name, other than oldUID, to be Ready.
func (s *suite) awaitPodReady(t *testing.T, name, oldUID string) *corev1.Pod {
	t.Helper()
	var back *corev1.Pod
	s.waitFor(t, "pod "+name+" Ready", podBackTimeout, func(ctx context.Context) error {
		p := &corev1.Pod{}
		if err := s.k8s.Get(ctx, client.ObjectKey{Namespace: testNamespace, Name: name}, p); err != nil {
			return err
		}
		if string(p.UID) == oldUID {
			return fmt.Errorf("still the old pod (UID %s)", oldUID)
		}
		if !podReady(p) || p.Status.PodIP == "" {
			return fmt.Errorf("new pod %s: phase %s, IP %q, conditions %+v", p.UID, p.Status.Phase, p.Status.PodIP, p.Status.Conditions)
		}
		back = p
		return nil
	})
	return back
}

// metric reads one unlabelled sample from a seed pod's /metrics.
func (s *suite) metric(ctx context.Context, pod *corev1.Pod, name string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	url := "http://" + net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(s.adminPort)) + admin.PathMetrics
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("pod %s: %w", pod.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("pod %s: GET %s: %s", pod.Name, admin.PathMetrics, resp.Status)
	}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 4<<20))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("pod %s: reading %s: %w", pod.Name, admin.PathMetrics, err)
	}
	return 0, fmt.Errorf("pod %s: no %s in %s", pod.Name, name, admin.PathMetrics)
}
