package blobs

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/zeebo/blake3"
	"lukechampine.com/blake3/bao"
)

// testdata/abao-group4.json holds reference Bao vectors for 16 KiB groups,
// produced by the reference implementation (abao) with group size 4.
type vectors struct {
	Hash []struct {
		InputLen int    `json:"input_len"`
		BaoHash  string `json:"bao_hash"`
	} `json:"hash"`
	Encode []struct {
		InputLen      int    `json:"input_len"`
		OutputLen     int    `json:"output_len"`
		EncodedBlake3 string `json:"encoded_blake3"`
	} `json:"encode"`
	Outboard []struct {
		InputLen      int    `json:"input_len"`
		OutputLen     int    `json:"output_len"`
		BaoHash       string `json:"bao_hash"`
		EncodedBlake3 string `json:"encoded_blake3"`
		OutboardCorr  []int  `json:"outboard_corruptions"`
		InputCorr     []int  `json:"input_corruptions"`
	} `json:"outboard"`
	Slice []struct {
		InputLen int    `json:"input_len"`
		BaoHash  string `json:"bao_hash"`
		Slices   []struct {
			Start       uint64 `json:"start"`
			Len         uint64 `json:"len"`
			OutputLen   int    `json:"output_len"`
			OutputBlake string `json:"output_blake3"`
			Corruptions []int  `json:"corruptions"`
		} `json:"slices"`
	} `json:"slice"`
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/abao-group4.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Hash) == 0 || len(v.Slice) == 0 {
		t.Fatal("vectors file has no vectors")
	}
	return v
}

// vectorInput is the reference input: 4-byte little-endian counters from 1.
func vectorInput(n int) []byte {
	b := make([]byte, n+4)
	for i := 0; i < n; i += 4 {
		binary.LittleEndian.PutUint32(b[i:], uint32(i/4+1))
	}
	return b[:n]
}

func hexHash(t *testing.T, s string) [32]byte {
	t.Helper()
	var h [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		t.Fatalf("bad hex %q", s)
	}
	copy(h[:], b)
	return h
}

func b3hex(b []byte) string {
	s := blake3.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestVectorsHashAndOutboard(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.Hash {
		in := vectorInput(c.InputLen)
		if got := blake3.Sum256(in); hex.EncodeToString(got[:]) != c.BaoHash {
			t.Errorf("len %d: BLAKE3 %x, want %s", c.InputLen, got, c.BaoHash)
		}
	}
	for _, c := range v.Outboard {
		in := vectorInput(c.InputLen)
		ob, root := bao.EncodeBuf(in, GroupLog, true)
		if hex.EncodeToString(root[:]) != c.BaoHash {
			t.Errorf("len %d: root %x, want %s", c.InputLen, root, c.BaoHash)
		}
		if len(ob) != c.OutputLen || uint64(len(ob)) != OutboardSize(uint64(c.InputLen)) {
			t.Errorf("len %d: outboard %d bytes, OutboardSize %d, want %d", c.InputLen, len(ob), OutboardSize(uint64(c.InputLen)), c.OutputLen)
		}
		if got := b3hex(ob); got != c.EncodedBlake3 {
			t.Errorf("len %d: outboard hash %s, want %s", c.InputLen, got, c.EncodedBlake3)
		}
		// The whole blob streamed from the outboard equals the reference
		// combined encoding, and reads back verified.
		var stream bytes.Buffer
		if err := WriteStream(&stream, uint64(len(in)), bytes.NewReader(in), bytes.NewReader(ob), nil); err != nil {
			t.Fatal(err)
		}
		for _, e := range v.Encode {
			if e.InputLen == c.InputLen && (stream.Len() != e.OutputLen || b3hex(stream.Bytes()) != e.EncodedBlake3) {
				t.Errorf("len %d: full stream differs from the reference combined encoding", c.InputLen)
			}
		}
		got := readAll(t, stream.Bytes(), root, nil)
		if !bytes.Equal(got.data(uint64(len(in))), in) {
			t.Errorf("len %d: streamed data differs", c.InputLen)
		}
		if !bytes.Equal(got.outboard(uint64(len(in))), ob) {
			t.Errorf("len %d: outboard rebuilt from the stream differs", c.InputLen)
		}
		for _, at := range c.OutboardCorr {
			bad := bytes.Clone(ob)
			bad[at] ^= 1
			var s bytes.Buffer
			_ = WriteStream(&s, uint64(len(in)), bytes.NewReader(in), bytes.NewReader(bad), nil)
			if at < headerLen {
				continue // the header is not read by WriteStream; the size comes from the caller
			}
			if _, err := ReadStream(bytes.NewReader(s.Bytes()), root, nil, &memSink{}); !errors.Is(err, ErrVerify) {
				t.Errorf("len %d: outboard corruption at %d not detected: %v", c.InputLen, at, err)
			}
		}
		for _, at := range c.InputCorr {
			bad := bytes.Clone(in)
			bad[at] ^= 1
			var s bytes.Buffer
			_ = WriteStream(&s, uint64(len(in)), bytes.NewReader(bad), bytes.NewReader(ob), nil)
			if _, err := ReadStream(bytes.NewReader(s.Bytes()), root, nil, &memSink{}); !errors.Is(err, ErrVerify) {
				t.Errorf("len %d: input corruption at %d not detected: %v", c.InputLen, at, err)
			}
		}
	}
}

func TestVectorsSlices(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.Slice {
		in := vectorInput(c.InputLen)
		ob, root := bao.EncodeBuf(in, GroupLog, true)
		if hex.EncodeToString(root[:]) != c.BaoHash {
			t.Fatalf("len %d: root mismatch", c.InputLen)
		}
		size := uint64(len(in))
		for _, sl := range c.Slices {
			r := Ranges{ByteRange(sl.Start, sl.Len, size)}
			var s bytes.Buffer
			if err := WriteStream(&s, size, bytes.NewReader(in), bytes.NewReader(ob), r); err != nil {
				t.Fatal(err)
			}
			if s.Len() != sl.OutputLen || b3hex(s.Bytes()) != sl.OutputBlake {
				t.Errorf("len %d slice %d+%d: %d bytes (%s), want %d (%s)", c.InputLen, sl.Start, sl.Len,
					s.Len(), b3hex(s.Bytes())[:12], sl.OutputLen, sl.OutputBlake[:12])
				continue
			}
			got := readAll(t, s.Bytes(), root, r)
			for g := r[0].Start; g < r[0].End; g++ {
				lo, hi := g*GroupSize, min((g+1)*GroupSize, size)
				if !bytes.Equal(got.groups[g], in[lo:hi]) {
					t.Errorf("len %d slice %d+%d: group %d differs", c.InputLen, sl.Start, sl.Len, g)
				}
			}
			for _, at := range sl.Corruptions {
				bad := bytes.Clone(s.Bytes())
				bad[at] ^= 1
				_, err := ReadStream(bytes.NewReader(bad), root, r, &memSink{})
				if err == nil {
					t.Errorf("len %d slice %d+%d: corruption at byte %d accepted", c.InputLen, sl.Start, sl.Len, at)
				}
			}
		}
	}
}

// memSink collects what ReadStream hands over.
type memSink struct {
	size    uint64
	groups  map[uint64][]byte
	parents map[uint64][]byte
}

func (m *memSink) Size(s uint64) error {
	m.size = s
	m.groups, m.parents = map[uint64][]byte{}, map[uint64][]byte{}
	return nil
}
func (m *memSink) Parent(off uint64, n []byte) error { m.parents[off] = bytes.Clone(n); return nil }
func (m *memSink) Group(i uint64, d []byte) error    { m.groups[i] = bytes.Clone(d); return nil }

func (m *memSink) data(size uint64) []byte {
	var out []byte
	for g := uint64(0); g < NumGroups(size); g++ {
		out = append(out, m.groups[g]...)
	}
	return out
}

func (m *memSink) outboard(size uint64) []byte {
	ob := make([]byte, OutboardSize(size))
	binary.LittleEndian.PutUint64(ob, size)
	for off, n := range m.parents {
		copy(ob[off:], n)
	}
	return ob
}

func readAll(t *testing.T, stream []byte, root [32]byte, r Ranges) *memSink {
	t.Helper()
	sink := &memSink{}
	rd := bytes.NewReader(stream)
	if _, err := ReadStream(rd, root, r, sink); err != nil {
		t.Fatalf("ReadStream: %v", err)
	}
	if rd.Len() != 0 {
		t.Fatalf("ReadStream left %d bytes", rd.Len())
	}
	return sink
}
