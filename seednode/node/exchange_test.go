package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/internal/p2ptest"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// replicaPod is a seed of a test fleet of administrator-placed replicas.
type replicaPod struct {
	*Node
	reg *prometheus.Registry
}

// startReplicaPods runs n seeds on loopback that replicate every interval.
func startReplicaPods(t *testing.T, n int, interval time.Duration) []*replicaPod {
	t.Helper()
	pods := make([]*replicaPod, n)
	for i := range pods {
		reg := prometheus.NewRegistry()
		pods[i] = &replicaPod{reg: reg, Node: startNode(t, Config{Registry: reg, AdminListen: "off",
			DHT: DHTConfig{Mode: config.DHTOff}, ReplicateInterval: interval})}
	}
	return pods
}

// place hosts vaults on pod, naming the peers as their replica peers.
func (p *replicaPod) place(vaults []vault.NamespaceID, peers ...*replicaPod) {
	pl := Placement{Vaults: vaults, Peers: map[vault.NamespaceID][]peer.AddrInfo{}}
	for _, ns := range vaults {
		for _, o := range peers {
			pl.Peers[ns] = append(pl.Peers[ns], peer.AddrInfo{ID: o.Host().ID(), Addrs: o.Host().Addrs()})
		}
	}
	p.SetPlacement(pl)
}

// replicaSyncs counts the replica syncs pods started (for reason, or all).
func replicaSyncs(t *testing.T, reason string, pods ...*replicaPod) float64 {
	t.Helper()
	var labels map[string]string
	if reason != "" {
		labels = map[string]string{"reason": reason}
	}
	sum := 0.0
	for _, p := range pods {
		sum += counterValue(t, p.reg, "seedfleet_replica_syncs_total", labels)
	}
	return sum
}

// exchanges counts the exchanges pods asked with the given outcome (any
// outcome if empty).
func exchanges(t *testing.T, outcome string, pods ...*replicaPod) float64 {
	t.Helper()
	labels := map[string]string{"role": "ask"}
	if outcome != "" {
		labels["outcome"] = outcome
	}
	sum := 0.0
	for _, p := range pods {
		sum += counterValue(t, p.reg, "seedfleet_replica_exchanges_total", labels)
	}
	return sum
}

// waitExchanges waits until pods asked n more exchanges that found
// everything equal.
func waitExchanges(t *testing.T, n float64, pods ...*replicaPod) {
	t.Helper()
	waitOutcome(t, outcomeEqual, n, pods...)
}

// waitOutcome waits until pods asked n more exchanges with outcome.
func waitOutcome(t *testing.T, outcome string, n float64, pods ...*replicaPod) {
	t.Helper()
	want := exchanges(t, outcome, pods...) + n
	eventually(t, "exchanges", func() error {
		if got := exchanges(t, outcome, pods...); got < want {
			return fmt.Errorf("%v exchanges that found %s, want %v", got, outcome, want)
		}
		return nil
	})
}

func newVaults(t *testing.T, n int) []vault.NamespaceID {
	out := make([]vault.NamespaceID, n)
	for i := range out {
		out[i] = newNS(t)
	}
	return out
}

// copyEntry inserts, straight into st, the entry the device holds under key:
// a change no session brought, so only an exchange can find it.
func copyEntry(t *testing.T, dev *client.Home, st *vault.Store, ns vault.NamespaceID, key string) {
	t.Helper()
	items, err := dev.Store.Get(ns, []byte(key))
	if err != nil || len(items) != 1 {
		t.Fatalf("device's entry %s: %v %v", key, items, err)
	}
	if _, err := st.Insert(items, vault.NewOrigin(), true); err != nil {
		t.Fatal(err)
	}
}

func fingerprintOf(t *testing.T, st *vault.Store, ns vault.NamespaceID) vault.Hash {
	t.Helper()
	s, err := st.Stats(ns)
	if err != nil {
		t.Fatal(err)
	}
	return s.Fingerprint
}

// TestIdleReplicasOpenNoSessions: three seeds sharing 200 vaults (some
// holding entries) keep exchanging digests, and while nothing changes no
// sync session starts.
func TestIdleReplicasOpenNoSessions(t *testing.T) {
	dev, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	var vaults []vault.NamespaceID
	for range 5 {
		ns, err := dev.CreateVault()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dev.Put(ns, []byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		vaults = append(vaults, ns)
	}
	vaults = append(vaults, newVaults(t, 195)...)
	pods := startReplicaPods(t, 3, 200*time.Millisecond)
	for _, ns := range vaults[:5] {
		for _, p := range pods {
			copyEntry(t, dev, p.Store(), ns, "k")
		}
	}
	for i, p := range pods {
		p.place(vaults, pods[(i+1)%3], pods[(i+2)%3])
	}
	waitExchanges(t, 3, pods...)
	before := replicaSyncs(t, "", pods...)
	sessions := 0.0
	for _, p := range pods {
		sessions += counterValue(t, p.reg, "seedfleet_vault_sync_sessions_total", nil)
	}
	waitExchanges(t, 10, pods...)
	if got := replicaSyncs(t, "", pods...); got != before {
		t.Fatalf("idle replicas started %v sync sessions while exchanging digests", got-before)
	}
	after := 0.0
	for _, p := range pods {
		after += counterValue(t, p.reg, "seedfleet_vault_sync_sessions_total", nil)
	}
	if after != sessions {
		t.Fatalf("%v vault sync sessions ran between idle replicas", after-sessions)
	}
}

// TestDifferingVaultGetsOneSession: among 100 shared vaults, one changes on
// one seed without any session (as after a lost push): the next exchange
// finds it, and exactly one sync session makes the two alike again.
func TestDifferingVaultGetsOneSession(t *testing.T) {
	dev, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	ns, err := dev.CreateVault()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Put(ns, []byte("late"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	vaults := append(newVaults(t, 99), ns)
	pods := startReplicaPods(t, 2, 200*time.Millisecond)
	a, b := pods[0], pods[1]
	a.place(vaults, b)
	b.place(vaults, a)
	waitExchanges(t, 2, pods...)
	before := replicaSyncs(t, "", pods...)
	differing := counterValue(t, a.reg, "seedfleet_replica_vaults_differing_total", nil)

	copyEntry(t, dev, b.Store(), ns, "late")
	eventually(t, "the change reaches the other seed", func() error {
		if fa, fb := fingerprintOf(t, a.Store(), ns), fingerprintOf(t, b.Store(), ns); fa != fb {
			return errors.New("fingerprints differ")
		}
		return nil
	})
	waitExchanges(t, 3, pods...)
	if got := replicaSyncs(t, "", pods...) - before; got != 1 {
		t.Fatalf("%v sync sessions for one differing vault, want 1", got)
	}
	if got := replicaSyncs(t, reasonDiffer.String(), pods...); got != 1 {
		t.Fatalf("%v sessions started for a difference, want 1", got)
	}
	if got := counterValue(t, a.reg, "seedfleet_replica_vaults_differing_total", nil) +
		counterValue(t, b.reg, "seedfleet_replica_vaults_differing_total", nil) - differing; got < 1 {
		t.Fatal("no differing vault counted")
	}
}

// TestEmptyVaultNotPlacedThereOpensNoSession: vaults just admitted reach
// the pods one by one, so an exchange often finds one that this pod holds,
// empty, and the other does not place yet. Nothing can move: the exchange
// opens no session for it, and finds the pods alike once both place it.
func TestEmptyVaultNotPlacedThereOpensNoSession(t *testing.T) {
	shared, onlyA := newVaults(t, 50), newVaults(t, 20)
	pods := startReplicaPods(t, 2, 200*time.Millisecond)
	a, b := pods[0], pods[1]
	a.place(append(slices.Clone(shared), onlyA...), b)
	b.place(shared, a)
	waitOutcome(t, "", 4, pods...)
	if got := replicaSyncs(t, "", pods...); got != 0 {
		t.Fatalf("%v sync sessions for empty vaults one pod does not place yet, want 0", got)
	}
	if got := exchanges(t, outcomeDiffer, pods...); got != 0 {
		t.Fatalf("%v exchanges found a difference, want 0", got)
	}
	// Not in sync with a pod that does not hold it: the status says so.
	if st := a.replicas.status(onlyA[0]); len(st) != 1 || !st[0].LastSync.IsZero() {
		t.Fatalf("status of an empty vault the other pod does not place: %+v, want one replica never synced", st)
	}
	b.place(append(slices.Clone(shared), onlyA...), a)
	waitExchanges(t, 2, pods...)
	if got := replicaSyncs(t, "", pods...); got != 0 {
		t.Fatalf("%v sync sessions once both place the empty vaults, want 0", got)
	}
	eventually(t, "the status shows the empty vault in sync once both place it", func() error {
		if st := a.replicas.status(onlyA[0]); len(st) != 1 || st[0].LastSync.IsZero() {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
}

// TestNewReplicaFills: a seed newly placed with a vault another seed holds
// (both naming each other) receives its entries through the exchange, and
// its status shows the pair in sync.
func TestNewReplicaFills(t *testing.T) {
	dev, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	ns, err := dev.CreateVault()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := dev.Put(ns, fmt.Appendf(nil, "k%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	pods := startReplicaPods(t, 2, 200*time.Millisecond)
	a, b := pods[0], pods[1]
	shared := newVaults(t, 50)
	a.place(append(shared, ns), b)
	b.place(shared, a)
	for i := range 20 {
		copyEntry(t, dev, a.Store(), ns, fmt.Sprintf("k%d", i))
	}
	waitOutcome(t, "", 3, pods...)
	if st, _ := b.Store().Stats(ns); st.Entries != 0 {
		t.Fatalf("B holds %d entries of a vault not placed on it", st.Entries)
	}
	b.place(append(shared, ns), a)
	eventually(t, "the new replica fills", func() error {
		st, err := b.Store().Stats(ns)
		if err != nil {
			return err
		}
		if st.Entries != 20 || st.Fingerprint != fingerprintOf(t, a.Store(), ns) {
			return fmt.Errorf("B holds %d entries", st.Entries)
		}
		return nil
	})
	eventually(t, "both see the pair in sync", func() error {
		if n := b.replicas.syncedPeers(ns, time.Minute); n != 1 {
			return fmt.Errorf("B: %d synced peers", n)
		}
		if n := a.replicas.syncedPeers(ns, time.Minute); n != 1 {
			return fmt.Errorf("A: %d synced peers", n)
		}
		if n := a.replicas.syncedPeers(shared[0], time.Minute); n != 1 {
			return fmt.Errorf("A: %d synced peers of an idle vault", n)
		}
		return nil
	})
}

// TestExchangeAnswersOnlyReplicaPeers: a peer that no placement names is
// refused; a peer named for one vault learns about that vault only, even
// when it asks for every bucket.
func TestExchangeAnswersOnlyReplicaPeers(t *testing.T) {
	pods := startReplicaPods(t, 2, time.Minute)
	a, b := pods[0], pods[1]
	stranger := p2ptest.NewHost(t, false)
	friend := p2ptest.NewHost(t, false)
	mine, theirs := newNS(t), newNS(t)
	a.SetPlacement(Placement{Vaults: []vault.NamespaceID{mine, theirs}, Peers: map[vault.NamespaceID][]peer.AddrInfo{
		mine:   {{ID: friend.ID(), Addrs: []ma.Multiaddr{}}},
		theirs: {{ID: b.Host().ID(), Addrs: b.Host().Addrs()}},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// ask asks for every bucket, whatever the digests hold.
	ask := func(h host.Host) fleet.ExchangeResult {
		t.Helper()
		h.Peerstore().AddAddrs(a.Host().ID(), a.Host().Addrs(), peerstore.TempAddrTTL)
		s, err := h.NewStream(ctx, a.Host().ID(), ExchangeProtocol)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		all := make([]uint16, fleet.DigestBuckets)
		for i := range all {
			all[i] = uint16(i)
		}
		res, err := fleet.Ask(s, [32]byte{1}, [32]byte{2}, fleet.ExchangeSide{
			Diff: func([]fleet.DigestBucket) []uint16 { return all },
			In:   func([]uint16) []fleet.Pair { return nil },
			Keep: func(fleet.Pair) bool { return true },
		})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := ask(stranger); res.Refused == "" {
		t.Fatalf("a stranger got %+v, want a refusal with a reason", res)
	}
	res := ask(friend)
	if fp, ok := res.Theirs[mine]; len(res.Theirs) != 1 || !ok || fp != fingerprintOf(t, a.Store(), mine) {
		t.Fatalf("the friend learned %+v, want only the vault it shares", res.Theirs)
	}
}

// TestWriteReachesADeviceLiveOnAnotherSeed: a device holds a live session
// on seed B; a write synced to seed A reaches it long before the
// replication interval (a minute) could have carried it.
func TestWriteReachesADeviceLiveOnAnotherSeed(t *testing.T) {
	writer, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	ns, err := writer.CreateVault()
	if err != nil {
		t.Fatal(err)
	}
	pods := startReplicaPods(t, 3, time.Minute)
	vaults := append(newVaults(t, 20), ns)
	for i, p := range pods {
		p.place(vaults, pods[(i+1)%3], pods[(i+2)%3])
	}
	a, b := pods[0], pods[1]
	waitExchanges(t, 1, pods...)

	// The reader: its own host and store, live on B.
	h := p2ptest.NewHost(t, false)
	st, err := vault.Open(filepath.Join(t.TempDir(), "vaults"), vault.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := vault.NewService(h, st, vault.WithPolicy(vault.NewHostedSet(ns)))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	h.Peerstore().AddAddrs(b.Host().ID(), b.Host().Addrs(), peerstore.PermanentAddrTTL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	live := make(chan struct{}, 1)
	go func() {
		_, err := svc.Sync(ctx, b.Host().ID(), ns, vault.SyncOptions{Live: true, Progress: func(p vault.Progress) {
			if p.Phase == "live" {
				select {
				case live <- struct{}{}:
				default:
				}
			}
		}})
		done <- err
	}()
	select {
	case <-live:
	case err := <-done:
		t.Fatalf("live session ended: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the reader's session did not go live")
	}

	for i := range 3 {
		key := fmt.Sprintf("news/%d", i)
		if _, err := writer.Put(ns, []byte(key), []byte("fresh")); err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
		if _, err := writer.Sync(wctx, ns, a.Addrs()[0].String(), client.SyncOptions{}); err != nil {
			t.Fatal(err)
		}
		wcancel()
		start := time.Now()
		for {
			items, err := st.Get(ns, []byte(key))
			if err != nil {
				t.Fatal(err)
			}
			if len(items) == 1 {
				break
			}
			if time.Since(start) > 20*time.Second {
				t.Fatalf("write %d through A not at the device live on B after 20s (the interval is a minute)", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if got := replicaSyncs(t, reasonLive.String(), a); got < 2 {
		t.Fatalf("A pushed %v times, want at least its two peers", got)
	}
}
