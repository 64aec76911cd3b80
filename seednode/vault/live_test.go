package vault

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
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

// TestLiveSessionHoldsLittle: once live, a session gives back to the
// resource manager all but liveMemory of its reservation and protects its
// connection from the connection manager (a seed with thousands of live
// devices is above its high watermark); a large push still arrives whole
// through the small live buffers; when the session ends, the protection
// and the reservation go.
func TestLiveSessionHoldsLittle(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	w := newWriter(t, newNamespaceKey(rng), rng)
	cm, err := connmgr.NewConnManager(1, 2)
	if err != nil {
		t.Fatal(err)
	}
	seedHost, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(libp2ptls.ID, libp2ptls.New), libp2p.DisableRelay(), libp2p.ConnectionManager(cm))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seedHost.Close() })
	devHost := testHost(t)
	seedSt, devSt := testStore(t, StoreOptions{}), testStore(t, StoreOptions{})
	newTestService(t, seedHost, seedSt, WithPolicy(NewHostedSet(w.ns)))
	dev := newTestService(t, devHost, devSt, WithPolicy(NewHostedSet(w.ns)))
	connect(t, devHost, seedHost)
	serviceMemory := func(h host.Host) int64 {
		var m int64
		_ = h.Network().ResourceManager().ViewService(ServiceName, func(s network.ServiceScope) error {
			m = s.Stat().Memory
			return nil
		})
		return m
	}

	ctx, cancel := context.WithCancel(context.Background())
	live := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := dev.Sync(ctx, seedHost.ID(), w.ns, SyncOptions{Live: true, Progress: func(p Progress) {
			if p.Phase == "live" {
				select {
				case <-live:
				default:
					close(live)
				}
			}
		}})
		done <- err
	}()
	select {
	case <-live:
	case err := <-done:
		t.Fatalf("the session ended before going live: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not go live")
	}
	waitFor(t, 5*time.Second, "seed side live", func() bool { return cm.IsProtected(devHost.ID(), liveTag) })
	for name, h := range map[string]host.Host{"seed": seedHost, "device": devHost} {
		// The serving side holds its hello reservation too.
		waitFor(t, 5*time.Second, name+" reservation down to liveMemory", func() bool { return serviceMemory(h) <= liveMemory+helloMemory })
	}

	// A push of many entries (several items frames, workers started and
	// stopped again) arrives whole.
	var items []Item
	for i := range 3 * ingestChunk {
		items = append(items, w.item(t, fmt.Sprintf("bulk/%04d", i), strings.Repeat("v", 200), nowMicros()+uint64(i)))
	}
	insert(t, devSt, items...)
	waitFor(t, 10*time.Second, "live bulk push at the seed", func() bool {
		st, err := seedSt.Stats(w.ns)
		return err == nil && st.Entries == uint64(len(items))
	})
	sameVault(t, devSt, seedSt, w.ns)

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("live session ended with %v", err)
	}
	waitFor(t, 5*time.Second, "protection lifted", func() bool { return !cm.IsProtected(devHost.ID(), liveTag) })
	waitFor(t, 5*time.Second, "seed reservation released", func() bool { return serviceMemory(seedHost) == 0 })
}

// stacksWith returns the stacks of the goroutines whose stack holds fn (a
// function as runtime.Stack prints it, package-qualified).
func stacksWith(fn string) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			out = append(out, g)
		}
	}
	return out
}

// TestLiveServingLeavesTheHandler: the serving side of a live session
// leaves the stream handler once reconciled (the handler's stack grew
// there) and waits for the peer's next frame on a goroutine of its own,
// parked in byteAtATime.await; pushes still flow both ways, the goroutine
// ends with its session, and Close waits for the others.
func TestLiveServingLeavesTheHandler(t *testing.T) {
	const (
		serving = "vault.(*Service).serveLive("
		handler = "vault.(*Service).handle("
		waiting = "vault.(*byteAtATime).await("
	)
	rng := rand.New(rand.NewPCG(9, 10))
	w := newWriter(t, newNamespaceKey(rng), rng)
	seedHost, seedSt := testHost(t), testStore(t, StoreOptions{})
	seed := newTestService(t, seedHost, seedSt, WithPolicy(NewHostedSet(w.ns)))
	insert(t, seedSt, w.item(t, "before", "x", nowMicros()))

	type device struct {
		st     *Store
		cancel context.CancelFunc
		done   chan error
	}
	devs := make([]device, 3)
	for i := range devs {
		h, st := testHost(t), testStore(t, StoreOptions{})
		svc := newTestService(t, h, st, WithPolicy(NewHostedSet(w.ns)))
		connect(t, h, seedHost)
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		devs[i] = device{st: st, cancel: cancel, done: make(chan error, 1)}
		go func() {
			_, err := svc.Sync(ctx, seedHost.ID(), w.ns, SyncOptions{Live: true})
			devs[i].done <- err
		}()
	}
	waitFor(t, 10*time.Second, "three live sessions served off the handler, waiting in await", func() bool {
		gs := stacksWith(serving)
		for _, g := range gs {
			if !strings.Contains(g, waiting) {
				return false
			}
		}
		return len(gs) == len(devs)
	})
	if gs := stacksWith(handler); len(gs) > 0 {
		t.Fatalf("a stream handler still runs for a live session:\n%s", gs[0])
	}
	for _, d := range devs {
		waitFor(t, 10*time.Second, "reconciled entry at a device", func() bool { return hasKey(t, d.st, w.ns, "before") })
	}

	// Both ways: a device's push reaches the seed's waiting reader, and
	// the seed pushes it on to the other devices.
	insert(t, devs[0].st, w.item(t, "pushed", "y", nowMicros()))
	for _, d := range devs[1:] {
		waitFor(t, 10*time.Second, "push through the seed", func() bool { return hasKey(t, d.st, w.ns, "pushed") })
	}

	devs[0].cancel()
	if err := <-devs[0].done; err != nil {
		t.Fatalf("cancelled live session returned %v", err)
	}
	waitFor(t, 10*time.Second, "the ended session's goroutine gone", func() bool { return len(stacksWith(serving)) == len(devs)-1 })

	seed.Close()
	if gs := stacksWith(serving); len(gs) > 0 {
		t.Fatalf("Close returned while a live session's goroutine runs:\n%s", gs[0])
	}
	for _, d := range devs[1:] {
		select {
		case err := <-d.done:
			t.Logf("a device's session ended with the seed's service: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("a device's live session outlived the seed's service")
		}
	}
}

// oneByteAtATime yields its bytes one per Read, each after an empty read.
type oneByteAtATime struct {
	b     []byte
	empty bool
}

func (r *oneByteAtATime) Read(p []byte) (int, error) {
	if r.empty = !r.empty; r.empty {
		return 0, nil
	}
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	p[0], r.b = r.b[0], r.b[1:]
	return 1, nil
}

// TestByteAtATimeAwait: await waits for a byte (through empty reads) and
// keeps it for the next ReadByte or Read, once; at the end of the stream
// it reports io.EOF.
func TestByteAtATimeAwait(t *testing.T) {
	u := &byteAtATime{r: &oneByteAtATime{b: []byte("abcd")}}
	for range 2 { // a second await keeps the same byte
		if err := u.await(); err != nil {
			t.Fatal(err)
		}
	}
	var got []byte
	for range 2 {
		c, err := u.ReadByte()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	if err := u.await(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(u)
	if err != nil {
		t.Fatal(err)
	}
	if got = append(got, rest...); string(got) != "abcd" {
		t.Fatalf("read %q, want %q", got, "abcd")
	}
	if err := u.await(); err != io.EOF {
		t.Fatalf("await at the end: %v, want io.EOF", err)
	}
}
