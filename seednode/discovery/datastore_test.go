package discovery

import (
	"testing"

	dstest "github.com/ipfs/go-datastore/test"
)

// TestDatastoreConformance runs go-datastore's own suite (gets, puts,
// queries with prefixes, filters, orders, limits and offsets, batches).
func TestDatastoreConformance(t *testing.T) {
	d, err := OpenDatastore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dstest.SubtestAll(t, d)
}
