package vault

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/zeebo/blake3"
)

// The reconciliation tree is a 16-ary trie over item hashes: a node at depth d
// holds the items whose hash starts with its d nibbles. Every vault keeps the
// aggregate (sum of item fingerprints mod 2^256, item count) of each node down
// to aggDepth in Pebble, updated in the same batch as the entries, so a range
// fingerprint is one read, never a scan of the vault. Below aggDepth a node
// holds ~n/65536 items and is summed on demand.
const (
	fanout   = 16
	aggDepth = 4
	// maxDepth bounds the depth a peer may name: far below the 64 nibbles of
	// a hash, far above what a vault of any size needs.
	maxDepth = 24
)

// Node names a subtree: its first Depth nibbles of item hash are Prefix.
type Node struct {
	Depth  uint8
	Prefix Hash // nibbles beyond Depth are zero
}

// Root is the node that holds every item.
var Root = Node{}

func nibble(h *Hash, i int) byte {
	if i%2 == 0 {
		return h[i/2] >> 4
	}
	return h[i/2] & 0x0f
}

// nodeOf returns the depth-d node containing item hash h.
func nodeOf(h *Hash, d int) Node {
	n := Node{Depth: uint8(d)}
	copy(n.Prefix[:d/2], h[:d/2])
	if d%2 == 1 {
		n.Prefix[d/2] = h[d/2] & 0xf0
	}
	return n
}

// Child returns child c (0..15) of n.
func (n Node) Child(c int) Node {
	ch := n
	d := int(n.Depth)
	if d%2 == 0 {
		ch.Prefix[d/2] |= byte(c) << 4
	} else {
		ch.Prefix[d/2] |= byte(c)
	}
	ch.Depth++
	return ch
}

func (n Node) prefixLen() int { return (int(n.Depth) + 1) / 2 }

func (n Node) String() string {
	s := make([]byte, 0, n.Depth)
	for i := 0; i < int(n.Depth); i++ {
		s = append(s, "0123456789abcdef"[nibble(&n.Prefix, i)])
	}
	return "node[" + string(s) + "]"
}

// appendNode encodes depth then the prefix bytes.
func appendNode(b []byte, n Node) []byte {
	b = append(b, n.Depth)
	return append(b, n.Prefix[:n.prefixLen()]...)
}

func decodeNode(b []byte) (Node, int, error) {
	var n Node
	if len(b) < 1 {
		return n, 0, fmt.Errorf("%w: missing node", ErrProtocol)
	}
	n.Depth = b[0]
	if n.Depth > maxDepth {
		return n, 0, fmt.Errorf("%w: node depth %d exceeds %d", ErrProtocol, n.Depth, maxDepth)
	}
	pl := n.prefixLen()
	if len(b) < 1+pl {
		return n, 0, fmt.Errorf("%w: truncated node", ErrProtocol)
	}
	copy(n.Prefix[:], b[1:1+pl])
	if n.Depth%2 == 1 && n.Prefix[pl-1]&0x0f != 0 {
		return n, 0, fmt.Errorf("%w: node prefix has bits beyond its depth", ErrProtocol)
	}
	return n, 1 + pl, nil
}

// prefixBounds returns the smallest item-hash prefix in n and the first one
// after it (nil when n ends at the top of the hash space).
func (n Node) prefixBounds() (lo, hi []byte) {
	pl := n.prefixLen()
	lo = n.Prefix[:pl]
	if pl == 0 {
		return lo, nil
	}
	hi = append([]byte(nil), lo...)
	inc := byte(1)
	if n.Depth%2 == 1 {
		inc = 0x10
	}
	for i := pl - 1; i >= 0; i-- {
		sum := uint16(hi[i]) + uint16(inc)
		hi[i] = byte(sum)
		if sum < 0x100 {
			return lo, hi
		}
		inc = 1
	}
	return lo, nil
}

// aggSuffix is the 3-byte key suffix of a stored aggregate: depth, then the
// first four nibbles, so a node's 16 children are adjacent keys.
func (n Node) aggSuffix() uint32 {
	return uint32(n.Depth)<<16 | uint32(binary.BigEndian.Uint16(n.Prefix[:2]))
}

// Aggregate is the sum (mod 2^256) of item fingerprints in a node and their count.
type Aggregate struct {
	Sum   [4]uint64
	Count uint64
}

const aggLen = 40

func (a *Aggregate) add(fp *Hash) {
	var c uint64
	for i := 0; i < 4; i++ {
		a.Sum[i], c = bits.Add64(a.Sum[i], binary.LittleEndian.Uint64(fp[8*i:]), c)
	}
	a.Count++
}

func (a *Aggregate) sub(fp *Hash) {
	var b uint64
	for i := 0; i < 4; i++ {
		a.Sum[i], b = bits.Sub64(a.Sum[i], binary.LittleEndian.Uint64(fp[8*i:]), b)
	}
	a.Count--
}

func (a *Aggregate) merge(o *Aggregate) {
	var c uint64
	for i := 0; i < 4; i++ {
		a.Sum[i], c = bits.Add64(a.Sum[i], o.Sum[i], c)
	}
	a.Count += o.Count
}

func (a *Aggregate) appendTo(b []byte) []byte {
	for i := 0; i < 4; i++ {
		b = binary.LittleEndian.AppendUint64(b, a.Sum[i])
	}
	return binary.LittleEndian.AppendUint64(b, a.Count)
}

func decodeAggregate(b []byte) (Aggregate, error) {
	var a Aggregate
	if len(b) != aggLen {
		return a, fmt.Errorf("stored aggregate is %d bytes, want %d: %w", len(b), aggLen, ErrDamaged)
	}
	for i := 0; i < 4; i++ {
		a.Sum[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	a.Count = binary.LittleEndian.Uint64(b[32:])
	return a, nil
}

// setFingerprintDomain separates set fingerprints from every other BLAKE3 use.
const setFingerprintDomain = "seedfleet/vault/set-fingerprint/v1\x00"

// setFingerprint hashes the stored (unsalted) aggregate of a whole vault:
// the sum of its item fingerprints and their count, so equal sets give equal
// fingerprints on every replica and unequal ones differ but for a collision.
// An empty vault's is the zero Hash.
func (a *Aggregate) setFingerprint() Hash {
	if a.Count == 0 {
		return Hash{}
	}
	var buf [len(setFingerprintDomain) + aggLen]byte
	return Hash(blake3.Sum256(a.appendTo(append(buf[:0], setFingerprintDomain...))))
}

// wireFPLen is the size of a range fingerprint on the wire. Each session
// hashes the stored 256-bit aggregates with a fresh random salt, so a
// collision (2^-64 per comparison) is not repeatable and a session's final
// root check catches it.
const wireFPLen = 8

type wireFP [wireFPLen]byte

// fpHasher computes a session's salted range fingerprints. It keeps one
// keyed hasher and resets it per fingerprint: a hasher made per fingerprint
// was a tenth of a seed's CPU when devices synced a large shared vault. A
// session uses it from its own goroutine only.
type fpHasher struct{ h *blake3.Hasher }

func newFPHasher(salt []byte) fpHasher {
	key := blake3.Sum256(append([]byte("seedfleet/vault/range-fingerprint/v1\x00"), salt...))
	h, _ := blake3.NewKeyed(key[:]) // a 32-byte key: no error
	return fpHasher{h: h}
}

func (f fpHasher) wire(a *Aggregate) wireFP {
	f.h.Reset()
	var buf [aggLen]byte
	_, _ = f.h.Write(a.appendTo(buf[:0]))
	var sum [32]byte
	var out wireFP
	copy(out[:], f.h.Sum(sum[:0]))
	return out
}

// itemID names an item version inside an ID list: a prefix of its fingerprint.
type itemID [8]byte

func idOf(fp *Hash) itemID {
	var id itemID
	copy(id[:], fp[:8])
	return id
}
