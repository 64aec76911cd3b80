package blobs

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"

	"lukechampine.com/blake3/bao"
)

// The seed's stream assembled from a file (vectored reads into the stream
// buffer) equals the one assembled through ReadAt, which the reference
// vectors pin down, for whole blobs and for sets of ranges whose groups
// cross the stream buffer's boundaries; and it reads back verified.
// fileWith returns a file holding data, open for reading until the test ends.
func fileWith(t *testing.T, data []byte) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestWriteStreamFromFile(t *testing.T) {
	size := uint64(3*streamBuf + 5000) // several buffers and a short last group
	in := make([]byte, size)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range in {
		in[i] = byte(rng.Uint32())
	}
	ob, root := bao.EncodeBuf(in, GroupLog, true)
	f := fileWith(t, in)
	groups := NumGroups(size)
	for _, r := range []Ranges{
		nil,
		{{0, 1}},
		{{groups - 1, groups}},
		{{1, 3}, {15, 17}, {40, 41}, {groups - 2, groups}},
		{{0, 16}, {17, 33}, {34, 50}},
	} {
		var want, got bytes.Buffer
		if err := WriteStream(&want, size, bytes.NewReader(in), bytes.NewReader(ob), r); err != nil {
			t.Fatal(err)
		}
		if err := WriteStream(&got, size, f, bytes.NewReader(ob), r); err != nil {
			t.Fatalf("ranges %v: %v", r, err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("ranges %v: stream from the file differs (%d bytes, want %d)", r, got.Len(), want.Len())
		}
		sink := readAll(t, got.Bytes(), root, r)
		for _, g := range r.normalize(groups) {
			for i := g.Start; i < g.End; i++ {
				end := min((i+1)*GroupSize, size)
				if !bytes.Equal(sink.groups[i], in[i*GroupSize:end]) {
					t.Fatalf("ranges %v: group %d differs", r, i)
				}
			}
		}
	}
	// The empty blob streams from an empty file too.
	ef := fileWith(t, nil)
	eob, eroot := bao.EncodeBuf(nil, GroupLog, true)
	var es bytes.Buffer
	if err := WriteStream(&es, 0, ef, bytes.NewReader(eob), nil); err != nil {
		t.Fatalf("empty blob from a file: %v", err)
	}
	readAll(t, es.Bytes(), eroot, nil)
	// A data file shorter than the blob is an error naming the offset, not
	// a stream with zeros in it.
	if err := os.Truncate(f.Name(), int64(size-GroupSize)); err != nil {
		t.Fatal(err)
	}
	err := WriteStream(io.Discard, size, f, bytes.NewReader(ob), nil)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short data file: %v, want unexpected EOF", err)
	}
}

// ReadStream reads exactly the stream, so what follows it stays unread, and
// does not depend on how the reader splits its reads.
func TestReadStreamReadsExactly(t *testing.T) {
	size := uint64(70*GroupSize + 123)
	in := make([]byte, size)
	for i := range in {
		in[i] = byte(i * 7)
	}
	ob, root := bao.EncodeBuf(in, GroupLog, true)
	for _, r := range []Ranges{nil, {{3, 4}}, {{0, 2}, {33, 40}, {69, 71}}} {
		var s bytes.Buffer
		if err := WriteStream(&s, size, bytes.NewReader(in), bytes.NewReader(ob), r); err != nil {
			t.Fatal(err)
		}
		trailer := []byte("next message")
		rd := bytes.NewReader(append(s.Bytes(), trailer...))
		if _, err := ReadStream(rd, root, r, &memSink{}); err != nil {
			t.Fatalf("ranges %v: %v", r, err)
		}
		if rest, _ := io.ReadAll(rd); !bytes.Equal(rest, trailer) {
			t.Fatalf("ranges %v: left %q after the stream, want %q", r, rest, trailer)
		}
		if _, err := ReadStream(iotest.OneByteReader(bytes.NewReader(s.Bytes())), root, r, &memSink{}); err != nil {
			t.Fatalf("ranges %v, one byte per read: %v", r, err)
		}
	}
}
