package fleet

import (
	"crypto/subtle"

	"github.com/zeebo/blake3"
)

// Two pods compare everything they both host in one cheap exchange: each
// keeps, per peer, a digest of the set of (vault, fingerprint) pairs it
// shares with that peer, split into buckets by vault. Equal roots mean
// nothing to do; otherwise the buckets that differ name the few vaults
// worth a sync session. The digest of a set is the XOR of its items'
// keyed hashes, so adding, removing or changing one vault costs one hash,
// not a pass over the set.
//
// The hash is keyed with a secret devices do not know (the asking seed's,
// random per process, sent to the answering seed over the encrypted
// stream): otherwise a device that controls the fingerprints of several
// vaults could search for values whose hashes cancel, and hide a
// difference between two pods. seednode/node's replica digest exchange
// keeps one digest per replica peer under its own key and one under the
// peer's, both updated as fingerprints change.

// DigestBuckets is how many buckets a digest has: 4,096 of 16 bytes, so the
// full bucket list is 64 KiB, sent only when the roots differ.
const DigestBuckets = 4096

// DigestItemLen is the length of an item's keyed hash.
const DigestItemLen = 16

// Digest is a set digest of (vault, fingerprint) pairs. The zero value is
// the empty set under no key; use NewDigest.
type Digest struct {
	key     [32]byte
	buckets [DigestBuckets][DigestItemLen]byte
	counts  [DigestBuckets]uint32
	// h is the keyed hasher, reset for each item: a new one allocates
	// several KiB, which a digest of 100,000 vaults would make 100,000
	// times. A Digest is not safe for concurrent use.
	h *blake3.Hasher
}

// NewDigest returns an empty digest under key.
func NewDigest(key [32]byte) *Digest { return &Digest{key: key} }

func (d *Digest) hasher() *blake3.Hasher {
	if d.h == nil {
		d.h, _ = blake3.NewKeyed(d.key[:]) // a 32-byte key never fails
	} else {
		d.h.Reset()
	}
	return d.h
}

// BucketOf is the bucket vault ns falls in: its first 12 bits.
func BucketOf(ns [32]byte) int { return int(ns[0])<<4 | int(ns[1]>>4) }

// ItemHash is the keyed hash of one (vault, fingerprint) pair.
func (d *Digest) ItemHash(ns, fp [32]byte) [DigestItemLen]byte {
	h := d.hasher()
	h.Write(ns[:])
	h.Write(fp[:])
	var sum [32]byte
	h.Sum(sum[:0])
	return [DigestItemLen]byte(sum[:DigestItemLen])
}

func xorInto(dst *[DigestItemLen]byte, src [DigestItemLen]byte) {
	subtle.XORBytes(dst[:], dst[:], src[:])
}

// Add puts (ns, fp) into the set. Adding a pair already in the set, or
// removing one that is not, corrupts the digest: callers track membership.
func (d *Digest) Add(ns, fp [32]byte) {
	b := BucketOf(ns)
	xorInto(&d.buckets[b], d.ItemHash(ns, fp))
	d.counts[b]++
}

// Remove takes (ns, fp) out of the set.
func (d *Digest) Remove(ns, fp [32]byte) {
	b := BucketOf(ns)
	xorInto(&d.buckets[b], d.ItemHash(ns, fp))
	d.counts[b]--
}

// Change replaces vault ns's fingerprint from old to new.
func (d *Digest) Change(ns, old, new [32]byte) {
	if old == new {
		return
	}
	b := BucketOf(ns)
	xorInto(&d.buckets[b], d.ItemHash(ns, old))
	xorInto(&d.buckets[b], d.ItemHash(ns, new))
}

// Bucket returns bucket i's hash and item count.
func (d *Digest) Bucket(i int) ([DigestItemLen]byte, uint32) { return d.buckets[i], d.counts[i] }

// Root summarises the whole set: the hash of every bucket's hash and count.
func (d *Digest) Root() [32]byte {
	h := d.hasher()
	var n [4]byte
	for i := range d.buckets {
		h.Write(d.buckets[i][:])
		c := d.counts[i]
		n[0], n[1], n[2], n[3] = byte(c), byte(c>>8), byte(c>>16), byte(c>>24)
		h.Write(n[:])
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// DiffBuckets lists the buckets whose hash or count differ between d and
// other (which must use the same key).
func (d *Digest) DiffBuckets(other *Digest) []int {
	var out []int
	for i := range d.buckets {
		if d.buckets[i] != other.buckets[i] || d.counts[i] != other.counts[i] {
			out = append(out, i)
		}
	}
	return out
}
