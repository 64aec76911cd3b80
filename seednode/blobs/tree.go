package blobs

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"

	"lukechampine.com/blake3/guts"
)

// Tree geometry: BLAKE3 chunks of 1 KiB, grouped 16 to a leaf of the stored
// tree (Bao "group 4"), so the outboard costs 64 bytes per 16 KiB (0.4%) and
// verification happens in 16 KiB steps.
const (
	ChunkSize = guts.ChunkSize
	GroupLog  = 4
	GroupSize = ChunkSize << GroupLog
	// headerLen is the little-endian size that starts outboards and streams.
	headerLen = 8
	parentLen = 64
)

// NumGroups is the number of 16 KiB groups of a blob (an empty blob has one,
// empty, group).
func NumGroups(size uint64) uint64 {
	if size == 0 {
		return 1
	}
	return (size + GroupSize - 1) / GroupSize
}

// OutboardSize is the size of a blob's outboard: the header and one 64-byte
// parent node per interior node of the tree, in pre-order.
func OutboardSize(size uint64) uint64 { return headerLen + parentLen*(NumGroups(size)-1) }

// splitLen is the size of the left subtree of a node covering n bytes: the
// largest power of two below n, as BLAKE3 builds its tree.
func splitLen(n uint64) uint64 { return 1 << (bits.Len64(n-1) - 1) }

// subtreeParents is the number of parent nodes under (and including) a node
// covering n bytes.
func subtreeParents(n uint64) uint64 { return NumGroups(n) - 1 }

type cv = [8]uint32

func cvFromBytes(b []byte) (c cv) {
	for i := range c {
		c[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return c
}

func cvToBytes(c cv, b []byte) {
	for i, w := range c {
		binary.LittleEndian.PutUint32(b[4*i:], w)
	}
}

// groupCV is the chaining value of the group starting at byte pos. buf must
// hold the group's data in its first n bytes (it is a full 16 KiB array so
// the SIMD compressor needs no copy).
func groupCV(buf *[GroupSize]byte, n int, pos uint64, root bool) cv {
	var flags uint32
	if root {
		flags = guts.FlagRoot
	}
	node := guts.CompressBuffer(buf, n, &guts.IV, pos/ChunkSize, 0)
	node.Flags |= flags
	return guts.ChainingValue(node)
}

func parentCV(l, r cv, root bool) cv {
	var flags uint32
	if root {
		flags = guts.FlagRoot
	}
	return guts.ChainingValue(guts.ParentNode(l, r, &guts.IV, flags))
}

// GroupRange is the groups [Start, End).
type GroupRange struct{ Start, End uint64 }

// Ranges is a set of group ranges. The zero value means "the whole blob".
type Ranges []GroupRange

// ByteRange returns the groups that hold bytes [offset, offset+length) of a
// blob of the given size. Like Bao slices, a range at or past the end
// selects the last group, and an empty range the group holding offset.
func ByteRange(offset, length, size uint64) GroupRange {
	last := NumGroups(size) - 1
	start := min(offset/GroupSize, last)
	end := start + 1
	if length > 0 && offset+length > offset {
		end = max(end, min((offset+length+GroupSize-1)/GroupSize, last+1))
	}
	return GroupRange{start, end}
}

// normalize clamps to the blob, sorts and merges; empty means everything.
func (r Ranges) normalize(groups uint64) Ranges {
	if len(r) == 0 {
		return Ranges{{0, groups}}
	}
	out := make(Ranges, 0, len(r))
	for _, g := range r {
		g.End = min(g.End, groups)
		if g.Start < g.End {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b GroupRange) int {
		switch {
		case a.Start < b.Start:
			return -1
		case a.Start > b.Start:
			return 1
		}
		return 0
	})
	merged := out[:0]
	for _, g := range out {
		if n := len(merged); n > 0 && g.Start <= merged[n-1].End {
			merged[n-1].End = max(merged[n-1].End, g.End)
			continue
		}
		merged = append(merged, g)
	}
	return merged
}

// intersects reports whether groups [start, end) meet the (normalized) set.
func (r Ranges) intersects(start, end uint64) bool {
	i, _ := slices.BinarySearchFunc(r, start, func(g GroupRange, s uint64) int {
		if g.End <= s {
			return -1
		}
		return 1
	})
	return i < len(r) && r[i].Start < end
}

// Groups counts the groups in a normalized set.
func (r Ranges) Groups() uint64 {
	var n uint64
	for _, g := range r {
		n += g.End - g.Start
	}
	return n
}

func (g GroupRange) String() string {
	return fmt.Sprintf("groups %d-%d (bytes %d-%d)", g.Start, g.End-1, g.Start*GroupSize, g.End*GroupSize-1)
}
