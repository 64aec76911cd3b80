package pebblesched

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/seedfleet/seedfleet/internal/pebblelog"
)

// TestStoreCompactsUnderWrites: a real store with small memtables, written
// far past them, gets its compactions granted (L0 does not pile up and
// writes never stall), reads back what was written, and once it is quiet
// the scheduler holds no timer.
func TestStoreCompactsUnderWrites(t *testing.T) {
	s := New()
	opts := &pebble.Options{Logger: pebblelog.New(nil, "test"), MemTableSize: 256 << 10, L0CompactionThreshold: 2, L0StopWritesThreshold: 1000}
	opts.Experimental.CompactionScheduler = s
	db, err := pebble.Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	val := make([]byte, 1000)
	const n = 20_000 // about 20 MB: some 80 memtables
	for i := range n {
		if err := db.Set(fmt.Appendf(nil, "key%08d", (i*7919)%n), val, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		m := db.Metrics()
		return m.Compact.Count > 0 && m.Levels[0].Sublevels <= 4
	}, "compactions to bring L0 down")
	for _, i := range []int{0, n / 2, n - 1} {
		v, closer, err := db.Get(fmt.Appendf(nil, "key%08d", i))
		if err != nil || len(v) != len(val) {
			t.Fatalf("key %d: %d bytes, %v", i, len(v), err)
		}
		closer.Close()
	}
	waitFor(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.retry == nil && s.running == 0 && !s.granting
	}, "the scheduler to go quiet")
}

// fakeStore is the store's side of the scheduler's contract, for the cases
// a real store cannot be brought to on demand (an allowance of 0, a
// compaction refused while none runs).
type fakeStore struct {
	mu        sync.Mutex
	allowed   int
	waiting   int
	scheduled chan pebble.CompactionGrantHandle
}

func (f *fakeStore) GetAllowedWithoutPermission() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.allowed
}

func (f *fakeStore) GetWaitingCompaction() (bool, pebble.WaitingCompaction) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.waiting > 0, pebble.WaitingCompaction{}
}

func (f *fakeStore) Schedule(h pebble.CompactionGrantHandle) bool {
	f.mu.Lock()
	f.waiting--
	f.mu.Unlock()
	f.scheduled <- h
	return true
}

func (f *fakeStore) set(allowed, waiting int) {
	f.mu.Lock()
	f.allowed, f.waiting = allowed, waiting
	f.mu.Unlock()
}

// TestGrants: every way a waiting compaction gets its grant, and none after
// the store unregistered.
func TestGrants(t *testing.T) {
	f := &fakeStore{scheduled: make(chan pebble.CompactionGrantHandle, 8)}
	s := New()
	s.Register(1, f)

	f.set(1, 0)
	ok, h := s.TrySchedule()
	if !ok || h == nil {
		t.Fatal("a store within its allowance was refused")
	}
	// A second is refused: the allowance is 1 and one runs. It is granted
	// when the first ends.
	f.set(1, 1)
	if ok, _ := s.TrySchedule(); ok {
		t.Fatal("a store past its allowance was granted")
	}
	h.Done()
	h = expectGrant(t, f, "when the running compaction ended")

	// The allowance grows (a flush): a waiting compaction is granted at once.
	f.set(2, 1)
	s.UpdateGetAllowedWithoutPermission()
	h2 := expectGrant(t, f, "when the allowance grew")
	h.Done()
	h2.Done()

	// Refused with nothing running (an allowance of 0): the retry grants it
	// once the allowance is back, with no compaction ending to prompt it.
	f.set(0, 1)
	if ok, _ := s.TrySchedule(); ok {
		t.Fatal("granted with an allowance of 0")
	}
	f.set(1, 1)
	expectGrant(t, f, "by the retry").Done()

	// Nothing is granted after Unregister.
	f.set(0, 1)
	if ok, _ := s.TrySchedule(); ok {
		t.Fatal("granted with an allowance of 0")
	}
	s.Unregister()
	f.set(1, 1)
	s.UpdateGetAllowedWithoutPermission()
	select {
	case <-f.scheduled:
		t.Fatal("granted after Unregister")
	case <-time.After(2 * retryAfter):
	}
	if ok, _ := s.TrySchedule(); ok {
		t.Fatal("TrySchedule granted after Unregister")
	}
}

func expectGrant(t *testing.T, f *fakeStore, when string) pebble.CompactionGrantHandle {
	t.Helper()
	select {
	case h := <-f.scheduled:
		return h
	case <-time.After(10 * time.Second):
		t.Fatalf("no grant %s", when)
		return nil
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
