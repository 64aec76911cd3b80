package vault

import (
	"math/rand/v2"
	"testing"
)

// TestFeedSubscribers: a vault's subscribers each get what is stored after
// they subscribed, except what their own origin stored; one that closed
// (twice: harmless) gets nothing more while the others still do; another
// vault's subscriber gets none of it; the store's close reaches them all.
func TestFeedSubscribers(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	w, other := newWriter(t, newNamespaceKey(rng), rng), newWriter(t, newNamespaceKey(rng), rng)
	st, err := Open(t.TempDir(), StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	own := NewOrigin()
	a, b, c := st.Subscribe(w.ns, NewOrigin()), st.Subscribe(w.ns, own), st.Subscribe(w.ns, NewOrigin())
	elsewhere := st.Subscribe(other.ns, NewOrigin())
	got := func(sub *Subscription) (keys []string, closed bool) {
		items, overflow, closed := sub.Next()
		if overflow {
			t.Fatal("overflow")
		}
		for _, it := range items {
			keys = append(keys, string(it.Entry.Key))
		}
		return keys, closed
	}
	expect := func(what string, sub *Subscription, want ...string) {
		t.Helper()
		keys, _ := got(sub)
		if len(keys) != len(want) || (len(want) == 1 && keys[0] != want[0]) {
			t.Fatalf("%s got %q, want %q", what, keys, want)
		}
	}

	if _, err := st.Insert([]Item{w.item(t, "one", "x", nowMicros())}, own, true); err != nil {
		t.Fatal(err)
	}
	expect("a", a, "one")
	expect("b (its own write)", b)
	expect("c", c, "one")
	expect("another vault's subscriber", elsewhere)

	c.Close()
	c.Close()
	insert(t, st, w.item(t, "two", "y", nowMicros()))
	expect("a", a, "two")
	expect("b", b, "two")
	expect("c after Close", c)

	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for name, sub := range map[string]*Subscription{"a": a, "b": b, "another vault's subscriber": elsewhere} {
		if _, closed := got(sub); !closed {
			t.Fatalf("%s not told that the store closed", name)
		}
	}
	a.Close() // after the store's close: harmless
}
