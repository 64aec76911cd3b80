package fleet

import (
	"crypto/sha256"
	"slices"
	"testing"
)

func item(i int) (ns, fp [32]byte) {
	return sha256.Sum256([]byte{'n', byte(i), byte(i >> 8)}), sha256.Sum256([]byte{'f', byte(i), byte(i >> 8)})
}

func TestDigestFindsTheVaultsThatDiffer(t *testing.T) {
	key := [32]byte{42}
	a, b := NewDigest(key), NewDigest(key)
	for i := range 10000 {
		ns, fp := item(i)
		a.Add(ns, fp)
		b.Add(ns, fp)
	}
	if a.Root() != b.Root() || len(a.DiffBuckets(b)) != 0 {
		t.Fatal("equal sets have different digests")
	}
	// Order does not matter: build c in reverse.
	c := NewDigest(key)
	for i := 9999; i >= 0; i-- {
		c.Add(item(i))
	}
	if c.Root() != a.Root() {
		t.Fatal("the digest depends on insertion order")
	}

	// One vault changes on b, one is only on a.
	ns1, fp1 := item(17)
	b.Change(ns1, fp1, [32]byte{1})
	ns2, fp2 := item(10000)
	a.Add(ns2, fp2)
	if a.Root() == b.Root() {
		t.Fatal("different sets have equal roots")
	}
	diff := a.DiffBuckets(b)
	want := []int{BucketOf(ns1), BucketOf(ns2)}
	slices.Sort(want)
	want = slices.Compact(want)
	if !slices.Equal(diff, want) {
		t.Fatalf("differing buckets %v, want %v", diff, want)
	}
	// Undoing the changes restores equality.
	b.Change(ns1, [32]byte{1}, fp1)
	a.Remove(ns2, fp2)
	if a.Root() != b.Root() {
		t.Fatal("undoing the changes does not restore the digest")
	}
	// Another key gives another digest for the same set.
	if NewDigest([32]byte{1}).Root() == NewDigest([32]byte{2}).Root() {
		t.Fatal("the root does not depend on the key")
	}
}

func TestBucketOf(t *testing.T) {
	if BucketOf([32]byte{0xff, 0xf0}) != DigestBuckets-1 || BucketOf([32]byte{0x00, 0x0f}) != 0 || BucketOf([32]byte{0x01, 0x20}) != 18 {
		t.Fatal("BucketOf does not take the first 12 bits")
	}
}

// TestDigestChangeAllocatesNothing: a digest is updated on every write to a
// vault and built over every vault a pod shares with a peer, so hashing an
// item must not allocate.
func TestDigestChangeAllocatesNothing(t *testing.T) {
	d := NewDigest([32]byte{7})
	ns, fp := item(1)
	_, fp2 := item(2)
	d.Add(ns, fp)
	if n := testing.AllocsPerRun(100, func() { d.Change(ns, fp, fp2); d.Change(ns, fp2, fp) }); n != 0 {
		t.Fatalf("%v allocations per change", n)
	}
}
