package node

import (
	"context"
	"crypto/ed25519"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/hosting"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// scaleVault is one self-service vault of the scale test, with the
// fingerprint of its one entry.
type scaleVault struct {
	ns     vault.NamespaceID
	key    string // placement key
	fp     vault.Hash
	holder map[int]bool // pods that ever held it, synced
}

// scaleWatch counts, every few milliseconds, each vault's synced replicas
// (pods up that host it with its fingerprint) while pods restart.
type scaleWatch struct {
	pods   []*fleetPod
	vaults []*scaleVault
	mu     []sync.RWMutex // per pod: held to restart it
	up     []bool

	low     sync.Mutex // guards minSeen, lowAt and the vaults' holder sets
	minSeen int
	lowAt   string
	stop    chan struct{}
	done    chan struct{}
}

func (w *scaleWatch) count() {
	for _, v := range w.vaults {
		synced := 0
		for i, p := range w.pods {
			w.mu[i].RLock()
			if w.up[i] && p.node.Hosted().Has(v.ns) {
				if st, err := p.node.Store().Stats(v.ns); err == nil && st.Fingerprint == v.fp {
					synced++
					w.low.Lock()
					v.holder[i] = true
					w.low.Unlock()
				}
			}
			w.mu[i].RUnlock()
		}
		w.low.Lock()
		if synced < w.minSeen {
			w.minSeen, w.lowAt = synced, v.ns.Short()
		}
		w.low.Unlock()
	}
}

// holders are the pods that ever held v, synced (the watch adds to them).
func (w *scaleWatch) holders(v *scaleVault) []int {
	w.low.Lock()
	defer w.low.Unlock()
	return slices.Collect(maps.Keys(v.holder))
}

func (w *scaleWatch) run() {
	defer close(w.done)
	for {
		select {
		case <-w.stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		w.count()
	}
}

// restart restarts pod i with its current configuration.
func (w *scaleWatch) restart(t *testing.T, i int) {
	t.Helper()
	w.mu[i].Lock()
	defer w.mu[i].Unlock()
	if w.up[i] {
		if err := w.pods[i].node.Close(); err != nil {
			t.Fatal(err)
		}
	}
	w.pods[i].start(t)
	w.up[i] = true
}

// apply gives running pod i its current configuration's membership, as a
// pod does when the operator rewrites its configuration file.
func (w *scaleWatch) apply(t *testing.T, i int) {
	t.Helper()
	if err := w.pods[i].node.SetFleetMembers(w.pods[i].cfg.Fleet.Members); err != nil {
		t.Fatal(err)
	}
}

func (w *scaleWatch) halt(t *testing.T, i int) {
	t.Helper()
	w.mu[i].Lock()
	defer w.mu[i].Unlock()
	if err := w.pods[i].node.Close(); err != nil {
		t.Fatal(err)
	}
	w.up[i] = false
}

// settled reports whether every vault is hosted, synced, by exactly the
// pods of ordinals home(key), and by no other pod up.
func (w *scaleWatch) settled(home func(key string) []int) bool {
	for _, v := range w.vaults {
		want := home(v.key)
		for i, p := range w.pods {
			w.mu[i].RLock()
			ok := true
			if w.up[i] {
				has := p.node.Hosted().Has(v.ns)
				if has != slices.Contains(want, i) {
					ok = false
				} else if has {
					st, err := p.node.Store().Stats(v.ns)
					ok = err == nil && st.Fingerprint == v.fp
				}
			}
			w.mu[i].RUnlock()
			if !ok {
				return false
			}
		}
	}
	return true
}

func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 90 s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFleetScale: a fleet holding a few hundred self-service vaults (R=3)
// scales 3→4→3 pods, the running pods applying the new membership one by
// one without a restart. Watched throughout, no vault ever has fewer than R
// synced replicas up; only the vaults whose ranking changed ever reach a
// pod outside their ranking; in the end each vault is on exactly its R
// home pods, and the pod that left holds none of their data.
func TestFleetScale(t *testing.T) {
	const nVaults, r = 160, 3
	pol := hosting.Policy{Admission: fleet.Open, AdmissionsPerSecond: 100_000, RequestsPerRangePerMinute: 1_000_000}
	pods := newFleetPods(t, 4, r, pol)
	setMembers(pods, 3, 0, r)
	w := &scaleWatch{pods: pods, mu: make([]sync.RWMutex, 4), up: make([]bool, 4), minSeen: r, stop: make(chan struct{}), done: make(chan struct{})}
	for i := range 3 {
		w.restart(t, i)
	}
	home3 := func(key string) []int { return fleet.Top(key, 3, r) }
	home4 := func(key string) []int { return fleet.Top(key, 4, r) }

	// Admit the vaults through any pod; write one entry on a home pod.
	_, devKey, _ := ed25519.GenerateKey(nil)
	dev, err := p2p.NewHost(p2p.HostOptions{Key: devKey})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	for i := range nVaults {
		pub, nsKey, _ := ed25519.GenerateKey(nil)
		ns := vault.NamespaceID(pub)
		req := &hosting.Request{Op: hosting.OpHost, Kind: hosting.SubjectVault, Subject: pub, Fleet: testFleetName,
			Time: time.Now(), Vaults: []hosting.VaultAsk{{Namespace: ns}}}
		req.Nonce[0], req.Nonce[1] = byte(i), byte(i>>8)
		req.Sign(nsKey)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ans, err := hosting.Ask(ctx, dev, pods[i%3].info, req)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if err := ans.Err(); err != nil {
			t.Fatalf("vault %d: %v", i, err)
		}
		v := &scaleVault{ns: ns, key: hosting.PlacementKey(hosting.SubjectVault, pub), holder: map[int]bool{}}
		first := pods[home3(v.key)[0]]
		waitFor(t, func() bool { return first.node.Hosted().Has(ns) })
		value := []byte("entry of vault " + ns.Short())
		e := vault.Entry{Namespace: ns, Key: []byte("k"), Author: vault.AuthorID(pub), Hash: vault.HashOf(value),
			Size: uint64(len(value)), Timestamp: uint64(time.Now().UnixMicro())}
		se, err := vault.Sign(e, nsKey, vault.Consent{Kind: vault.ConsentNamespaceSig}, nsKey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := first.node.Store().Insert([]vault.Item{{Entry: se, Content: value}}, 0, true); err != nil {
			t.Fatal(err)
		}
		st, err := first.node.Store().Stats(ns)
		if err != nil {
			t.Fatal(err)
		}
		v.fp = st.Fingerprint
		w.vaults = append(w.vaults, v)
	}
	waitLong(t, "the vaults replicated on 3 pods", func() bool { return w.settled(home3) })
	go w.run()
	defer func() {
		select {
		case <-w.stop:
		default:
			close(w.stop)
		}
		<-w.done
	}()

	// 3 → 4: the new pod starts, then the others learn of it one by one.
	setMembers(pods, 4, 0, r)
	w.restart(t, 3)
	for i := range 3 {
		w.apply(t, i)
	}
	waitLong(t, "the vaults on their 4-pod homes", func() bool { return w.settled(home4) })
	moved := 0
	for _, v := range w.vaults {
		changed := !slices.Equal(sorted(home3(v.key)), sorted(home4(v.key)))
		if changed {
			moved++
		}
		for _, o := range w.holders(v) {
			if !slices.Contains(home3(v.key), o) && !slices.Contains(home4(v.key), o) {
				t.Errorf("vault %s reached pod %d, in neither ranking", v.ns.Short(), o)
			}
			if !changed && !slices.Contains(home3(v.key), o) {
				t.Errorf("vault %s, whose ranking did not change, reached pod %d", v.ns.Short(), o)
			}
		}
	}
	t.Logf("3→4: %d of %d vaults moved a replica (ideal share %.0f)", moved, nVaults, float64(nVaults*r)/4)

	// 4 → 3: the last pod leaves; the others learn it first.
	setMembers(pods, 4, 1, r)
	for i := range 4 {
		w.apply(t, i)
	}
	waitLong(t, "the vaults handed back by the leaving pod", func() bool { return w.settled(home3) })
	left, err := pods[3].node.Store().Namespaces()
	if err != nil {
		t.Fatal(err)
	}
	waitLong(t, "the leaving pod's data dropped", func() bool {
		left, err = pods[3].node.Store().Namespaces()
		return err == nil && len(left) == 0
	})
	w.halt(t, 3)
	setMembers(pods, 3, 0, r)
	for i := range 3 {
		w.apply(t, i)
	}
	waitLong(t, "the vaults on their 3-pod homes", func() bool { return w.settled(home3) })
	close(w.stop)
	<-w.done
	// The pods up always hold every vault R times over: a holder drops its
	// replica only once the successor synced it, and no pod restarts.
	if w.minSeen < r {
		t.Fatalf("vault %s had %d synced replicas at one point, fewer than R = %d: a replica was dropped before its successor synced", w.lowAt, w.minSeen, r)
	}
}

func sorted(s []int) []int {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
