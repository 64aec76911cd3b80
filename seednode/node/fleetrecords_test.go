package node

import (
	"crypto/ed25519"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/hosting"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// recordAgent is a device whose agent a test fleet hosts: its subject, its
// vault and its home pods.
type recordAgent struct {
	dev     *device
	subject ed25519.PublicKey
	ns      vault.NamespaceID
	home    []int
}

func newRecordAgent(t *testing.T, pods int, r int) *recordAgent {
	t.Helper()
	d := newDevice(t)
	info, err := d.InitAgent("laptop")
	if err != nil {
		t.Fatal(err)
	}
	subject := d.mustRoot(t)
	return &recordAgent{dev: d, subject: subject, ns: info.Namespace, home: fleet.Top(identity.DIDKey(subject), pods, r)}
}

// version is the subject's record version on pod, and whether it holds one.
func (a *recordAgent) version(t *testing.T, pod *fleetPod) (*hosting.Record, bool) {
	t.Helper()
	rec, err := pod.node.records.Get(a.subject)
	if err != nil {
		t.Fatal(err)
	}
	return rec, rec != nil
}

// synced reports whether pod hosts a's vault with the fingerprint want.
func synced(pod *fleetPod, ns vault.NamespaceID, want [32]byte) bool {
	if !pod.node.Hosted().Has(ns) {
		return false
	}
	st, err := pod.node.Store().Stats(ns)
	return err == nil && [32]byte(st.Fingerprint) == want
}

// TestRecordsReachAHomePodThatWasDown: a home pod is stopped while an agent
// is admitted and writes; when it starts again it gets the record from the
// other home pod, without any new request, and then hosts and syncs the
// agent's vault.
func TestRecordsReachAHomePodThatWasDown(t *testing.T) {
	pods := startFleet(t, 3, 2, hosting.Policy{Admission: fleet.Open})
	a := newRecordAgent(t, 3, 2)
	up, down := pods[a.home[0]], pods[a.home[1]]
	if err := down.node.Close(); err != nil {
		t.Fatal(err)
	}
	if err := askFleet(t, a.dev, up, hosting.OpHost).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.dev.PutPrivate(a.ns, "notes/while-away", []byte("written while a pod was down")); err != nil {
		t.Fatal(err)
	}
	syncOK(t, a.dev, a.ns, up.node.Addrs()[0].String())
	want, err := up.node.Store().Stats(a.ns)
	if err != nil {
		t.Fatal(err)
	}

	down.start(t)
	waitLong(t, "the record on the restarted home pod", func() bool {
		rec, ok := a.version(t, down)
		return ok && !rec.Released()
	})
	waitLong(t, "the vault synced on the restarted home pod", func() bool { return synced(down, a.ns, [32]byte(want.Fingerprint)) })
	upRec, _ := a.version(t, up)
	downRec, _ := a.version(t, down)
	if upRec.Version() != downRec.Version() {
		t.Fatal("the home pods hold different versions of the record")
	}
}

// TestReleaseReachesAPodThatWasDown: a release made while a home pod was
// down is applied there when it returns (its vault data is dropped), and
// the record it held is not brought back onto the others.
func TestReleaseReachesAPodThatWasDown(t *testing.T) {
	pods := startFleet(t, 3, 2, hosting.Policy{Admission: fleet.Open})
	a := newRecordAgent(t, 3, 2)
	up, away := pods[a.home[0]], pods[a.home[1]]
	if err := askFleet(t, a.dev, up, hosting.OpHost).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.dev.PutPrivate(a.ns, "notes/hello", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	syncOK(t, a.dev, a.ns, up.node.Addrs()[0].String())
	want, err := up.node.Store().Stats(a.ns)
	if err != nil {
		t.Fatal(err)
	}
	waitLong(t, "the vault on both home pods", func() bool { return synced(away, a.ns, [32]byte(want.Fingerprint)) })

	if err := away.node.Close(); err != nil {
		t.Fatal(err)
	}
	if err := askFleet(t, a.dev, up, hosting.OpRelease).Err(); err != nil {
		t.Fatal(err)
	}
	waitLong(t, "the release on the pod that stayed", func() bool { return !up.node.Hosted().Has(a.ns) })

	away.start(t)
	waitLong(t, "the release on the pod that was away", func() bool {
		rec, ok := a.version(t, away)
		return ok && rec.Released() && !away.node.Hosted().Has(a.ns)
	})
	waitLong(t, "the released vault's data dropped", func() bool {
		nss, err := away.node.Store().Namespaces()
		return err == nil && !slices.Contains(nss, a.ns)
	})
	// Several exchange intervals later, no pod holds the old record again.
	time.Sleep(4 * recordSyncFactor * away.cfg.ReplicateInterval)
	for _, o := range a.home {
		if rec, ok := a.version(t, pods[o]); !ok || !rec.Released() || pods[o].node.Hosted().Has(a.ns) {
			t.Fatalf("pod %d holds record %+v and hosts the vault %v after the release", o, rec, pods[o].node.Hosted().Has(a.ns))
		}
	}
}

// TestRecordsReturnToAPodStartedEmpty: a pod whose volume was replaced
// (records and vaults lost) gets back the record of every subject it is a
// home pod of, and only those, and hosts their vaults again.
func TestRecordsReturnToAPodStartedEmpty(t *testing.T) {
	const n, r = 3, 2
	pods := startFleet(t, n, r, hosting.Policy{Admission: fleet.Open})
	agents := make([]*recordAgent, 8)
	for i := range agents {
		agents[i] = newRecordAgent(t, n, r)
		if err := askFleet(t, agents[i].dev, pods[i%n], hosting.OpHost).Err(); err != nil {
			t.Fatal(err)
		}
	}
	lost := pods[0]
	mine := 0
	for _, a := range agents {
		if slices.Contains(a.home, 0) {
			mine++
			waitLong(t, "the record on the pod before it is lost", func() bool { _, ok := a.version(t, lost); return ok })
		}
	}
	if mine == 0 {
		t.Skip("no agent placed on pod 0") // 8 agents, 2 of 3 pods each: (1/3)^8
	}
	if err := lost.node.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(lost.cfg.DataDir); err != nil {
		t.Fatal(err)
	}
	lost.start(t)
	waitLong(t, "every record back on the emptied pod", func() bool {
		for _, a := range agents {
			_, ok := a.version(t, lost)
			if ok != slices.Contains(a.home, 0) {
				return false
			}
			if ok && !lost.node.Hosted().Has(a.ns) {
				return false
			}
		}
		return true
	})
}
