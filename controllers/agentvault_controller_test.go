package controllers_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

func newVaultID(t *testing.T) string {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return vault.NamespaceID(pub).String()
}

// publishedOn lists the pods whose ConfigMap lists vault id.
func publishedOn(t *testing.T, ns, seedNode string, pods int, id string) []string {
	t.Helper()
	var out []string
	for o := range pods {
		cm := &corev1.ConfigMap{}
		name := fmt.Sprintf("%s-%d", seedNode, o)
		if err := get(t, cm, ns, name+"-config"); err != nil {
			continue
		}
		for _, line := range strings.Split(cm.Data["vaults"], "\n") {
			if f := strings.Fields(line); len(f) > 0 && f[0] == id {
				out = append(out, name)
			}
		}
	}
	return out
}

func TestAgentVaultIsPlacedAndCleanedUp(t *testing.T) {
	ns := newNamespace(t)
	id := newVaultID(t)
	// The AgentVault comes first: it waits for its SeedNode.
	av := agentVault(t, ns, "notes", "seeds", id, 2)
	maxEntries := int64(5000)
	av.Spec.Quota.MaxEntries = &maxEntries
	av.Spec.RelayAccess = seedv1.RelayAccessNone
	mustCreate(t, av)
	eventually(t, 30*time.Second, "SeedNodeNotFound", func() error {
		if err := get(t, av, ns, "notes"); err != nil {
			return err
		}
		return wantCondition(av.Status.Conditions, seedv1.ConditionPlaced, metav1.ConditionFalse, seedv1.ReasonSeedNodeNotFound)
	})
	if !slices.Contains(av.Finalizers, "seedfleet.io/drop-replicas") {
		t.Fatalf("finalizers %v", av.Finalizers)
	}

	mustCreate(t, seedNode(ns, "seeds", 3))
	eventually(t, 30*time.Second, "Placed", func() error {
		if err := get(t, av, ns, "notes"); err != nil {
			return err
		}
		return wantCondition(av.Status.Conditions, seedv1.ConditionPlaced, metav1.ConditionTrue, seedv1.ReasonPlaced)
	})
	on := publishedOn(t, ns, "seeds", 3, id)
	if len(on) != 2 {
		t.Fatalf("vault published on %v, want 2 pods", on)
	}
	// The vault's own quota and relay access travel with its placement.
	cm := &corev1.ConfigMap{}
	if err := get(t, cm, ns, on[0]+"-config"); err != nil {
		t.Fatal(err)
	}
	if line := cm.Data["vaults"]; !strings.Contains(line, id+" maxEntries=5000 relay=none") {
		t.Fatalf("%s's vaults file lacks the vault's options:\n%s", on[0], line)
	}
	var placed []string
	for _, r := range av.Status.Placement {
		placed = append(placed, r.Pod)
		if r.Hosted || r.Synced || r.Message == "" {
			t.Fatalf("replica %+v: no pod runs, so it cannot be hosted", r)
		}
	}
	if !slices.Equal(placed, on) {
		t.Fatalf("status places on %v, ConfigMaps on %v", placed, on)
	}
	if err := wantCondition(av.Status.Conditions, seedv1.ConditionReady, metav1.ConditionFalse, seedv1.ReasonSyncing); err != nil {
		t.Fatal(err)
	}
	// Addresses come from the pods' identities, which the SeedNode's
	// reconciler may not have published when the vault was placed.
	eventually(t, 30*time.Second, "seed addresses and read ticket", func() error {
		if err := get(t, av, ns, "notes"); err != nil {
			return err
		}
		if len(av.Status.SeedAddrs) == 0 || av.Status.ReadTicket == "" {
			return fmt.Errorf("no seed addresses or read ticket: %+v", av.Status)
		}
		return nil
	})

	// More replicas than pods: placed on all, Degraded says why.
	tooMany := agentVault(t, ns, "too-many", "seeds", newVaultID(t), 5)
	mustCreate(t, tooMany)
	eventually(t, 30*time.Second, "TooFewPods", func() error {
		if err := get(t, tooMany, ns, "too-many"); err != nil {
			return err
		}
		return wantCondition(tooMany.Status.Conditions, seedv1.ConditionDegraded, metav1.ConditionTrue, seedv1.ReasonTooFewPods)
	})

	// Deleting the AgentVault removes it from every pod's list, then the
	// finalizer lets it go.
	if err := k8s.Delete(context.Background(), av); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "AgentVault gone", func() error {
		if err := get(t, &seedv1.AgentVault{}, ns, "notes"); !isNotFound(err) {
			return fmt.Errorf("still there (%v)", err)
		}
		return nil
	})
	if on := publishedOn(t, ns, "seeds", 3, id); len(on) != 0 {
		t.Fatalf("deleted vault still published on %v", on)
	}
}
