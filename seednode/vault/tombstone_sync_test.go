package vault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// fleet is two devices and a seed, each a real host and store, all connected.
type fleet struct {
	names  []string
	stores []*Store
	svcs   []*Service
	ns     NamespaceID
}

const devA, devB, seedNode = 0, 1, 2

func newFleet(t *testing.T, ns NamespaceID) *fleet {
	t.Helper()
	f := &fleet{names: []string{"device A", "device B", "seed"}, ns: ns}
	for range 3 {
		st := testStore(t, StoreOptions{})
		f.stores = append(f.stores, st)
		f.svcs = append(f.svcs, newTestService(t, testHost(t), st, WithPolicy(NewHostedSet(ns))))
	}
	for i := range 3 {
		for j := i + 1; j < 3; j++ {
			connect(t, f.svcs[i].host, f.svcs[j].host)
		}
	}
	return f
}

func (f *fleet) sync(t *testing.T, from, to int) (SyncStats, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return f.svcs[from].Sync(ctx, f.svcs[to].host.ID(), f.ns, SyncOptions{})
}

func (f *fleet) mustSync(t *testing.T, from, to int) {
	t.Helper()
	if _, err := f.sync(t, from, to); err != nil {
		t.Fatalf("sync %s with %s: %v", f.names[from], f.names[to], err)
	}
}

// TestDeletionConvergesThroughASeed: device A deletes a prefix while device
// B, offline, still holds A's entries under it. Whatever order the three
// pairs sync in afterwards, all three hold the same set, A's deleted entries
// are gone everywhere (B's copies do not come back through the seed), and
// newer writes under the prefix (A's own, and B's) survive.
func TestDeletionConvergesThroughASeed(t *testing.T) {
	pairs := [][2]int{{devA, seedNode}, {devB, seedNode}, {devB, devA}}
	orders := [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}
	for _, order := range orders {
		var steps []string
		for _, i := range order {
			steps = append(steps, fmt.Sprintf("%d-%d", pairs[i][0], pairs[i][1]))
		}
		t.Run(strings.Join(steps, ","), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(31, uint64(len(steps))))
			nsKey := newNamespaceKey(rng)
			wa, wb := newWriter(t, nsKey, rng), newWriter(t, nsKey, rng)
			f := newFleet(t, wa.ns)
			a, b := f.stores[devA], f.stores[devB]
			base := nowMicros() - 1e9
			blob := Item{Entry: signed(t, wa, Entry{Key: []byte("docs/big"), Hash: HashOf([]byte("big")), Size: 5 << 20, Timestamp: base})}
			insert(t, a, wa.item(t, "docs/1", "one", base), wa.item(t, "docs/sub/2", "two", base), blob, wa.item(t, "keep/1", "kept", base))
			insert(t, b, wb.item(t, "docs/1", "b's own", base))
			f.mustSync(t, devB, devA) // B now holds A's entries; the seed holds nothing yet
			held, _ := a.Stats(f.ns)

			// A deletes docs/ and writes under it again; B, offline, writes too.
			res := insert(t, a, wa.tombstone(t, "docs/", base+10), wa.item(t, "docs/new", "new", base+11))
			if res.Deleted != 3 {
				t.Fatalf("the tombstone deleted %d entries on A, want 3", res.Deleted)
			}
			if now, _ := a.Stats(f.ns); now.Bytes != held.Bytes-(5<<20)-uint64(len("one")+len("two"))+3 {
				t.Fatalf("A references %d bytes after the deletion, %d before", now.Bytes, held.Bytes)
			}
			insert(t, b, wb.item(t, "docs/fromB", "b", base+5))

			for _, i := range order {
				f.mustSync(t, pairs[i][0], pairs[i][1])
			}
			want := []string{"docs/1@" + wb.author.Short()[:3], "docs/fromB@" + wb.author.Short()[:3],
				"docs/new@" + wa.author.Short()[:3], "keep/1@" + wa.author.Short()[:3]}
			slices.Sort(want)
			var fps []Hash
			for i, st := range f.stores {
				got := keysOf(t, st, f.ns)
				slices.Sort(got)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%s lists %v, want %v", f.names[i], got, want)
				}
				rep := verifyClean(t, st, f.ns)
				if rep.Bytes != uint64(len("b's own")+len("b")+len("new")+len("kept")) {
					t.Fatalf("%s references %d bytes", f.names[i], rep.Bytes)
				}
				s, err := st.Stats(f.ns)
				if err != nil {
					t.Fatal(err)
				}
				fps = append(fps, s.Fingerprint)
			}
			if fps[0] != fps[1] || fps[1] != fps[2] {
				t.Fatalf("fingerprints differ: %v", fps)
			}
			// The deleted entries stay gone: B syncing again with the seed
			// moves nothing.
			st, err := f.sync(t, devB, seedNode)
			if err != nil || st.ItemsSent+st.ItemsReceived != 0 {
				t.Fatalf("a second sync moved %d+%d items (%v)", st.ItemsSent, st.ItemsReceived, err)
			}
		})
	}
}

func signed(t testing.TB, w *writer, e Entry) SignedEntry {
	t.Helper()
	e.Namespace, e.Author = w.ns, w.author
	se, err := Sign(e, w.authorKey, w.consent, nil)
	if err != nil {
		t.Fatal(err)
	}
	return se
}

// TestForgedTombstonesAreRefused: a tombstone by an author without write
// capability, and one that claims another author's key, are refused by the
// seed, and delete nothing there.
func TestForgedTombstonesAreRefused(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	nsKey := newNamespaceKey(rng)
	wa := newWriter(t, nsKey, rng)
	rogue := newWriter(t, newNamespaceKey(rng), rng) // its capability is for another vault
	rogue.ns = wa.ns
	base := nowMicros() - 1e9
	for _, tc := range []struct {
		name string
		tomb func() Item
	}{
		{"no write capability", func() Item { return rogue.tombstone(t, "docs/", base+10) }},
		{"another author's name", func() Item {
			it := rogue.tombstone(t, "docs/", base+10)
			it.Entry.Author, it.Entry.Consent = wa.author, wa.consent
			return it
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(t, wa.ns)
			insert(t, f.stores[seedNode], wa.item(t, "docs/1", "one", base))
			f.mustSync(t, devA, seedNode)
			insert(t, f.stores[devA], tc.tomb()) // a device's own store takes what it is given
			if _, err := f.sync(t, devA, seedNode); err == nil {
				t.Fatal("the seed took a forged tombstone")
			}
			rep := verifyClean(t, f.stores[seedNode], wa.ns)
			if rep.Entries != 1 || !hasKey(t, f.stores[seedNode], wa.ns, "docs/1") {
				t.Fatalf("the seed holds %d entries after a forged tombstone", rep.Entries)
			}
		})
	}
}

// TestLiveSessionsCarryTombstones: a tombstone written on a device in a
// live session reaches the seed, and through it another device, and deletes
// there what it covers.
func TestLiveSessionsCarryTombstones(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	wa := newWriter(t, newNamespaceKey(rng), rng)
	f := newFleet(t, wa.ns)
	base := nowMicros() - 1e9
	insert(t, f.stores[devA], wa.item(t, "docs/1", "one", base), wa.item(t, "docs/2", "two", base))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 2)
	for _, d := range []int{devA, devB} {
		go func() {
			_, err := f.svcs[d].Sync(ctx, f.svcs[seedNode].host.ID(), f.ns, SyncOptions{Live: true})
			done <- err
		}()
	}
	for _, st := range f.stores[1:] {
		waitFor(t, 10*time.Second, "entries before the deletion", func() bool { return hasKey(t, st, f.ns, "docs/2") })
	}
	insert(t, f.stores[devA], wa.tombstone(t, "docs/", base+10))
	for _, st := range f.stores[1:] {
		waitFor(t, 10*time.Second, "the deletion", func() bool {
			return !hasKey(t, st, f.ns, "docs/1") && !hasKey(t, st, f.ns, "docs/2")
		})
		verifyClean(t, st, f.ns)
	}
	cancel()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatalf("live session: %v", err)
		}
	}
}

// TestTombstonesAreWithheldFromOlderPeers: a node serving a session whose
// initiator did not announce that it reads tombstones sends it the values
// and none of the tombstones (which it would take for forgeries).
func TestTombstonesAreWithheldFromOlderPeers(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	w := newWriter(t, newNamespaceKey(rng), rng)
	p := newPair(t, w.ns)
	base := nowMicros() - 1e9
	insert(t, p.b, w.item(t, "a", "1", base), w.item(t, "b", "2", base), w.tombstone(t, "c/", base))
	_, fw, fr := abuseSession(t, p, w.ns) // its hello has no flags
	q := question{kind: qWantAll, node: Root}
	typ, payload := q.frame()
	if err := fw.write(typ, payload); err != nil {
		t.Fatal(err)
	}
	if err := fw.write(frameEndTurn, nil); err != nil {
		t.Fatal(err)
	}
	if err := fw.flush(); err != nil {
		t.Fatal(err)
	}
	var authors []authorRef
	var items []Item
	for {
		typ, p, err := fr.next()
		if err != nil {
			t.Fatal(err)
		}
		if typ == frameEndTurn {
			break
		}
		switch typ {
		case frameAuthor:
			r, err := decodeAuthorRef(p)
			if err != nil {
				t.Fatal(err)
			}
			authors = append(authors, r)
		case frameItems:
			if items, err = decodeWireItems(p, w.ns, authors, items); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(items) != 2 || slices.ContainsFunc(items, func(it Item) bool { return it.Entry.IsTombstone() }) {
		t.Fatalf("an older peer was sent %d items: %v", len(items), items)
	}
}
