package vault

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// sized signs an entry whose value is not inline (a blob of size bytes).
func (w *writer) sized(t testing.TB, key string, size, ts uint64) Item {
	t.Helper()
	e := Entry{Namespace: w.ns, Key: []byte(key), Author: w.author,
		Hash: HashOf(fmt.Appendf(nil, "%s/%d/%d", key, size, ts)), Size: size, Timestamp: ts}
	se, err := Sign(e, w.authorKey, w.consent, nil)
	if err != nil {
		t.Fatal(err)
	}
	return Item{Entry: se}
}

func fixedLimits(l Limits) StoreOptions {
	return StoreOptions{LimitsFor: func(NamespaceID) Limits { return l }, NoSync: true}
}

func mustGet(t testing.TB, st *Store, ns NamespaceID, key string) []Item {
	t.Helper()
	items, err := st.Get(ns, []byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return items
}

func sameItem(a, b *Item) bool {
	return a.Entry.Fingerprint() == b.Entry.Fingerprint() && sameSigned(&a.Entry, &b.Entry) && bytes.Equal(a.Content, b.Content)
}

func mustStats(t testing.TB, st *Store, ns NamespaceID) Stats {
	t.Helper()
	s, err := st.Stats(ns)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStoreNewestWins(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	w := newWriter(t, newNamespaceKey(rng), rng)
	old := w.item(t, "doc", "old value", 100)
	newer := w.item(t, "doc", "new", 200)

	t.Run("older after newer is stale", func(t *testing.T) {
		st := testStore(t, StoreOptions{NoSync: true})
		if r := insert(t, st, newer); r.Stored != 1 {
			t.Fatalf("first insert: %+v", r)
		}
		r := insert(t, st, old)
		if r.Stale != 1 || r.Stored != 0 || r.Refused != 0 || len(r.StoredItems) != 0 {
			t.Fatalf("older insert: %+v", r)
		}
		got := mustGet(t, st, w.ns, "doc")
		if len(got) != 1 || !sameItem(&got[0], &newer) {
			t.Fatalf("Get returned %d items, want the newer version", len(got))
		}
		if s := mustStats(t, st, w.ns); s.Entries != 1 || s.Bytes != newer.Entry.Size {
			t.Fatalf("stats %+v", s)
		}
		checkAggregates(t, st, w.ns)
	})
	t.Run("newer after older replaces", func(t *testing.T) {
		st := testStore(t, StoreOptions{NoSync: true})
		insert(t, st, old)
		r := insert(t, st, newer)
		if r.Stored != 1 || len(r.StoredItems) != 1 || !sameItem(&r.StoredItems[0], &newer) {
			t.Fatalf("newer insert: %+v", r)
		}
		got := mustGet(t, st, w.ns, "doc")
		if len(got) != 1 || !sameItem(&got[0], &newer) {
			t.Fatal("Get does not return the newer version")
		}
		if s := mustStats(t, st, w.ns); s.Entries != 1 || s.Bytes != newer.Entry.Size {
			t.Fatalf("stats %+v, want 1 entry of %d bytes", s, newer.Entry.Size)
		}
		if d := dump(t, st, w.ns); len(d) != 1 || d[newer.Entry.ItemHash()] != newer.Entry.Fingerprint() {
			t.Fatal("the tree still holds the old version")
		}
		checkAggregates(t, st, w.ns)
	})
	t.Run("same version twice is stale", func(t *testing.T) {
		st := testStore(t, StoreOptions{NoSync: true})
		insert(t, st, newer)
		if r := insert(t, st, newer); r.Stale != 1 || r.Stored != 0 {
			t.Fatalf("%+v", r)
		}
		if r := insert(t, st, old, newer, old); r.Stale != 3 {
			t.Fatalf("%+v", r)
		}
	})

	// Equal timestamps: the larger hash wins, whatever the order.
	a, b := w.item(t, "tie", "value A", 500), w.item(t, "tie", "value B", 500)
	big, small := a, b
	if bytes.Compare(a.Entry.Hash[:], b.Entry.Hash[:]) < 0 {
		big, small = b, a
	}
	orders := []struct {
		name   string
		first  Item
		second Item
		stored int
	}{
		{"small then big", small, big, 1},
		{"big then small", big, small, 0},
	}
	for _, o := range orders {
		t.Run("equal timestamps/"+o.name, func(t *testing.T) {
			st := testStore(t, StoreOptions{NoSync: true})
			insert(t, st, o.first)
			r := insert(t, st, o.second)
			if r.Stored != o.stored || r.Stale != 1-o.stored {
				t.Fatalf("second insert: %+v", r)
			}
			got := mustGet(t, st, w.ns, "tie")
			if len(got) != 1 || !sameItem(&got[0], &big) {
				t.Fatal("the larger hash did not win")
			}
			checkAggregates(t, st, w.ns)
		})
		t.Run("equal timestamps in one batch/"+o.name, func(t *testing.T) {
			st := testStore(t, StoreOptions{NoSync: true})
			r := insert(t, st, o.first, o.second)
			if r.Stored != 1+o.stored || r.Stale != 1-o.stored {
				t.Fatalf("batch insert: %+v", r)
			}
			got := mustGet(t, st, w.ns, "tie")
			if len(got) != 1 || !sameItem(&got[0], &big) {
				t.Fatal("the larger hash did not win")
			}
			if s := mustStats(t, st, w.ns); s.Entries != 1 || s.Bytes != big.Entry.Size {
				t.Fatalf("stats %+v", s)
			}
			checkAggregates(t, st, w.ns)
		})
	}
}

func TestStoreMultiAuthor(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	nsKey := newNamespaceKey(rng)
	w1, w2 := newWriter(t, nsKey, rng), newWriter(t, nsKey, rng)
	st := testStore(t, StoreOptions{NoSync: true})
	i1, i2 := w1.item(t, "shared", "from one", 10), w2.item(t, "shared", "from two, older", 5)
	if r := insert(t, st, i1, i2); r.Stored != 2 {
		t.Fatalf("%+v", r)
	}
	// A newer version by author 1 does not touch author 2's entry.
	i1b := w1.item(t, "shared", "from one, again", 20)
	if r := insert(t, st, i1b); r.Stored != 1 {
		t.Fatalf("%+v", r)
	}
	got := mustGet(t, st, w1.ns, "shared")
	if len(got) != 2 {
		t.Fatalf("Get returned %d entries, want one per author", len(got))
	}
	want := map[AuthorID]*Item{w1.author: &i1b, w2.author: &i2}
	for i := range got {
		if w := want[got[i].Entry.Author]; w == nil || !sameItem(&got[i], w) {
			t.Fatalf("unexpected entry by %s", got[i].Entry.Author.Short())
		}
		delete(want, got[i].Entry.Author)
	}
	if bytes.Compare(got[0].Entry.Author[:], got[1].Entry.Author[:]) >= 0 {
		t.Fatal("Get is not ordered by author")
	}
	if s := mustStats(t, st, w1.ns); s.Entries != 2 || s.Bytes != i1b.Entry.Size+i2.Entry.Size {
		t.Fatalf("stats %+v", s)
	}
	if len(mustGet(t, st, w1.ns, "shared\x00")) != 0 || len(mustGet(t, st, w1.ns, "share")) != 0 {
		t.Fatal("Get matched a different key")
	}
	checkAggregates(t, st, w1.ns)
}

func TestStoreListPrefix(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	nsKey := newNamespaceKey(rng)
	w1, w2 := newWriter(t, nsKey, rng), newWriter(t, nsKey, rng)
	// An unrelated vault in the same store must never show up.
	other := newWriter(t, newNamespaceKey(rng), rng)

	keys := []string{
		"a", "a\x00", "a\x00\x00", "a\x00b", "a\x00\xff", "a\x01", "a\xff", "a\xff\xff", "a\xff\x00",
		"ab", "abc", "abd", "b", "\x01\x00", "\x01\x00\x00", "\x01\x00\x01", "\x01", "\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff",
		"x\x00\x01y", "x\x00", "x",
	}
	st := testStore(t, StoreOptions{NoSync: true})
	type ka struct {
		key    string
		author AuthorID
	}
	var all []ka
	for i, k := range keys {
		writers := []*writer{w1}
		if i%3 != 0 {
			writers = append(writers, w2)
		}
		for _, w := range writers {
			insert(t, st, w.item(t, k, "v:"+k, uint64(100+i)))
			all = append(all, ka{k, w.author})
		}
		insert(t, st, other.item(t, k, "other", 1))
	}
	slices.SortFunc(all, func(x, y ka) int {
		if c := strings.Compare(x.key, y.key); c != 0 {
			return c
		}
		return bytes.Compare(x.author[:], y.author[:])
	})

	prefixes := []string{"", "a", "a\x00", "a\x00\x00", "a\x00\xff", "a\xff", "a\xff\xff", "ab", "abc", "abcd",
		"\x01\x00", "\x01\x00\x00", "\xff", "\xff\xff", "\xff\xff\xff", "\xff\xff\xff\xff", "x", "x\x00", "x\x00\x01", "b", "c", "\x01"}
	for _, p := range prefixes {
		t.Run(fmt.Sprintf("prefix %q", p), func(t *testing.T) {
			var want []ka
			for _, e := range all {
				if strings.HasPrefix(e.key, p) {
					want = append(want, e)
				}
			}
			for _, limit := range []int{0, 1, 3} {
				got, err := st.List(w1.ns, []byte(p), limit)
				if err != nil {
					t.Fatal(err)
				}
				w := want
				if limit > 0 && len(w) > limit {
					w = w[:limit]
				}
				if len(got) != len(w) {
					var gk []string
					for _, g := range got {
						gk = append(gk, fmt.Sprintf("%q", g.Entry.Key))
					}
					t.Fatalf("limit %d: List returned %d entries %v, want %d", limit, len(got), gk, len(w))
				}
				for i := range got {
					e := &got[i].Entry
					if string(e.Key) != w[i].key || e.Author != w[i].author {
						t.Fatalf("limit %d: entry %d is %q by %s, want %q by %s", limit, i, e.Key, e.Author.Short(), w[i].key, w[i].author.Short())
					}
					if e.Namespace != w1.ns || string(got[i].Content) != "v:"+w[i].key {
						t.Fatalf("entry %d: wrong vault or content %q", i, got[i].Content)
					}
				}
			}
		})
	}
	t.Run("Get exact keys", func(t *testing.T) {
		for i, k := range keys {
			want := 2
			if i%3 == 0 {
				want = 1
			}
			got := mustGet(t, st, w1.ns, k)
			if len(got) != want {
				t.Fatalf("Get(%q): %d entries, want %d", k, len(got), want)
			}
			for _, g := range got {
				if string(g.Entry.Key) != k {
					t.Fatalf("Get(%q) returned key %q", k, g.Entry.Key)
				}
			}
		}
		if len(mustGet(t, st, w1.ns, "zz")) != 0 {
			t.Fatal("Get of a missing key returned entries")
		}
	})
}

func TestStoreLimits(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	nsKey := newNamespaceKey(rng)
	w1, w2 := newWriter(t, nsKey, rng), newWriter(t, nsKey, rng)

	t.Run("MaxEntries", func(t *testing.T) {
		st := testStore(t, fixedLimits(Limits{MaxEntries: 3}))
		if r := insert(t, st, w1.item(t, "k1", "1", 1), w1.item(t, "k2", "2", 1), w1.item(t, "k3", "3", 1)); r.Stored != 3 {
			t.Fatalf("%+v", r)
		}
		r := insert(t, st, w1.item(t, "k4", "4", 1))
		if r.Stored != 0 || r.Refused != 1 || !errors.Is(r.FirstRefusal, ErrQuota) {
			t.Fatalf("4th key: %+v", r)
		}
		// A new author on an existing key is a new slot too.
		if r := insert(t, st, w2.item(t, "k1", "x", 1)); r.Refused != 1 || !errors.Is(r.FirstRefusal, ErrQuota) {
			t.Fatalf("new author: %+v", r)
		}
		// A newer version of an existing key is still accepted, also in a
		// batch where a new key is refused.
		r = insert(t, st, w1.item(t, "k5", "5", 1), w1.item(t, "k1", "1 again", 2), w1.item(t, "k6", "6", 1))
		if r.Stored != 1 || r.Refused != 2 || !errors.Is(r.FirstRefusal, ErrQuota) || !strings.Contains(r.FirstRefusal.Error(), "3") {
			t.Fatalf("mixed batch: %+v", r)
		}
		if got := mustGet(t, st, w1.ns, "k1"); len(got) != 1 || string(got[0].Content) != "1 again" {
			t.Fatal("newer version of k1 not stored")
		}
		if s := mustStats(t, st, w1.ns); s.Entries != 3 {
			t.Fatalf("stats %+v", s)
		}
		for _, k := range []string{"k4", "k5", "k6"} {
			if len(mustGet(t, st, w1.ns, k)) != 0 {
				t.Fatalf("refused key %s was stored", k)
			}
		}
		checkAggregates(t, st, w1.ns)
	})
	t.Run("MaxBytes", func(t *testing.T) {
		st := testStore(t, fixedLimits(Limits{MaxBytes: 100}))
		steps := []struct {
			item    Item
			stored  bool
			wantSum uint64
		}{
			{w1.sized(t, "a", 60, 1), true, 60},
			{w1.sized(t, "b", 41, 1), false, 60},  // 101 > 100
			{w1.sized(t, "b", 40, 1), true, 100},  // exactly the limit
			{w1.sized(t, "a", 61, 2), false, 100}, // replacement growing past the limit
			{w1.sized(t, "a", 10, 3), true, 50},   // replacement shrinking frees bytes
			{w2.sized(t, "c", 50, 1), true, 100},  // fills it again
			{w2.sized(t, "d", 0, 1), true, 100},   // empty values cost nothing
			{w1.sized(t, "e", ^uint64(0), 1), false, 100},
			{w1.sized(t, "a", ^uint64(0)-20, 4), false, 100}, // would overflow
		}
		for i, s := range steps {
			r := insert(t, st, s.item)
			if s.stored != (r.Stored == 1) || (!s.stored && (r.Refused != 1 || !errors.Is(r.FirstRefusal, ErrQuota))) {
				t.Fatalf("step %d (%q, %d bytes): %+v", i, s.item.Entry.Key, s.item.Entry.Size, r)
			}
			if got := mustStats(t, st, w1.ns).Bytes; got != s.wantSum {
				t.Fatalf("step %d: %d referenced bytes, want %d", i, got, s.wantSum)
			}
		}
		checkAggregates(t, st, w1.ns)
	})
	t.Run("MaxKeyLen", func(t *testing.T) {
		st := testStore(t, fixedLimits(Limits{MaxKeyLen: 4}))
		r := insert(t, st, w1.item(t, "abcd", "ok", 1), w1.item(t, "abcde", "long", 1))
		if r.Stored != 1 || r.Refused != 1 || !errors.Is(r.FirstRefusal, ErrKeyTooLong) {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("limits are per vault", func(t *testing.T) {
		other := newWriter(t, newNamespaceKey(rng), rng)
		st := testStore(t, StoreOptions{NoSync: true, LimitsFor: func(ns NamespaceID) Limits {
			if ns == w1.ns {
				return Limits{MaxEntries: 1}
			}
			return Limits{}
		}})
		insert(t, st, w1.item(t, "x", "1", 1))
		if r := insert(t, st, w1.item(t, "y", "1", 1)); r.Refused != 1 {
			t.Fatalf("%+v", r)
		}
		if r := insert(t, st, other.item(t, "x", "1", 1), other.item(t, "y", "1", 1)); r.Stored != 2 {
			t.Fatalf("other vault: %+v", r)
		}
	})
}

func TestStoreInsertRefusesBadBatches(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	w := newWriter(t, newNamespaceKey(rng), rng)
	other := newWriter(t, newNamespaceKey(rng), rng)
	good := w.item(t, "good", "value", 1)
	badHash := w.item(t, "bad", "value", 1)
	badHash.Content = []byte("other")
	badSize := w.item(t, "bad", "value", 1)
	badSize.Content = []byte("valu")
	tooBig := w.sized(t, "big", MaxInlineValue+1, 1)
	tooBig.Content = make([]byte, MaxInlineValue+1)
	tooBig.Entry.Hash = HashOf(tooBig.Content)

	cases := []struct {
		name    string
		items   []Item
		wantErr error
	}{
		{"content does not hash", []Item{good, badHash}, ErrContentInvalid},
		{"content has the wrong size", []Item{good, badSize}, ErrContentInvalid},
		{"content above MaxInlineValue", []Item{good, tooBig}, ErrContentInvalid},
		{"two vaults in one batch", []Item{good, other.item(t, "x", "y", 1)}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := testStore(t, StoreOptions{NoSync: true})
			_, err := st.Insert(c.items, 0, true)
			if err == nil || (c.wantErr != nil && !errors.Is(err, c.wantErr)) {
				t.Fatalf("err %v, want %v", err, c.wantErr)
			}
			// The batch is atomic: nothing of it was written.
			if d := dump(t, st, w.ns); len(d) != 0 {
				t.Fatalf("%d entries stored from a refused batch", len(d))
			}
			if s := mustStats(t, st, w.ns); s != (Stats{}) {
				t.Fatalf("stats %+v after a refused batch", s)
			}
			if len(mustGet(t, st, w.ns, "good")) != 0 {
				t.Fatal("key index written for a refused batch")
			}
		})
	}
}

func TestStoreContent(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	w := newWriter(t, newNamespaceKey(rng), rng)
	dir := t.TempDir()
	st, err := Open(dir, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { st.Close() }()

	binary := make([]byte, MaxInlineValue)
	for i := range binary {
		binary[i] = byte(i)
	}
	cases := []struct {
		key     string
		item    Item
		content []byte
	}{
		{"text", w.item(t, "text", "hello, vault", 1), []byte("hello, vault")},
		{"largest inline", w.item(t, "largest inline", string(binary), 1), binary},
		{"blob", w.sized(t, "blob", 1<<30, 1), nil},
		{"empty", w.item(t, "empty", "", 1), nil}, // an empty value reads back as no content
	}
	for _, c := range cases {
		insert(t, st, c.item)
	}
	check := func(t *testing.T, st *Store) {
		t.Helper()
		for _, c := range cases {
			got := mustGet(t, st, w.ns, c.key)
			if len(got) != 1 || !bytes.Equal(got[0].Content, c.content) || (c.content == nil) != (got[0].Content == nil) {
				t.Fatalf("%s: content %q, want %q", c.key, got[0].Content, c.content)
			}
			if c.content != nil && HashOf(got[0].Content) != got[0].Entry.Hash {
				t.Fatalf("%s: content does not match its hash", c.key)
			}
		}
	}
	t.Run("round trip", func(t *testing.T) { check(t, st) })
	t.Run("returned content is a copy", func(t *testing.T) {
		got := mustGet(t, st, w.ns, "text")
		got[0].Content[0] = 'X'
		if again := mustGet(t, st, w.ns, "text"); string(again[0].Content) != "hello, vault" {
			t.Fatal("mutating returned content changed the store")
		}
	})
	t.Run("a newer version replaces the content", func(t *testing.T) {
		insert(t, st, w.item(t, "text", "second", 2))
		got := mustGet(t, st, w.ns, "text")
		if string(got[0].Content) != "second" {
			t.Fatalf("content %q", got[0].Content)
		}
		cases[0].content = []byte("second")
		// A newer version without an inline value drops the old one.
		insert(t, st, w.sized(t, "text", 5000, 3))
		if got := mustGet(t, st, w.ns, "text"); got[0].Content != nil || got[0].Entry.Size != 5000 {
			t.Fatalf("stale content %q kept for a blob", got[0].Content)
		}
		cases[0].content = nil
	})
	t.Run("after reopening", func(t *testing.T) {
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if st, err = Open(dir, StoreOptions{}); err != nil {
			t.Fatal(err)
		}
		check(t, st)
	})
}

// model is what a vault should hold after a sequence of inserts.
type model map[Hash]Item

func (m model) apply(it Item) {
	ih := it.Entry.ItemHash()
	if old, ok := m[ih]; !ok || it.Entry.Newer(&old.Entry.Entry) {
		m[ih] = it
	}
}

func (m model) check(t *testing.T, st *Store, ns NamespaceID) {
	t.Helper()
	d := dump(t, st, ns)
	if len(d) != len(m) {
		t.Fatalf("store holds %d entries, model %d", len(d), len(m))
	}
	var bytes uint64
	for ih, it := range m {
		if d[ih] != it.Entry.Fingerprint() {
			t.Fatalf("entry %q by %s: stored version is not the newest", it.Entry.Key, it.Entry.Author.Short())
		}
		bytes += it.Entry.Size
	}
	if s := mustStats(t, st, ns); s.Entries != uint64(len(m)) || s.Bytes != bytes {
		t.Fatalf("stats %+v, model has %d entries of %d bytes", s, len(m), bytes)
	}
	checkAggregates(t, st, ns)
	all, err := st.List(ns, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(m) {
		t.Fatalf("List returned %d entries, model %d", len(all), len(m))
	}
	for i := range all {
		want := m[all[i].Entry.ItemHash()]
		if !sameItem(&all[i], &want) {
			t.Fatalf("List entry %q differs from the model", all[i].Entry.Key)
		}
	}
}

func TestStoreRandomInsertsAndReopen(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			nsKey := newNamespaceKey(rng)
			writers := []*writer{newWriter(t, nsKey, rng), newWriter(t, nsKey, rng), newWriter(t, nsKey, rng)}
			dir := t.TempDir()
			st, err := Open(dir, StoreOptions{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { st.Close() }()

			m := model{}
			for batch := 0; batch < 60; batch++ {
				n := 1 + rng.IntN(40)
				items := make([]Item, 0, n)
				for range n {
					w := writers[rng.IntN(len(writers))]
					key := fmt.Sprintf("k/%03d", rng.IntN(150))
					ts := uint64(1 + rng.IntN(20)) // few timestamps: many ties
					var it Item
					if rng.IntN(4) == 0 {
						it = w.sized(t, key, uint64(rng.IntN(1<<20)), ts)
					} else {
						it = w.item(t, key, fmt.Sprint("v", rng.IntN(8)), ts)
					}
					items = append(items, it)
					if rng.IntN(10) == 0 {
						items = append(items, it) // duplicate inside a batch
					}
				}
				r := insert(t, st, items...)
				if r.Refused != 0 || r.Stored+r.Stale != len(items) {
					t.Fatalf("batch %d: %+v for %d items", batch, r, len(items))
				}
				for _, it := range items {
					m.apply(it)
				}
				if batch%20 == 19 {
					m.check(t, st, writers[0].ns)
				}
			}
			m.check(t, st, writers[0].ns)
			before := mustStats(t, st, writers[0].ns)
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			if st, err = Open(dir, StoreOptions{NoSync: true}); err != nil {
				t.Fatal(err)
			}
			m.check(t, st, writers[0].ns)
			if after := mustStats(t, st, writers[0].ns); after != before {
				t.Fatalf("stats %+v after reopening, %+v before", after, before)
			}
			// Inserting after reopening builds on the stored aggregates.
			it := writers[1].item(t, "k/000", "after reopen", 1000)
			insert(t, st, it)
			m.apply(it)
			m.check(t, st, writers[0].ns)
		})
	}
}

func TestStoreDurableReopen(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	w := newWriter(t, newNamespaceKey(rng), rng)
	dir := t.TempDir()
	st, err := Open(dir, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var items []Item
	for i := range 50 {
		items = append(items, w.item(t, fmt.Sprintf("k%02d", i), fmt.Sprint(i), uint64(i+1)))
	}
	if _, err := st.Insert(items[:25], 0, true); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Insert(items[25:], 0, false); err != nil {
		t.Fatal(err)
	}
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
	want := dump(t, st, w.ns)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	st2, err := Open(dir, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	got := dump(t, st2, w.ns)
	if len(got) != len(want) || len(got) != 50 {
		t.Fatalf("%d entries after reopening, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatal("entry changed across reopen")
		}
	}
	if s := mustStats(t, st2, w.ns); s.Entries != 50 {
		t.Fatalf("stats %+v", s)
	}
	checkAggregates(t, st2, w.ns)
}

func TestStoreAfterClose(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	w := newWriter(t, newNamespaceKey(rng), rng)
	st, err := Open(t.TempDir(), StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	insert(t, st, w.item(t, "k", "v", 1))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	ops := []struct {
		name string
		fn   func() error
	}{
		{"Insert", func() error { _, err := st.Insert([]Item{w.item(t, "k2", "v", 1)}, 0, true); return err }},
		{"Get", func() error { _, err := st.Get(w.ns, []byte("k")); return err }},
		{"List", func() error { _, err := st.List(w.ns, nil, 0); return err }},
		{"Sync", st.Sync},
		{"scanNode", func() error { return st.scanNode(w.ns, Root, func(*Hash, *Hash, []byte) error { return nil }) }},
		{"Stats", func() error { _, err := st.Stats(w.ns); return err }},
		{"childAggregates", func() error { _, err := st.childAggregates(w.ns, Root); return err }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						err = fmt.Errorf("panic: %v", r)
					}
				}()
				err = op.fn()
			}()
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("%s after Close: %v, want ErrClosed", op.name, err)
			}
		})
	}
}

// TestStatsFingerprint: the set fingerprint depends on the entry set only
// (not on insertion order or on which replica computes it), tells different
// sets apart, and is zero for an empty vault.
func TestStatsFingerprint(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	w := newWriter(t, newNamespaceKey(rng), rng)
	a, b := w.item(t, "a", "one", 10), w.item(t, "b", "two", 20)
	newerA := w.item(t, "a", "one, again", 30)

	forward, backward := testStore(t, StoreOptions{NoSync: true}), testStore(t, StoreOptions{NoSync: true})
	if fp := mustStats(t, forward, w.ns).Fingerprint; fp != (Hash{}) {
		t.Fatalf("empty vault fingerprint %x, want zero", fp)
	}
	insert(t, forward, a, b)
	insert(t, backward, b)
	insert(t, backward, a)
	f, g := mustStats(t, forward, w.ns).Fingerprint, mustStats(t, backward, w.ns).Fingerprint
	if f != g || f == (Hash{}) {
		t.Fatalf("same entries, fingerprints %x and %x", f, g)
	}
	insert(t, backward, newerA) // same count, one entry replaced
	if h := mustStats(t, backward, w.ns).Fingerprint; h == f {
		t.Fatal("a replaced entry left the fingerprint unchanged")
	}
	insert(t, forward, newerA)
	if f, g := mustStats(t, forward, w.ns).Fingerprint, mustStats(t, backward, w.ns).Fingerprint; f != g {
		t.Fatalf("converged replicas differ: %x and %x", f, g)
	}
}
