package controllers_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/internal/rot"
	devclient "github.com/seedfleet/seedfleet/seednode/client"
)

// TestDamagedReplicaIsReportedAndHeals: pod 0's copy of a vault rots on
// disk. Restarted, pod 0 quarantines and empties it; while pod 1 (the other
// replica) is down, the AgentVault shows the damage (replica status,
// Degraded, a Warning event) and never counts it synced; once pod 1 is back
// the replica heals and the vault is Ready again, with no manual step.
func TestDamagedReplicaIsReportedAndHeals(t *testing.T) {
	ns := newNamespace(t)
	sn := seedNode(ns, "rot", 2)
	sn.Spec.Ports = seedv1.PortsSpec{P2P: testP2PPort, Admin: testAdminPort}
	sn.Spec.Expose.ServiceType = seedv1.ServiceTypeNone
	mustCreate(t, sn)
	f := newFleet(t, ns, "rot", 2)
	f.start(0)
	f.start(1)

	device, err := devclient.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer device.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	id, err := device.CreateVault()
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, agentVault(t, ns, "diary", "rot", id.String(), 2))
	for i := range 400 {
		v := fmt.Sprintf("rotting-%04d-%s", i, bytes.Repeat([]byte("x"), 200))
		if _, err := device.Put(id, []byte(fmt.Sprintf("day/%04d", i)), []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	av := &seedv1.AgentVault{}
	inSync := func() error {
		if err := get(t, av, ns, "diary"); err != nil {
			return err
		}
		if err := wantCondition(av.Status.Conditions, seedv1.ConditionReady, metav1.ConditionTrue, seedv1.ReasonInSync); err != nil {
			return err
		}
		for _, r := range av.Status.Placement {
			if r.Entries != 400 || r.Damage != "" {
				return fmt.Errorf("replica %+v", r)
			}
		}
		return nil
	}
	eventually(t, 60*time.Second, "seed addresses", func() error {
		if err := get(t, av, ns, "diary"); err != nil {
			return err
		}
		if len(av.Status.SeedAddrs) == 0 {
			return fmt.Errorf("no seed addresses yet")
		}
		return nil
	})
	if _, err := device.Sync(ctx, id, av.Status.SeedAddrs[0], devclient.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "both replicas in sync", inSync)

	// Rot: pod 0 stops (its store flushes into tables as it closes), a
	// byte of the table holding the vault flips; pod 1 is down too.
	f.stop(0)
	f.stop(1)
	if _, err := rot.Flip(filepath.Join(f.dirs[0], "data", "vaults", "*.sst"), []byte("rotting-")); err != nil {
		t.Fatal(err)
	}
	f.start(0)

	eventually(t, 60*time.Second, "the damage shows in the AgentVault", func() error {
		if err := get(t, av, ns, "diary"); err != nil {
			return err
		}
		if err := wantCondition(av.Status.Conditions, seedv1.ConditionDegraded, metav1.ConditionTrue, seedv1.ReasonReplicaDamaged); err != nil {
			return err
		}
		for _, r := range av.Status.Placement {
			if r.Pod == "rot-0" && r.Damage != "" && !r.Synced {
				return nil
			}
		}
		return fmt.Errorf("no damaged replica in %+v", av.Status.Placement)
	})
	eventually(t, 30*time.Second, "a Warning event", func() error {
		events := &eventsv1.EventList{}
		if err := k8s.List(context.Background(), events, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Reason == string(seedv1.ReasonReplicaDamaged) && e.Type == corev1.EventTypeWarning && e.Regarding.Name == "diary" {
				return nil
			}
		}
		return fmt.Errorf("no %s event among %d", seedv1.ReasonReplicaDamaged, len(events.Items))
	})

	f.start(1)
	eventually(t, 90*time.Second, "the damaged replica heals", inSync)
	if err := wantCondition(av.Status.Conditions, seedv1.ConditionDegraded, metav1.ConditionFalse, seedv1.ReasonReconciled); err != nil {
		t.Fatal(err)
	}
}
