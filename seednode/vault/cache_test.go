package vault

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestBlockCacheServesReadsAfterWrites: after enough writes that the
// memtables grew large (Pebble counts them against the block cache), reads
// of the same entries come from the cache the second time. With the
// memtables inside the cache's size, nothing was ever cached and every read
// went to the files.
func TestBlockCacheServesReadsAfterWrites(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	w := newWriter(t, newNamespaceKey(rng), rng)
	st := testStore(t, StoreOptions{CacheSize: 4 << 20})
	value := strings.Repeat("v", 900)
	var items []Item
	for i := range 20_000 {
		items = append(items, w.item(t, fmt.Sprintf("doc/%06d", i), value, uint64(1000+i)))
	}
	for from := 0; from < len(items); from += 1000 {
		if _, err := st.Insert(items[from:from+1000], 0, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.db.Flush(); err != nil {
		t.Fatal(err)
	}
	read := func() {
		for i := 0; i < len(items); i += 10 {
			ih := items[i].Entry.ItemHash()
			if it, err := st.getItem(w.ns, &ih); err != nil || it == nil {
				t.Fatalf("entry %d: %v %v", i, it, err)
			}
		}
	}
	read()
	before := st.db.Metrics().BlockCache
	read()
	after := st.db.Metrics().BlockCache
	hits, misses := after.Hits-before.Hits, after.Misses-before.Misses
	if hits == 0 || misses > hits {
		t.Fatalf("reading the same %d entries again: %d block cache hits, %d misses (cache holds %d bytes)", len(items)/10, hits, misses, after.Size)
	}
}
