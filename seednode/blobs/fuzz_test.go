package blobs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"lukechampine.com/blake3/bao"
)

func FuzzParseCollection(f *testing.F) {
	b, _ := Collection{{Name: "a", Size: 1}, {Name: "b/c", Hash: [32]byte{9}, Size: 1 << 40}}.MarshalBinary()
	f.Add(b)
	f.Add([]byte(collectionMagic))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := ParseCollection(in)
		if err != nil {
			if !errors.Is(err, ErrBadCollection) {
				t.Fatalf("error not ErrBadCollection: %v", err)
			}
			return
		}
		again, err := c.MarshalBinary()
		if err != nil || !bytes.Equal(again, in) {
			t.Fatalf("accepted collection is not canonical: %v", err)
		}
	})
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add((&request{hash: [32]byte{1}, ranges: Ranges{{0, 5}, {9, 10}}}).encode())
	f.Add((&request{}).encode())
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := decodeRequest(in)
		if err != nil {
			return
		}
		if len(r.ranges) > maxRanges {
			t.Fatalf("%d ranges accepted", len(r.ranges))
		}
		for _, g := range r.ranges {
			if g.End <= g.Start {
				t.Fatalf("empty or inverted range %v accepted", g)
			}
		}
	})
}

// FuzzReadStream feeds arbitrary bytes as a sender's stream for a real blob:
// ReadStream must never panic, and whatever it hands to the sink must be
// the blob's true bytes.
func FuzzReadStream(f *testing.F) {
	data := randBytes(3, 3*GroupSize+100)
	ob, root := bao.EncodeBuf(data, GroupLog, true)
	var good bytes.Buffer
	_ = WriteStream(&good, uint64(len(data)), bytes.NewReader(data), bytes.NewReader(ob), nil)
	f.Add(good.Bytes(), uint8(0), uint8(0))
	f.Add(good.Bytes()[:100], uint8(1), uint8(2))
	f.Fuzz(func(t *testing.T, stream []byte, start, count uint8) {
		var r Ranges
		if count > 0 {
			r = Ranges{{uint64(start % 5), uint64(start%5) + uint64(count%5) + 1}}
		}
		sink := &memSink{}
		_, _ = ReadStream(bytes.NewReader(stream), root, r, sink)
		// A sender may lie about the size and still have the groups of a
		// subtree that does not depend on it verify: those bytes are true.
		for g, got := range sink.groups {
			if g >= NumGroups(uint64(len(data))) {
				t.Fatalf("group %d beyond the blob accepted", g)
			}
			lo, hi := g*GroupSize, min((g+1)*GroupSize, uint64(len(data)))
			if !bytes.Equal(got, data[lo:hi]) {
				t.Fatalf("group %d accepted with wrong bytes", g)
			}
		}
	})
}

// FuzzPipelineAnswers feeds arbitrary bytes as a sender's answers to a
// pipeline of three requests: readAnswers must never panic, report each
// member at most once, and hand on only a member's true bytes and tree.
func FuzzPipelineAnswers(f *testing.F) {
	datas := [][]byte{randBytes(11, 100), randBytes(12, 3*GroupSize+7), randBytes(13, GroupSize)}
	var ms []member
	var good bytes.Buffer
	for i, d := range datas {
		ob, h := bao.EncodeBuf(d, GroupLog, true)
		ms = append(ms, member{hash: h, size: uint64(len(d)), name: fmt.Sprint(i)})
		good.WriteByte(statusOK)
		_ = WriteStream(&good, uint64(len(d)), bytes.NewReader(d), bytes.NewReader(ob), nil)
	}
	f.Add(good.Bytes())
	f.Add([]byte{statusNotFound, statusRefused, 3, 'n', 'o', '!', statusNotFound})
	f.Add(append(bytes.Clone(good.Bytes()), 0))
	bad := bytes.Clone(good.Bytes())
	bad[200] ^= 1
	f.Add(bad)
	f.Fuzz(func(t *testing.T, in []byte) {
		seen := map[string]int{}
		n, _ := readAnswers(bufio.NewReader(bytes.NewReader(in)), ms,
			func(m member, data, ob []byte) error {
				i, _ := strconv.Atoi(m.name)
				wantOb, _ := bao.EncodeBuf(datas[i], GroupLog, true)
				if !bytes.Equal(data, datas[i]) || !bytes.Equal(ob, wantOb) {
					t.Fatalf("member %s handed on with wrong bytes or tree", m.name)
				}
				return nil
			},
			func(m member, err error) { seen[m.name]++ })
		if n > len(ms) {
			t.Fatalf("%d of %d members answered", n, len(ms))
		}
		for name, k := range seen {
			if k != 1 {
				t.Fatalf("member %s reported %d times", name, k)
			}
		}
		if len(seen) < n {
			t.Fatalf("%d members answered, %d reported", n, len(seen))
		}
	})
}
