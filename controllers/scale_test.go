package controllers_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1 "k8s.io/api/apps/v1"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/blobs"
	devclient "github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/node"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// The seeds of these tests are real seed nodes on loopback, one loopback
// address per pod (127.N.x.y stands in for the pod IP), run with the
// identity the operator created for the pod. The test plays the kubelet:
// it creates the Pod objects with their IPs; the operator reads and
// instructs the seeds through their admin API exactly as in a cluster.
const (
	testP2PPort   = 24101
	testAdminPort = 27411
)

// loopbackNet is the second octet of every pod address of this run, drawn
// at random: the ports are the spec's and fixed, so two runs of these tests
// at once on one machine would otherwise bind the same addresses.
var loopbackNet = 1 + rand.IntN(254)

type fleet struct {
	t      *testing.T
	ns, sn string
	ipBase int
	mu     sync.Mutex // seeds: the test starts and stops them while a watcher reads them
	seeds  map[int]*node.Node
	dirs   map[int]string
	base   string // holds dirs; removed after the seeds closed (they flush on Close)
}

func newFleet(t *testing.T, ns, sn string, ipBase int) *fleet {
	f := &fleet{t: t, ns: ns, sn: sn, ipBase: ipBase, seeds: map[int]*node.Node{}, dirs: map[int]string{}, base: t.TempDir()}
	t.Cleanup(func() {
		for _, n := range f.seeds {
			n.Close()
		}
	})
	return f
}

func (f *fleet) ip(o int) string { return fmt.Sprintf("127.%d.%d.%d", loopbackNet, f.ipBase, 10+o) }

// start runs pod o's seed with the operator's identity Secret and admin
// token, and creates its Pod object.
func (f *fleet) start(o int) {
	t := f.t
	t.Helper()
	pod := fmt.Sprintf("%s-%d", f.sn, o)
	secret, token := &corev1.Secret{}, &corev1.Secret{}
	eventually(t, 30*time.Second, "identity Secret of "+pod, func() error {
		if err := get(t, secret, f.ns, pod+"-identity"); err != nil {
			return err
		}
		return get(t, token, f.ns, f.sn+"-admin-token")
	})
	if f.dirs[o] == "" {
		f.dirs[o] = filepath.Join(f.base, fmt.Sprint(o))
		if err := os.MkdirAll(f.dirs[o], 0o700); err != nil {
			t.Fatal(err)
		}
	}
	keyFile := filepath.Join(f.dirs[o], "identity.key")
	if err := os.WriteFile(keyFile, secret.Data["identity.key"], 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Config{
		DataDir:           filepath.Join(f.dirs[o], "data"),
		IdentityFile:      keyFile,
		Listen:            []string{fmt.Sprintf("/ip4/%s/tcp/%d", f.ip(o), testP2PPort)},
		AdminListen:       fmt.Sprintf("%s:%d", f.ip(o), testAdminPort),
		AdminToken:        strings.TrimSpace(string(token.Data["token"])),
		ReplicateInterval: 300 * time.Millisecond,
		GCInterval:        time.Second,
		DHT:               node.DHTConfig{Mode: config.DHTOff},
	})
	if err != nil {
		t.Fatalf("starting %s: %v", pod, err)
	}
	f.mu.Lock()
	f.seeds[o] = n
	f.mu.Unlock()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: pod, Labels: map[string]string{
		"seedfleet.io/seednode": f.sn, "app.kubernetes.io/component": "seed"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "seed", Image: "seedfleet:test"}}}}
	mustCreate(t, p)
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: f.ip(o), PodIPs: []corev1.PodIP{{IP: f.ip(o)}},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	if err := k8s.Status().Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

// stop ends pod o's seed and deletes its Pod object (the StatefulSet
// controller's part when it scales down).
func (f *fleet) stop(o int) {
	f.t.Helper()
	f.mu.Lock()
	n := f.seeds[o]
	delete(f.seeds, o)
	f.mu.Unlock()
	if n != nil {
		n.Close()
	}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: fmt.Sprintf("%s-%d", f.sn, o)}}
	if err := k8s.Delete(context.Background(), p, client.GracePeriodSeconds(0)); err != nil && !isNotFound(err) {
		f.t.Fatal(err)
	}
}

// syncedHolders returns, per vault, the running seeds (in order) hosting it
// with the given fingerprint and every blob. complete is false when a
// running seed did not answer (a busy machine): that is no evidence of a
// missing replica, so the caller ignores the observation.
func (f *fleet) syncedHolders(ctx context.Context, want map[string]string) (out map[string][]int, complete bool) {
	f.mu.Lock()
	seeds := maps.Clone(f.seeds)
	f.mu.Unlock()
	out = map[string][]int{}
	for o, n := range seeds {
		st, err := admin.NewClient(n.AdminURL(), admin.WithRetry(1, 0)).Status(ctx)
		if err != nil {
			f.mu.Lock()
			_, running := f.seeds[o]
			f.mu.Unlock()
			if running {
				return nil, false
			}
			continue // stopped meanwhile: it holds nothing
		}
		for _, v := range st.Vaults {
			if fp, ok := want[v.Namespace]; ok && v.Fingerprint == fp && v.BlobsMissing == 0 {
				out[v.Namespace] = append(out[v.Namespace], o)
			}
		}
	}
	for _, holders := range out {
		slices.Sort(holders)
	}
	return out, true
}

func allVaultsReady(t *testing.T, ns string, names []string, pods int32) error {
	for _, name := range names {
		av := &seedv1.AgentVault{}
		if err := get(t, av, ns, name); err != nil {
			return err
		}
		if err := wantCondition(av.Status.Conditions, seedv1.ConditionReady, metav1.ConditionTrue, seedv1.ReasonInSync); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for _, r := range av.Status.Placement {
			if o := ordinal(r.Pod); o >= int(pods) {
				return fmt.Errorf("%s still placed on %s", name, r.Pod)
			}
		}
	}
	return nil
}

func ordinal(pod string) int {
	o, err := strconv.Atoi(pod[strings.LastIndex(pod, "-")+1:])
	if err != nil {
		return -1
	}
	return o
}

func placementOf(t *testing.T, ns string, names []string) map[string][]string {
	out := map[string][]string{}
	for _, name := range names {
		av := &seedv1.AgentVault{}
		if err := get(t, av, ns, name); err != nil {
			t.Fatal(err)
		}
		for _, r := range av.Status.Placement {
			out[name] = append(out[name], r.Pod)
		}
	}
	return out
}

func TestScalingMovesFewVaultsAndNeverDropsAReplicaBeforeItsSuccessorSynced(t *testing.T) {
	ns := newNamespace(t)
	sn := seedNode(ns, "fleet", 3)
	sn.Spec.Ports = seedv1.PortsSpec{P2P: testP2PPort, Admin: testAdminPort}
	sn.Spec.Expose.ServiceType = seedv1.ServiceTypeNone
	mustCreate(t, sn)
	f := newFleet(t, ns, "fleet", 1)
	for o := range 3 {
		f.start(o)
	}

	// A device writes to 8 vaults (entries and a blob each) through the seeds
	// the AgentVault status names.
	device, err := devclient.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer device.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var names []string
	ids := map[string]vault.NamespaceID{}
	for i := range 8 {
		id, err := device.CreateVault()
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("vault-%d", i)
		names = append(names, name)
		ids[name] = id
		mustCreate(t, agentVault(t, ns, name, "fleet", id.String(), 2))
	}
	eventually(t, 60*time.Second, "empty vaults ready", func() error { return allVaultsReady(t, ns, names, 3) })
	for i, name := range names {
		id := ids[name]
		for k := range 3 {
			if _, err := device.Put(id, []byte(fmt.Sprintf("note/%d", k)), []byte(fmt.Sprintf("%s %d", name, k))); err != nil {
				t.Fatal(err)
			}
		}
		blob := make([]byte, 100<<10)
		for j := range blob {
			blob[j] = byte(i*31 + j*7)
		}
		if _, err := device.Put(id, []byte("photo"), blob); err != nil {
			t.Fatal(err)
		}
		av := &seedv1.AgentVault{}
		if err := get(t, av, ns, name); err != nil {
			t.Fatal(err)
		}
		if len(av.Status.SeedAddrs) == 0 {
			t.Fatalf("%s has no seed addresses", name)
		}
		if _, err := device.Sync(ctx, id, av.Status.SeedAddrs[0], devclient.SyncOptions{}); err != nil {
			t.Fatalf("syncing %s with %s: %v", name, av.Status.SeedAddrs[0], err)
		}
	}
	// The second replica of each vault catches up from the first.
	fingerprints := map[string]string{}
	eventually(t, 60*time.Second, "replicas in sync with 4 entries", func() error {
		if err := allVaultsReady(t, ns, names, 3); err != nil {
			return err
		}
		for _, name := range names {
			av := &seedv1.AgentVault{}
			if err := get(t, av, ns, name); err != nil {
				return err
			}
			for _, r := range av.Status.Placement {
				if r.Entries != 4 || r.BlobsMissing != 0 {
					return fmt.Errorf("%s on %s: %d entries, %d blobs missing", name, r.Pod, r.Entries, r.BlobsMissing)
				}
			}
		}
		return nil
	})
	for o, n := range f.seeds {
		st, err := admin.NewClient(n.AdminURL()).Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range st.Vaults {
			if prev, ok := fingerprints[v.Namespace]; ok && prev != v.Fingerprint {
				t.Fatalf("pod %d disagrees on vault %s", o, v.Namespace)
			}
			fingerprints[v.Namespace] = v.Fingerprint
		}
	}
	if len(fingerprints) != len(names) {
		t.Fatalf("%d vaults hosted, want %d", len(fingerprints), len(names))
	}

	// Watch, all through the moves, how many synced replicas each vault has.
	var (
		mu       sync.Mutex
		fewest   = map[string]int{}
		stopSpy  = make(chan struct{})
		spyDone  = make(chan struct{})
		observed int
	)
	go func() {
		defer close(spyDone)
		for {
			select {
			case <-stopSpy:
				return
			case <-time.After(50 * time.Millisecond):
			}
			// The seeds are read one after another, so one pass is no
			// snapshot: a successor read just before it synced and a
			// leaving replica read just after it dropped would count as
			// neither. Two passes that agree on a vault's holders are: every
			// seed kept its state from its first read to its second, so at
			// the instant between the passes the vault had exactly those.
			first, complete := f.syncedHolders(ctx, fingerprints)
			if !complete {
				continue
			}
			holders, complete := f.syncedHolders(ctx, fingerprints)
			if !complete {
				continue
			}
			mu.Lock()
			for v := range fingerprints {
				if !slices.Equal(first[v], holders[v]) {
					continue // moving right now
				}
				if n, seen := fewest[v]; !seen || len(holders[v]) < n {
					fewest[v] = len(holders[v])
				}
			}
			observed++
			mu.Unlock()
		}
	}()
	before := placementOf(t, ns, names)

	// Scale up: pod 3 joins; only vaults that rank it in their top 2 move.
	patchReplicas(t, ns, "fleet", 4)
	f.start(3)
	eventually(t, 90*time.Second, "vaults ready on 4 pods", func() error {
		if err := allVaultsReady(t, ns, names, 4); err != nil {
			return err
		}
		for _, name := range names {
			av := &seedv1.AgentVault{}
			_ = get(t, av, ns, name)
			if len(av.Status.Placement) != 2 {
				return fmt.Errorf("%s placed on %d pods", name, len(av.Status.Placement))
			}
		}
		return nil
	})
	afterUp := placementOf(t, ns, names)
	moved := 0
	for _, name := range names {
		if !slices.Equal(before[name], afterUp[name]) {
			moved++
			if !slices.Contains(afterUp[name], "fleet-3") {
				t.Fatalf("%s moved from %v to %v without the new pod", name, before[name], afterUp[name])
			}
			kept := 0
			for _, p := range afterUp[name] {
				if slices.Contains(before[name], p) {
					kept++
				}
			}
			if kept != 1 {
				t.Fatalf("%s moved both replicas: %v -> %v", name, before[name], afterUp[name])
			}
		}
	}
	if moved == 0 || moved == len(names) {
		t.Fatalf("%d of %d vaults moved when a 4th pod joined; rendezvous hashing moves about half", moved, len(names))
	}
	t.Logf("scale 3 -> 4 moved %d of %d vaults", moved, len(names))

	// Scale down: the StatefulSet keeps pod 3 until its vaults have synced
	// elsewhere; only then does it shrink.
	patchReplicas(t, ns, "fleet", 3)
	eventually(t, 90*time.Second, "StatefulSet back to 3", func() error {
		sts := &appsv1.StatefulSet{}
		if err := get(t, sts, ns, "fleet"); err != nil {
			return err
		}
		if *sts.Spec.Replicas != 3 {
			return fmt.Errorf("StatefulSet replicas %d", *sts.Spec.Replicas)
		}
		return allVaultsReady(t, ns, names, 3)
	})
	f.stop(3)
	eventually(t, 30*time.Second, "vaults ready on 3 pods", func() error { return allVaultsReady(t, ns, names, 3) })

	close(stopSpy)
	<-spyDone
	mu.Lock()
	defer mu.Unlock()

	// Deleting an AgentVault drops its replicas and blobs from the pods
	// before the object goes.
	gone := names[0]
	goneID := ids[gone]
	photo, err := device.Store.Get(goneID, []byte("photo"))
	if err != nil || len(photo) != 1 {
		t.Fatalf("device's own photo entry: %v %v", photo, err)
	}
	if err := k8s.Delete(ctx, &seedv1.AgentVault{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: gone}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "AgentVault deleted", func() error {
		if err := get(t, &seedv1.AgentVault{}, ns, gone); !isNotFound(err) {
			return fmt.Errorf("still there (%v)", err)
		}
		return nil
	})
	eventually(t, 30*time.Second, "replicas and blobs dropped", func() error {
		for o, n := range f.seeds {
			if n.Hosted().Has(goneID) {
				return fmt.Errorf("pod %d still hosts it", o)
			}
			present, err := n.Store().Namespaces()
			if err != nil {
				return err
			}
			if slices.Contains(present, goneID) {
				return fmt.Errorf("pod %d still stores its entries", o)
			}
			if st, err := n.Blobs().Stat(photo[0].Entry.Hash); err == nil && st.State != blobs.Missing {
				return fmt.Errorf("pod %d still has its blob (%v)", o, st.State)
			}
		}
		return nil
	})

	if observed < 2 {
		t.Fatalf("only %d observations of the replicas", observed)
	}
	for v, n := range fewest {
		if n < 2 {
			t.Errorf("vault %s had only %d synced replicas at some point during the moves", v[:12], n)
		}
	}
}

func patchReplicas(t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	sn := &seedv1.SeedNode{}
	if err := get(t, sn, ns, name); err != nil {
		t.Fatal(err)
	}
	orig := sn.DeepCopy()
	sn.Spec.Replicas = replicas
	if err := k8s.Patch(context.Background(), sn, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
}
