package discovery

import (
	"context"
	"testing"

	ds "github.com/ipfs/go-datastore"
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

// TestDatastoreKeepsRecordsAcrossARestart: provider records written before
// a Close are there after the datastore is opened again, and Close twice
// is not an error.
func TestDatastoreKeepsRecordsAcrossARestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := OpenDatastore(dir)
	if err != nil {
		t.Fatal(err)
	}
	k := ds.NewKey("/providers/abc/def")
	if err := d.Put(ctx, k, []byte("record")); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	d, err = OpenDatastore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if v, err := d.Get(ctx, k); err != nil || string(v) != "record" {
		t.Fatalf("after reopening: %q, %v", v, err)
	}
	// The directory is locked while open: a second seed on it is refused.
	if _, err := OpenDatastore(dir); err == nil {
		t.Fatal("a second open of the same directory succeeded")
	}
}
