package vault

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/seedfleet/seedfleet/seednode/identity"
)

func (w *writer) tombstone(t testing.TB, key string, ts uint64) Item {
	t.Helper()
	e := Entry{Namespace: w.ns, Key: []byte(key), Author: w.author, Timestamp: ts}
	se, err := Sign(e, w.authorKey, w.consent, nil)
	if err != nil {
		t.Fatal(err)
	}
	return Item{Entry: se}
}

// keysOf lists the keys Get/List show of a vault, with their authors.
func keysOf(t testing.TB, st *Store, ns NamespaceID) []string {
	t.Helper()
	items, err := st.List(ns, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, it := range items {
		out = append(out, string(it.Entry.Key)+"@"+it.Entry.Author.Short()[:3])
	}
	return out
}

func verifyClean(t testing.TB, st *Store, ns NamespaceID) VerifyReport {
	t.Helper()
	rep, err := st.VerifyVault(ns)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Problem != "" {
		t.Fatalf("VerifyVault: %s", rep.Problem)
	}
	checkAggregates(t, st, ns)
	return rep
}

func TestTombstoneDeletesItsAuthorsOlderEntriesUnderItsKey(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	nsKey := newNamespaceKey(rng)
	a, b := newWriter(t, nsKey, rng), newWriter(t, nsKey, rng)
	st := testStore(t, StoreOptions{})
	ns := a.ns
	base := nowMicros() - 1e9
	insert(t, st,
		a.item(t, "docs/1", "one", base), a.item(t, "docs/x/2", "two", base+1), a.item(t, "docsmore", "3", base+2),
		a.item(t, "doc", "4", base+3), a.item(t, "docs/late", "5", base+50), b.item(t, "docs/1", "b's", base+4))
	before, err := st.Stats(ns)
	if err != nil {
		t.Fatal(err)
	}

	res := insert(t, st, a.tombstone(t, "docs", base+10))
	if res.Stored != 1 || res.Deleted != 3 {
		t.Fatalf("tombstone: %+v, want 1 stored, 3 deleted (docs/1, docs/x/2, docsmore)", res)
	}
	got := keysOf(t, st, ns)
	want := []string{"doc@" + a.author.Short()[:3], "docs/1@" + b.author.Short()[:3], "docs/late@" + a.author.Short()[:3]}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after deleting docs: %v, want %v", got, want)
	}
	after := verifyClean(t, st, ns)
	if after.Entries != before.Entries-3+1 || after.Bytes != before.Bytes-uint64(len("one")+len("two")+len("3")) {
		t.Fatalf("after the tombstone: %d entries, %d bytes; before %d, %d", after.Entries, after.Bytes, before.Entries, before.Bytes)
	}

	for _, tc := range []struct {
		name   string
		it     Item
		stored bool
	}{
		{"an older entry under the prefix comes back from a peer", a.item(t, "docs/1", "one", base), false},
		{"an older entry never seen", a.item(t, "docs/y", "y", base+9), false},
		{"an older tombstone under the prefix", a.tombstone(t, "docs/x", base+5), false},
		{"an entry of the tombstone's own timestamp", a.item(t, "docs/same", "s", base+10), true},
		{"a newer entry at the tombstone's key", a.item(t, "docs", "d", base+11), true},
		{"a newer entry under the prefix", a.item(t, "docs/1", "new", base+12), true},
		{"another author's older entry", b.item(t, "docs/2", "b", base+1), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := insert(t, st, tc.it)
			if (res.Stored == 1) != tc.stored || (res.Stale == 1) == tc.stored {
				t.Fatalf("%+v, want stored=%v", res, tc.stored)
			}
			verifyClean(t, st, ns)
		})
	}
	if items, err := st.Get(ns, []byte("docs")); err != nil || len(items) != 1 || items[0].Entry.IsTombstone() {
		t.Fatalf("Get of the deleted key written again: %v, %v", items, err)
	}
	if ts, ok, err := st.CoveringTombstone(ns, a.author, []byte("docs/x/2/deeper")); err != nil || !ok || ts != base+10 {
		t.Fatalf("CoveringTombstone = %d, %v, %v; want %d", ts, ok, err, base+10)
	}
	if _, ok, err := st.CoveringTombstone(ns, b.author, []byte("docs/1")); err != nil || ok {
		t.Fatalf("another author's key is covered: %v, %v", ok, err)
	}
	// Rederive rebuilds the tombstone index; DropVault removes it.
	if err := st.Rederive(ns); err != nil {
		t.Fatal(err)
	}
	verifyClean(t, st, ns)
	if res := insert(t, st, a.item(t, "docs/z", "z", base+1)); res.Stale != 1 {
		t.Fatalf("after Rederive a covered entry is not refused: %+v", res)
	}
	if err := st.DropVault(ns); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.CoveringTombstone(ns, a.author, []byte("docs/1")); err != nil || ok {
		t.Fatalf("a dropped vault's tombstone remains: %v, %v", ok, err)
	}
}

func TestTombstonesAreCollected(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	a := newWriter(t, newNamespaceKey(rng), rng)
	st := testStore(t, StoreOptions{})
	base := nowMicros() - 1e9
	insert(t, st, a.tombstone(t, "a/b/c", base), a.tombstone(t, "a/b/d", base+1), a.tombstone(t, "a/z", base+30))
	res := insert(t, st, a.tombstone(t, "a/b", base+20))
	if res.Deleted != 2 {
		t.Fatalf("a newer, shorter tombstone removed %d older ones, want 2: %+v", res.Deleted, res)
	}
	res = insert(t, st, a.tombstone(t, "a/b", base+25)) // replaces its own slot
	if res.Stored != 1 || res.Deleted != 1 {
		t.Fatalf("a newer tombstone at the same key: %+v", res)
	}
	rep := verifyClean(t, st, a.ns)
	if rep.Entries != 2 {
		t.Fatalf("%d tombstones left, want a/b and a/z", rep.Entries)
	}
}

func TestTombstoneRefusals(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	a := newWriter(t, newNamespaceKey(rng), rng)
	base := nowMicros() - 1e9
	t.Run("a tombstone with a value", func(t *testing.T) {
		st := testStore(t, StoreOptions{})
		it := a.tombstone(t, "k", base)
		it.Content = []byte{}
		if _, err := st.Insert([]Item{it}, 0, true); !errors.Is(err, ErrContentInvalid) {
			t.Fatalf("err = %v, want ErrContentInvalid", err)
		}
	})
	t.Run("a tombstone over the agent document", func(t *testing.T) {
		doc := &identity.AgentDocument{}
		for _, key := range []string{"\x00", "\x00agent/", string(AgentDocKey)} {
			e := SignedEntry{Entry: Entry{Key: []byte(key), Author: a.author}}
			if err := authorize(&e, doc); !errors.Is(err, ErrNotAuthorized) {
				t.Fatalf("tombstone at %q: %v, want ErrNotAuthorized", key, err)
			}
		}
	})
	t.Run("a vault at its entry limit takes a tombstone that frees a place", func(t *testing.T) {
		st := testStore(t, StoreOptions{LimitsFor: func(NamespaceID) Limits { return Limits{MaxEntries: 2} }})
		insert(t, st, a.item(t, "d/1", "1", base), a.item(t, "d/2", "2", base))
		if res := insert(t, st, a.tombstone(t, "x", base+1)); res.Refused != 1 {
			t.Fatalf("a tombstone that frees nothing in a full vault: %+v", res)
		}
		if res := insert(t, st, a.tombstone(t, "d/", base+1)); res.Stored != 1 || res.Deleted != 2 {
			t.Fatalf("a tombstone that frees places in a full vault: %+v", res)
		}
		verifyClean(t, st, a.ns)
	})
	t.Run("a forged tombstone", func(t *testing.T) {
		it := a.tombstone(t, "d/", base)
		it.Entry.Size = 1 // the signature covered a tombstone
		it.Entry.Hash = HashOf([]byte("x"))
		if err := NewVerifier(nil).Verify(&it.Entry, Limits{}); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("err = %v, want ErrBadSignature", err)
		}
	})
}

// tombstoneModel is what a vault holds after every item of u arrived, in any order:
// per slot the newest version, unless a tombstone of u covers it.
func tombstoneModel(u []Item) map[Hash]Hash {
	newest := map[Hash]*Entry{}
	for i := range u {
		e := &u[i].Entry.Entry
		ih := e.ItemHash()
		if old := newest[ih]; old == nil || e.Newer(old) {
			newest[ih] = e
		}
	}
	out := map[Hash]Hash{}
	for ih, e := range newest {
		covered := false
		for i := range u {
			covered = covered || u[i].Entry.Covers(e)
		}
		if !covered {
			out[ih] = e.Fingerprint()
		}
	}
	return out
}

// TestTombstonesInAnyOrder: random writes and deletions over a small tree of
// keys, inserted one by one, in reverse, and in random batches, leave the
// same vault, the one the model predicts, with its derived state right.
func TestTombstonesInAnyOrder(t *testing.T) {
	keys := []string{"a", "a/", "a/b", "a/b/c", "a/bc", "a/c", "b", "b/a", "ab"}
	for seed := uint64(1); seed <= 30; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		nsKey := newNamespaceKey(rng)
		ws := []*writer{newWriter(t, nsKey, rng), newWriter(t, nsKey, rng)}
		base := nowMicros() - 1e9
		var u []Item
		for range 10 + rng.IntN(60) {
			w, k, ts := ws[rng.IntN(2)], keys[rng.IntN(len(keys))], base+uint64(rng.IntN(20))
			if rng.IntN(3) == 0 {
				u = append(u, w.tombstone(t, k, ts))
			} else {
				u = append(u, w.item(t, k, fmt.Sprint(rng.IntN(4)), ts))
			}
		}
		want := tombstoneModel(u)
		orders := map[string][][]Item{"one by one": nil, "reversed": nil, "batches": nil}
		for i := range u {
			orders["one by one"] = append(orders["one by one"], u[i:i+1])
			orders["reversed"] = append(orders["reversed"], u[len(u)-1-i:len(u)-i])
		}
		shuffled := append([]Item(nil), u...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for len(shuffled) > 0 {
			n := min(len(shuffled), 1+rng.IntN(12))
			orders["batches"] = append(orders["batches"], shuffled[:n])
			shuffled = shuffled[n:]
		}
		for name, batches := range orders {
			st := testStore(t, StoreOptions{})
			for _, b := range batches {
				insert(t, st, b...)
			}
			got := dump(t, st, ws[0].ns)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("seed %d, %s: the vault holds %d items, the model %d", seed, name, len(got), len(want))
			}
			sizes := map[Hash]uint64{} // items may repeat in u
			for _, it := range u {
				if fp, ok := want[it.Entry.ItemHash()]; ok && fp == it.Entry.Fingerprint() {
					sizes[fp] = it.Entry.Size
				}
			}
			var bytes uint64
			for _, n := range sizes {
				bytes += n
			}
			if rep := verifyClean(t, st, ws[0].ns); rep.Bytes != bytes {
				t.Fatalf("seed %d, %s: %d bytes, want %d", seed, name, rep.Bytes, bytes)
			}
		}
	}
}

func TestTombstoneEncoding(t *testing.T) {
	f := newEntryFixture()
	tomb := f.capSigned(t, Entry{Namespace: f.ns, Key: []byte("k/"), Author: f.author, Timestamp: 5}, 0)
	b := marshal(t, &tomb)
	if b[0] != TombstoneVersion {
		t.Fatalf("a tombstone is encoded with version %d", b[0])
	}
	back, err := UnmarshalSignedEntry(b)
	if err != nil || !back.IsTombstone() || !bytes.Equal(back.AppendBinary(nil), b) {
		t.Fatalf("round trip: %v", err)
	}
	asValue := append([]byte{EncodingVersion}, b[1:]...)
	if _, err := UnmarshalSignedEntry(asValue); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a version-1 entry with the zero hash and size 0: %v, want ErrMalformed", err)
	}
	v := f.capSigned(t, f.entry("k/", "", 5), 0)
	if v.IsTombstone() || v.ItemHash() == tomb.ItemHash() || v.Fingerprint() == tomb.Fingerprint() {
		t.Fatal("an empty value is taken for a tombstone, or shares its slot")
	}
}

// A listing that runs while a tombstone deletes entries it lists reads
// each entry as the listing's index saw it: never "damaged" (an index key
// naming an entry deleted since), and no damage is counted.
func TestListWhileATombstoneDeletes(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	nsKey := newNamespaceKey(rng)
	a, b := newWriter(t, nsKey, rng), newWriter(t, nsKey, rng)
	st := testStore(t, StoreOptions{})
	base := nowMicros() - 1e9
	for _, w := range []*writer{a, b} {
		insert(t, st, w.item(t, "keep", "held by "+w.author.Short(), base))
	}
	const rounds = 40
	done := make(chan error, 1)
	go func() {
		for r := range rounds {
			ts := base + uint64(r*100)
			var items []Item
			for i := range 50 {
				items = append(items, a.item(t, fmt.Sprintf("log/%03d/%02d", r, i), "x", ts+uint64(i)+1))
			}
			if _, err := st.Insert(items, 0, false); err != nil {
				done <- err
				return
			}
			if _, err := st.Insert([]Item{a.tombstone(t, "log/", ts+99)}, 0, false); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if n := st.Corruptions(); n != 0 {
				t.Fatalf("%d corruptions counted", n)
			}
			return
		default:
		}
		if _, err := st.List(a.ns, []byte("log/"), 0); err != nil {
			t.Fatalf("list while deleting: %v", err)
		}
	}
}
