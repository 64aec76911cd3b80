package pebblecache

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/seedfleet/seedfleet/internal/pebblelog"
)

// TestCacheHoldsBlocksAfterWrites: a database that took enough writes for
// its memtables to grow still caches the blocks it reads, with Attach's
// cache; with Pebble's default cache it caches none (the reason for Attach).
func TestCacheHoldsBlocksAfterWrites(t *testing.T) {
	hits := func(attach bool) (int64, int64) {
		o := &pebble.Options{Logger: pebblelog.New(nil, "test")}
		if attach {
			release := Attach(o, 8<<20)
			defer release()
		}
		db, err := pebble.Open(t.TempDir(), o)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		val := make([]byte, 200)
		for i := range 60_000 { // ~14 MB: the memtables grow to their full size
			if err := db.Set(fmt.Appendf(nil, "k%07d", i), val, pebble.NoSync); err != nil {
				t.Fatal(err)
			}
		}
		get := func() {
			for i := 0; i < 60_000; i += 30 {
				_, c, err := db.Get(fmt.Appendf(nil, "k%07d", i))
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
			}
		}
		get()
		before := db.Metrics().BlockCache
		get()
		after := db.Metrics().BlockCache
		return after.Hits - before.Hits, after.Misses - before.Misses
	}
	if h, m := hits(true); h == 0 || m > h {
		t.Fatalf("with Attach: %d hits, %d misses reading the same keys again", h, m)
	}
	if h, _ := hits(false); h != 0 {
		t.Logf("Pebble's default cache now holds blocks after writes (%d hits): Attach may no longer be needed", h)
	}
}
