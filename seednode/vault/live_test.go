package vault

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"
)

// waitFor polls until cond holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s", what, within)
	return 0
}

func hasKey(t *testing.T, st *Store, ns NamespaceID, key string) bool {
	t.Helper()
	items, err := st.Get(ns, []byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return len(items) > 0
}

// TestLiveSyncBothWaysAndThroughASeed: a device and a seed in a live session
// exchange new entries both ways within a second, and a second device live
// on the same seed receives the first device's writes through it.
func TestLiveSyncBothWaysAndThroughASeed(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	nsKey := newNamespaceKey(rng)
	w1, w2 := newWriter(t, nsKey, rng), newWriter(t, nsKey, rng)
	ns := w1.ns

	seedHost, d1Host, d2Host := testHost(t), testHost(t), testHost(t)
	seedSt, d1St, d2St := testStore(t, StoreOptions{}), testStore(t, StoreOptions{}), testStore(t, StoreOptions{})
	seed := newTestService(t, seedHost, seedSt, WithPolicy(NewHostedSet(ns)))
	d1 := newTestService(t, d1Host, d1St, WithPolicy(NewHostedSet(ns)))
	d2 := newTestService(t, d2Host, d2St, WithPolicy(NewHostedSet(ns)))
	connect(t, d1Host, seedHost)
	connect(t, d2Host, seedHost)

	// Something to reconcile first, so live mode follows a real reconciliation.
	insert(t, d1St, w1.item(t, "before", "x", nowMicros()))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	for _, d := range []*Service{d1, d2} {
		go func() {
			_, err := d.Sync(ctx, seedHost.ID(), ns, SyncOptions{Live: true})
			done <- err
		}()
	}
	waitFor(t, 5*time.Second, "reconciled entry on the second device", func() bool { return hasKey(t, d2St, ns, "before") })

	for i, tc := range []struct {
		name string
		from *Store
		w    *writer
		to   []*Store
		key  string
	}{
		{"device to seed and other device", d1St, w1, []*Store{seedSt, d2St}, "from-d1"},
		{"other device to first", d2St, w2, []*Store{seedSt, d1St}, "from-d2"},
		{"seed-local write to both devices", seedSt, w1, []*Store{d1St, d2St}, "from-seed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			insert(t, tc.from, tc.w.item(t, tc.key, "v", nowMicros()+uint64(i)))
			for _, st := range tc.to {
				took := waitFor(t, time.Second, "live propagation", func() bool { return hasKey(t, st, ns, tc.key) })
				t.Logf("arrived after %s", took)
			}
		})
	}

	// Closing the seed's service ends the devices' live sessions promptly.
	closed := make(chan struct{})
	go func() { seed.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("seed service did not close with live sessions open")
	}
	for range 2 {
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("a live session ended without error although the seed went away")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("device live session did not notice the seed closing")
		}
	}
	cancel()
	sameVault(t, d1St, d2St, ns)
	d1.Close()
	d2.Close()
}

// TestLiveSessionEndsWithContext: cancelling the caller's context ends a live
// session cleanly (no error) and quickly.
func TestLiveSessionEndsWithContext(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	w := newWriter(t, newNamespaceKey(rng), rng)
	p := newPair(t, w.ns)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := p.sa.Sync(ctx, p.sb.host.ID(), p.ns, SyncOptions{Live: true})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("cancelled live session returned %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("live session ignored cancellation")
	}
}
