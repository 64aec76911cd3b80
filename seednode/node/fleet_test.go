package node

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/seedfleet/seedfleet/internal/p2ptest"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/hosting"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
)

const testFleetName = "default/seeds"

// fleetPod is one pod of a test fleet: its configuration, kept to restart it.
type fleetPod struct {
	cfg  Config
	node *Node
	info peer.AddrInfo
}

// startFleet runs n seeds on loopback as one fleet with replicas r: each
// pod's key and port are chosen first, so every pod's configuration lists
// all of them, as the operator writes it.
func startFleet(t *testing.T, n, r int, p hosting.Policy) []*fleetPod {
	t.Helper()
	pods := newFleetPods(t, n, r, p)
	for _, pod := range pods {
		pod.start(t)
	}
	return pods
}

// newFleetPods configures n pods as one fleet, without starting them.
func newFleetPods(t *testing.T, n, r int, p hosting.Policy) []*fleetPod {
	t.Helper()
	p.Fleet = testFleetName
	pods := make([]*fleetPod, n)
	for i := range pods {
		_, key, _ := ed25519.GenerateKey(nil)
		dir := t.TempDir()
		keyFile := filepath.Join(dir, "pod.key")
		if err := identity.Save(keyFile, key); err != nil {
			t.Fatal(err)
		}
		id, err := identity.PeerID(key.Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		addr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p2ptest.FreePort(t))
		info, err := p2p.ParsePeerAddr(addr + "/p2p/" + id.String())
		if err != nil {
			t.Fatal(err)
		}
		pods[i] = &fleetPod{info: info, cfg: Config{DataDir: filepath.Join(dir, "data"), IdentityFile: keyFile,
			Listen: []string{addr}, AdminListen: "off", DHT: DHTConfig{Mode: config.DHTOff},
			ReplicateInterval: 300 * time.Millisecond, Fleet: &FleetConfig{Policy: p}}}
	}
	setMembers(pods, len(pods), 0, r)
	return pods
}

// setMembers writes into the configurations of pods[:count] a fleet of
// those pods, the last leaving of them leaving, as the operator does when
// the fleet scales (a pod reads it when it starts).
func setMembers(pods []*fleetPod, count, leaving, r int) {
	m := fleet.Members{Replicas: r, Leaving: leaving}
	for _, pod := range pods[:count] {
		m.Pods = append(m.Pods, pod.info)
	}
	for i, pod := range pods[:count] {
		mi := m
		mi.Self = i
		pod.cfg.Fleet = &FleetConfig{Members: mi, Policy: pod.cfg.Fleet.Policy}
	}
}

func (p *fleetPod) start(t *testing.T) {
	t.Helper()
	n, err := New(p.cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.node = n
	t.Cleanup(func() { n.Close() })
}

func (p *fleetPod) restart(t *testing.T) {
	t.Helper()
	if err := p.node.Close(); err != nil {
		t.Fatal(err)
	}
	p.start(t)
}

func askFleet(t *testing.T, d *device, via *fleetPod, op hosting.Op) *hosting.Answer {
	t.Helper()
	req, err := d.HostingRequest(client.HostingAsk{Op: op, Fleet: testFleetName})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ans, err := d.AskFleet(ctx, []peer.AddrInfo{via.info}, req)
	if err != nil {
		t.Fatal(err)
	}
	return ans
}

// TestSelfServiceHosting: an agent's device asks one pod of a three-pod
// fleet to host its vaults; exactly the agent's two home pods host them,
// an entry written through one reaches the other, the records survive a
// restart, and a release stops the hosting everywhere.
func TestSelfServiceHosting(t *testing.T) {
	pods := startFleet(t, 3, 2, hosting.Policy{Admission: fleet.Open})
	A := newDevice(t)
	info, err := A.InitAgent("laptop")
	if err != nil {
		t.Fatal(err)
	}
	ns := info.Namespace
	home := fleet.Top(identity.DIDKey(A.mustRoot(t)), 3, 2)
	other := slices.IndexFunc([]int{0, 1, 2}, func(o int) bool { return !slices.Contains(home, o) })

	// Ask through the pod that is not a home pod: it forwards.
	ans := askFleet(t, A, pods[other], hosting.OpHost)
	if err := ans.Err(); err != nil {
		t.Fatal(err)
	}
	if len(ans.Seeds) != 2 || ans.Seeds[0].ID != pods[home[0]].info.ID || ans.Seeds[1].ID != pods[home[1]].info.ID {
		t.Fatalf("answer names seeds %v, want the home pods %v", ans.Seeds, home)
	}
	for o, pod := range pods {
		want := slices.Contains(home, o)
		waitFor(t, func() bool { return pod.node.Hosted().Has(ns) == want })
	}

	// A device writes through the first home pod; the second gets it by
	// replication.
	if _, err := A.PutPrivate(ns, "notes/hello", []byte("hello fleet")); err != nil {
		t.Fatal(err)
	}
	syncOK(t, A, ns, pods[home[0]].node.Addrs()[0].String())
	want, err := pods[home[0]].node.Store().Stats(ns)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		got, err := pods[home[1]].node.Store().Stats(ns)
		return err == nil && got.Fingerprint == want.Fingerprint
	})

	// Status counts the entries; a restart keeps the record.
	pods[home[1]].restart(t)
	if !pods[home[1]].node.Hosted().Has(ns) {
		t.Fatal("a restarted home pod forgot the self-service vault")
	}
	st := askFleet(t, A, pods[home[1]], hosting.OpStatus)
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	if len(st.Vaults) != 1 || st.Vaults[0].Entries.Used != want.Entries || st.Vaults[0].Bytes.Limit != hosting.DefaultQuotaBytes {
		t.Fatalf("status %+v, want 1 vault with %d entries", st.Vaults, want.Entries)
	}

	// Metrics: a self-service vault counts in the totals, with no series of
	// its own (a fleet may hold millions).
	reg := prometheus.NewRegistry()
	if err := reg.Register(newVaultCollector(pods[home[0]].node)); err != nil {
		t.Fatal(err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP seedfleet_hosted_vaults Vaults this seed hosts, by how they were placed (Placed: by an administrator; SelfService: by a public fleet's records).
# TYPE seedfleet_hosted_vaults gauge
seedfleet_hosted_vaults{placement="Placed"} 0
seedfleet_hosted_vaults{placement="SelfService"} 1
`), "seedfleet_hosted_vaults", "seedfleet_vault_entries"); err != nil {
		t.Fatal(err)
	}

	// The quota applies: the vault's limits are the record's.
	if lim := pods[home[0]].node.limitsFor(ns); lim.MaxBytes != hosting.DefaultQuotaBytes || lim.MaxEntries != hosting.DefaultQuotaEntries {
		t.Fatalf("hosted vault's limits %+v, want the fleet's default quota", lim)
	}

	rel := askFleet(t, A, pods[other], hosting.OpRelease)
	if err := rel.Err(); err != nil {
		t.Fatal(err)
	}
	for _, o := range home {
		waitFor(t, func() bool { return !pods[o].node.Hosted().Has(ns) })
	}
}

func TestFleetConfigOfAnotherPod(t *testing.T) {
	pods := startFleet(t, 2, 1, hosting.Policy{Admission: fleet.Open})
	cfg := pods[0].cfg
	cfg.Fleet = &FleetConfig{Members: cfg.Fleet.Members, Policy: cfg.Fleet.Policy}
	cfg.Fleet.Members.Self = 1
	cfg.DataDir, cfg.Listen = t.TempDir(), []string{"/ip4/127.0.0.1/tcp/0"}
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "the membership is another pod's") {
		t.Fatalf("a pod started with another pod's ordinal: %v", err)
	}
}

func TestClosedFleetRefuses(t *testing.T) {
	pods := startFleet(t, 2, 1, hosting.Policy{})
	A := newDevice(t)
	if _, err := A.InitAgent("laptop"); err != nil {
		t.Fatal(err)
	}
	ans := askFleet(t, A, pods[0], hosting.OpHost)
	if ans.Reason != hosting.ReasonClosed {
		t.Fatalf("a closed fleet answered %v %q", ans.Reason, ans.Message)
	}
}

func (d *device) mustRoot(t *testing.T) ed25519.PublicKey {
	t.Helper()
	a, err := d.Agent()
	if err != nil {
		t.Fatal(err)
	}
	root, err := identity.ParseDIDKey(a.DID)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestLeavingPodCountsWhatItStillHolds: a pod told it is leaving holds an
// agent's vault that it cannot hand off yet (the new home pod is down), and
// says so in its fleet figures, which the operator waits on before it
// removes the pod.
func TestLeavingPodCountsWhatItStillHolds(t *testing.T) {
	pods := startFleet(t, 2, 1, hosting.Policy{Admission: fleet.Open})
	var A *device
	for A == nil || fleet.Top(identity.DIDKey(A.mustRoot(t)), 2, 1)[0] != 1 {
		A = newDevice(t)
		if _, err := A.InitAgent("laptop"); err != nil {
			t.Fatal(err)
		}
	}
	if err := askFleet(t, A, pods[1], hosting.OpHost).Err(); err != nil {
		t.Fatal(err)
	}
	if err := pods[0].node.Close(); err != nil {
		t.Fatal(err)
	}
	setMembers(pods, 2, 1, 1)
	pods[1].restart(t)
	st, err := countFleet(context.Background(), pods[1].node)
	if err != nil {
		t.Fatal(err)
	}
	if st.HostedVaults != 1 {
		t.Fatalf("the leaving pod reports %d self-service vaults held, want the 1 it cannot hand off yet", st.HostedVaults)
	}
}
