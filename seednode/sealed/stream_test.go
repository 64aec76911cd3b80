package sealed

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	mrand "math/rand/v2"
	"testing"
	"testing/iotest"
)

// sealStream seals plaintext, written in chunks of chunk bytes (0: at once).
func sealStream(t testing.TB, k ContentKey, plaintext []byte, chunk int) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := NewStreamSealer(&out, k, testEpoch, testNS, testStoredKey)
	if err != nil {
		t.Fatal(err)
	}
	if chunk == 0 {
		chunk = max(1, len(plaintext))
	}
	for p := plaintext; len(p) > 0; {
		n, err := w.Write(p[:min(chunk, len(p))])
		if err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// openStream opens and reads a whole sealed stream.
func openStream(keys Keys, ns [32]byte, storedKey, sealed []byte) ([]byte, error) {
	r, _, err := NewStreamOpener(bytes.NewReader(sealed), keys, ns, storedKey)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestStreamRoundTrip(t *testing.T) {
	keys := keysOf(testEpoch, testKey)
	for _, size := range []int{0, 1, 100, StreamSegment - 1, StreamSegment, StreamSegment + 1, 3*StreamSegment + 5, 1 << 20} {
		plaintext := randomBytes(size)
		for _, chunk := range []int{0, 1000, StreamSegment, StreamSegment + 3} {
			if size > 2*StreamSegment && chunk == 1000 {
				continue // slow and adds nothing over the smaller sizes
			}
			sealed := sealStream(t, testKey, plaintext, chunk)
			if int64(len(sealed)) != SealedStreamSize(int64(size)) {
				t.Errorf("size %d chunk %d: sealed %d bytes, SealedStreamSize says %d", size, chunk, len(sealed), SealedStreamSize(int64(size)))
			}
			r, epoch, err := NewStreamOpener(bytes.NewReader(sealed), keys, testNS, testStoredKey)
			if err != nil || epoch != testEpoch {
				t.Fatalf("size %d chunk %d: NewStreamOpener: epoch %d, %v", size, chunk, epoch, err)
			}
			// iotest.TestReader reads in varied patterns and checks io.Reader semantics.
			if err := iotest.TestReader(r, plaintext); err != nil {
				t.Errorf("size %d chunk %d: %v", size, chunk, err)
			}
		}
	}
}

func TestStreamOneByteReads(t *testing.T) {
	plaintext := randomBytes(StreamSegment + 17)
	sealed := sealStream(t, testKey, plaintext, 0)
	r, _, err := NewStreamOpener(iotest.OneByteReader(bytes.NewReader(sealed)), keysOf(testEpoch, testKey), testNS, testStoredKey)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(iotest.OneByteReader(r))
	if err != nil || !bytes.Equal(got, plaintext) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
}

func TestSealedStreamSize(t *testing.T) {
	const header, tag = 21, 16
	tests := []struct {
		plaintext, want int64
	}{
		{0, header + tag},
		{1, header + 1 + tag},
		{StreamSegment - 1, header + StreamSegment - 1 + tag},
		{StreamSegment, header + StreamSegment + tag},
		{StreamSegment + 1, header + StreamSegment + 1 + 2*tag},
		{1 << 20, header + 1<<20 + 16*tag},
		{1<<40 + 1, header + 1<<40 + 1 + (1<<24+1)*tag},
		{-1, -1},
	}
	for _, tt := range tests {
		if got := SealedStreamSize(tt.plaintext); got != tt.want {
			t.Errorf("SealedStreamSize(%d) = %d, want %d", tt.plaintext, got, tt.want)
		}
		if tt.plaintext < 0 || tt.plaintext > 1<<20 {
			continue
		}
		if got := len(sealStream(t, testKey, make([]byte, tt.plaintext), 0)); int64(got) != tt.want {
			t.Errorf("sealing %d bytes gave %d, want %d", tt.plaintext, got, tt.want)
		}
	}
}

// segments splits a sealed stream into its header and sealed segments.
func segments(sealed []byte) (header []byte, segs [][]byte) {
	header, rest := sealed[:streamHeaderLen], sealed[streamHeaderLen:]
	for len(rest) > streamSealedSeg {
		segs = append(segs, rest[:streamSealedSeg])
		rest = rest[streamSealedSeg:]
	}
	return header, append(segs, rest)
}

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestStreamTruncated(t *testing.T) {
	plaintext := randomBytes(3*StreamSegment + 100) // 4 segments
	sealed := sealStream(t, testKey, plaintext, 0)
	keys := keysOf(testEpoch, testKey)
	cuts := []int{0, 1, streamHeaderLen - 1}
	for i := range 4 {
		start := streamHeaderLen + i*streamSealedSeg
		cuts = append(cuts, start, start+1, start+15, start+16, start+StreamSegment/2)
		if i < 3 {
			cuts = append(cuts, start+streamSealedSeg-1)
		}
	}
	cuts = append(cuts, len(sealed)-1)
	for _, cut := range cuts {
		got, err := openStream(keys, testNS, testStoredKey, sealed[:cut])
		want := ErrDecrypt
		if cut < streamHeaderLen {
			want = ErrMalformed
		}
		if !errors.Is(err, want) {
			t.Errorf("cut at %d: read %d bytes, error %v, want %v", cut, len(got), err, want)
		}
	}
}

func TestStreamRearranged(t *testing.T) {
	plaintext := randomBytes(3*StreamSegment + 100)
	sealed := sealStream(t, testKey, plaintext, 0)
	h, s := segments(sealed)
	if len(s) != 4 {
		t.Fatalf("%d segments, want 4", len(s))
	}
	other := sealStream(t, testKey, plaintext, 0) // same key and plaintext, other nonce prefix
	oh, os := segments(other)
	tests := []struct {
		name   string
		sealed []byte
	}{
		{"swapped", join(h, s[1], s[0], s[2], s[3])},
		{"duplicated first", join(h, s[0], s[0], s[1], s[2], s[3])},
		{"duplicated middle", join(h, s[0], s[1], s[1], s[2], s[3])},
		{"dropped middle", join(h, s[0], s[2], s[3])},
		{"final moved early", join(h, s[0], s[3])},
		{"final repeated", join(h, s[0], s[1], s[2], s[3], s[3])},
		{"trailing byte", join(sealed, []byte{0})},
		{"trailing segment", join(sealed, s[0])},
		{"segment from another stream", join(h, s[0], os[1], s[2], s[3])},
		{"header from another stream", join(oh, s[0], s[1], s[2], s[3])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := openStream(keysOf(testEpoch, testKey), testNS, testStoredKey, tt.sealed)
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("read %d bytes, error %v, want %v", len(got), err, ErrDecrypt)
			}
		})
	}
}

func TestStreamFinalSegmentFull(t *testing.T) {
	// With a full final segment the opener must look past it to know it is
	// the last; appending data must still fail.
	sealed := sealStream(t, testKey, randomBytes(2*StreamSegment), 0)
	if _, err := openStream(keysOf(testEpoch, testKey), testNS, testStoredKey, sealed); err != nil {
		t.Fatal(err)
	}
	for _, extra := range [][]byte{{0}, make([]byte, 16), make([]byte, streamSealedSeg)} {
		if _, err := openStream(keysOf(testEpoch, testKey), testNS, testStoredKey, join(sealed, extra)); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%d trailing bytes: %v, want %v", len(extra), err, ErrDecrypt)
		}
	}
}

func TestStreamBinding(t *testing.T) {
	sealed := sealStream(t, testKey, []byte("file contents"), 0)
	moved := append([]byte(nil), sealed...)
	moved[4]++ // epoch testEpoch+1
	value, _ := SealValue(testKey, testEpoch, testNS, testStoredKey, []byte("file contents"))
	allKeys := func(uint32) (ContentKey, bool) { return testKey, true }
	tests := []struct {
		name      string
		keys      Keys
		ns        [32]byte
		storedKey []byte
		sealed    []byte
		want      error
	}{
		{"wrong key", keysOf(testEpoch, mustKey(t, NewContentKey)), testNS, testStoredKey, sealed, ErrDecrypt},
		{"other vault", allKeys, [32]byte{}, testStoredKey, sealed, ErrDecrypt},
		{"other stored key", allKeys, testNS, []byte("p"), sealed, ErrDecrypt},
		{"moved to another epoch", allKeys, testNS, testStoredKey, moved, ErrDecrypt},
		{"epoch without key", keysOf(testEpoch, testKey), testNS, testStoredKey, moved, ErrNoKey},
		{"nil keys", nil, testNS, testStoredKey, sealed, ErrNoKey},
		{"unknown version", allKeys, testNS, testStoredKey, append([]byte{9}, sealed[1:]...), ErrMalformed},
		{"a sealed value", allKeys, testNS, testStoredKey, value, ErrMalformed},
		{"header only", allKeys, testNS, testStoredKey, sealed[:streamHeaderLen], ErrDecrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := openStream(tt.keys, tt.ns, tt.storedKey, tt.sealed)
			checkSentinel(t, err, tt.want)
			if len(got) != 0 {
				t.Errorf("released %d bytes of unauthenticated plaintext", len(got))
			}
		})
	}
}

// streamFlipWant is the sentinel expected when byte i of a sealed stream is
// altered: the header's version, then its epoch, then anything else.
func streamFlipWant(i int) error {
	switch {
	case i == 0:
		return ErrMalformed
	case i < 5:
		return ErrNoKey
	}
	return ErrDecrypt
}

func TestStreamBitFlips(t *testing.T) {
	keys := keysOf(testEpoch, testKey)
	check := func(t *testing.T, sealed []byte, i int) {
		for bit := range 8 {
			_, err := openStream(keys, testNS, testStoredKey, flipped(sealed, i, bit))
			if want := streamFlipWant(i); !errors.Is(err, want) {
				t.Fatalf("byte %d bit %d: error %v, want %v", i, bit, err, want)
			}
		}
	}
	t.Run("every byte of one segment", func(t *testing.T) {
		sealed := sealStream(t, testKey, randomBytes(100), 0)
		for i := range sealed {
			check(t, sealed, i)
		}
	})
	t.Run("segment edges and samples of three", func(t *testing.T) {
		sealed := sealStream(t, testKey, randomBytes(2*StreamSegment+10), 0)
		rng := mrand.New(mrand.NewPCG(1, 2))
		var positions []int
		for i := range streamHeaderLen {
			positions = append(positions, i)
		}
		for s := streamHeaderLen; s < len(sealed); s += streamSealedSeg {
			end := min(s+streamSealedSeg, len(sealed))
			for i := range 8 {
				positions = append(positions, s+i, end-1-i)
			}
			for range 8 {
				positions = append(positions, s+rng.IntN(end-s))
			}
		}
		for _, i := range positions {
			check(t, sealed, i)
		}
	})
}

func TestStreamSealerClose(t *testing.T) {
	var out bytes.Buffer
	w, err := NewStreamSealer(&out, testKey, testEpoch, testNS, testStoredKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	size := out.Len()
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := w.Write([]byte("more")); err == nil {
		t.Error("Write after Close succeeded")
	}
	if out.Len() != size {
		t.Errorf("output grew from %d to %d bytes after Close", size, out.Len())
	}
}

type failingWriter struct{ after int }

var errDiskFull = errors.New("disk full")

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.after < len(p) {
		return 0, errDiskFull
	}
	w.after -= len(p)
	return len(p), nil
}

func TestStreamSealerWriteErrors(t *testing.T) {
	if _, err := NewStreamSealer(&failingWriter{}, testKey, testEpoch, testNS, testStoredKey); !errors.Is(err, errDiskFull) {
		t.Errorf("header: %v, want %v", err, errDiskFull)
	}
	w, err := NewStreamSealer(&failingWriter{after: streamHeaderLen}, testKey, testEpoch, testNS, testStoredKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, StreamSegment+1)); !errors.Is(err, errDiskFull) {
		t.Errorf("segment: %v, want %v", err, errDiskFull)
	}
	if err := w.Close(); !errors.Is(err, errDiskFull) {
		t.Errorf("Close after a failed write: %v, want %v", err, errDiskFull)
	}
}

func TestStreamOpenerReadErrors(t *testing.T) {
	sealed := sealStream(t, testKey, randomBytes(2*StreamSegment), 0)
	keys := keysOf(testEpoch, testKey)
	errNet := errors.New("connection reset")
	for _, at := range []int{5, streamHeaderLen + 10, streamHeaderLen + streamSealedSeg} {
		r := io.MultiReader(bytes.NewReader(sealed[:at]), iotest.ErrReader(errNet))
		pr, _, err := NewStreamOpener(r, keys, testNS, testStoredKey)
		if err == nil {
			_, err = io.ReadAll(pr)
		}
		if !errors.Is(err, errNet) {
			t.Errorf("error after %d bytes: %v, want %v", at, err, errNet)
		}
	}
}

func BenchmarkStream1MiB(b *testing.B) {
	plaintext := make([]byte, 1<<20)
	keys := keysOf(testEpoch, testKey)
	var sealed bytes.Buffer
	b.SetBytes(int64(len(plaintext)))
	b.ReportAllocs()
	for b.Loop() {
		sealed.Reset()
		w, err := NewStreamSealer(&sealed, testKey, testEpoch, testNS, testStoredKey)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(plaintext); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		r, _, err := NewStreamOpener(&sealed, keys, testNS, testStoredKey)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, r); err != nil || n != int64(len(plaintext)) {
			b.Fatal(n, err)
		}
	}
}
