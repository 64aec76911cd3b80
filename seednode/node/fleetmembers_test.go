package node

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/hosting"
)

// writeFleetFile writes a configuration file whose fleet section lists the
// first count pods, self being pod self, and gives it a modification time
// later than any before.
func writeFleetFile(t *testing.T, path string, pods []*fleetPod, count, self int, mod time.Time) {
	t.Helper()
	c := config.Default()
	c.Fleet.Name, c.Fleet.Self, c.Fleet.Replicas, c.Fleet.Admission = testFleetName, self, 1, fleet.Open
	for _, p := range pods[:count] {
		c.Fleet.Members = append(c.Fleet.Members, p.info.Addrs[0].String()+"/p2p/"+p.info.ID.String())
	}
	data, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mod, mod); err != nil {
		t.Fatal(err)
	}
}

// TestFleetMembersFromFile: a running pod applies the membership its
// configuration file lists when the file changes, without a restart, and
// reports it; a membership that is another pod's, or a file that does not
// parse, is refused with the reason and the pod keeps what it had.
func TestFleetMembersFromFile(t *testing.T) {
	pods := newFleetPods(t, 3, 1, hosting.Policy{Admission: fleet.Open})
	setMembers(pods, 2, 0, 1)
	file := filepath.Join(t.TempDir(), "seed.yaml")
	mod := time.Now().Add(-time.Hour)
	writeFleetFile(t, file, pods, 2, 0, mod)
	load := func() (config.Config, error) {
		c, err := config.Load(file)
		if err != nil {
			return c, err
		}
		return c, c.Validate()
	}
	started, err := load()
	if err != nil {
		t.Fatal(err)
	}
	pods[0].cfg.WatchFleetMembers(file, started, load)
	pods[0].start(t)
	pods[1].start(t)
	n := pods[0].node
	started2 := n.fleetMembers()

	// The fleet grows to three: the file lists the new pod.
	writeFleetFile(t, file, pods, 3, 0, mod.Add(time.Minute))
	setMembers(pods, 3, 0, 1)
	want := pods[0].cfg.Fleet.Members.Version()
	if want == started2.Version() {
		t.Fatal("the versions of two memberships are equal")
	}
	deadline := time.Now().Add(30 * time.Second)
	for n.fleetMembers().Version() != want {
		if time.Now().After(deadline) {
			t.Fatalf("the pod did not apply the file's membership within 30 s: version %s, want %s", n.fleetMembers().Version(), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := adminSource{n}.FleetStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pods != 3 || st.Members != want || st.Self != 0 {
		t.Fatalf("the admin API reports pods %d, members %q, self %d; want 3, %q, 0", st.Pods, st.Members, st.Self, want)
	}
	if tk := n.hostingSvc.Ticket(); tk.Pods != 3 {
		t.Fatalf("the fleet ticket lists %d pods, want 3", tk.Pods)
	}
	if err := testutil.GatherAndCompare(n.reg, strings.NewReader(`
# HELP seedfleet_fleet_membership_changes_total New memberships of the fleet this pod applied while it ran (the fleet scaled).
# TYPE seedfleet_fleet_membership_changes_total counter
seedfleet_fleet_membership_changes_total 1
# HELP seedfleet_fleet_pods Pods in the fleet's membership this pod places by, the leaving ones included.
# TYPE seedfleet_fleet_pods gauge
seedfleet_fleet_pods 3
`), "seedfleet_fleet_membership_changes_total", "seedfleet_fleet_pods"); err != nil {
		t.Fatal(err)
	}

	// Another pod's membership, and a broken file, are refused.
	writeFleetFile(t, file, pods, 3, 1, mod.Add(2*time.Minute))
	if err := n.reloadFleetMembers(); err == nil || !strings.Contains(err.Error(), "another pod's") {
		t.Fatalf("another pod's membership: %v", err)
	}
	if err := os.WriteFile(file, []byte("fleet: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := n.reloadFleetMembers(); err == nil {
		t.Fatal("a file that does not parse was applied")
	}
	if got := n.fleetMembers().Version(); got != want {
		t.Fatalf("a refused membership changed the pod's: version %s, want %s", got, want)
	}
}
