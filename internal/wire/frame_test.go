package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadFrame(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       []byte
		limit    int
		want     []byte
		wantErrs []error // all wrapped
		wantMsg  string
	}{
		{"one byte", []byte{1, 9}, 10, []byte{9}, nil, ""},
		{"at the limit", append([]byte{10}, make([]byte, 10)...), 10, make([]byte, 10), nil, ""},
		{"two-byte length", append([]byte{0x80, 0x01}, make([]byte, 128)...), 200, make([]byte, 128), nil, ""},
		{"trailing bytes stay", []byte{2, 7, 8, 1, 2}, 10, []byte{7, 8}, nil, ""},
		{"over the limit", append([]byte{11}, make([]byte, 11)...), 10, nil, []error{errTest, ErrFrameTooLarge}, "test protocol error: frame of 11 bytes exceeds the 10-byte limit"},
		{"prefix longer than any allowed length", []byte{0x80, 0x80, 0x80, 0x01}, 65600, nil, []error{errTest, ErrFrameTooLarge}, "frame of 2097152 bytes exceeds the 65600-byte limit"},
		{"far over the limit", []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 1 << 20, nil, []error{errTest, ErrFrameTooLarge}, "frame of 72057594037927936 bytes"},
		{"overflow", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, 1 << 20, nil, []error{errTest, ErrFrameTooLarge}, "overflows 64 bits"},
		{"overflow by continuation", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00}, 1 << 20, nil, []error{errTest, ErrFrameTooLarge}, "overflows"},
		{"the largest length", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 1 << 20, nil, []error{errTest, ErrFrameTooLarge}, "frame of 18446744073709551615 bytes"},
		{"negative limit", []byte{1, 0}, -1, nil, []error{errTest, ErrFrameTooLarge}, "exceeds the -1-byte limit"},
		{"empty frame", []byte{0}, 10, nil, []error{errTest, ErrEmptyFrame}, "empty frame"},
		{"non-minimal", []byte{0x81, 0x00, 1}, 10, nil, []error{errTest, ErrNonMinimalLength}, "minimal"},
		{"non-minimal zero", []byte{0x80, 0x00}, 10, nil, []error{errTest, ErrNonMinimalLength}, "minimal"},
		{"nothing", nil, 10, nil, []error{io.EOF}, ""},
		{"cut prefix", []byte{0x80}, 10, nil, []error{io.ErrUnexpectedEOF}, "cut off after 1 bytes"},
		{"cut body", []byte{5, 1, 2}, 10, nil, []error{io.ErrUnexpectedEOF}, "2 of 5"},
		{"no body", []byte{5}, 10, nil, []error{io.ErrUnexpectedEOF}, "0 of 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadFrame(bufio.NewReader(bytes.NewReader(tc.in)), tc.limit, errTest)
			if tc.wantErrs == nil {
				if err != nil || !bytes.Equal(got, tc.want) {
					t.Fatalf("ReadFrame = %x, %v; want %x", got, err, tc.want)
				}
				return
			}
			if got != nil {
				t.Errorf("ReadFrame returned %x with its error", got)
			}
			for _, want := range tc.wantErrs {
				if !errors.Is(err, want) {
					t.Errorf("ReadFrame: %v; want it to wrap %v", err, want)
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("ReadFrame: %v; want an error mentioning %q", err, tc.wantMsg)
			}
		})
	}
}

// TestReadFrameErrorKinds: a stream cut short is not the peer's protocol
// error, and a clean end between frames is io.EOF itself.
func TestReadFrameErrorKinds(t *testing.T) {
	if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(nil)), 10, errTest); err != io.EOF {
		t.Errorf("end of stream before a frame: %v, want io.EOF itself", err)
	}
	for _, in := range [][]byte{{0x80}, {3, 1}} {
		if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(in)), 10, errTest); errors.Is(err, errTest) {
			t.Errorf("%x: a cut-off stream is reported as a protocol error: %v", in, err)
		}
	}
	boom := errors.New("connection reset")
	_, err := ReadFrame(bufio.NewReader(iotest.ErrReader(boom)), 10, errTest)
	if !errors.Is(err, boom) || errors.Is(err, errTest) {
		t.Errorf("reader error: %v; want it passed through", err)
	}
	_, err = ReadFrame(bufio.NewReader(io.MultiReader(bytes.NewReader([]byte{4, 1}), iotest.ErrReader(boom))), 10, errTest)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "1 of 4") {
		t.Errorf("reader error in the body: %v", err)
	}
	// Without a sentinel the errors still wrap their kind.
	_, err = ReadFrame(bufio.NewReader(bytes.NewReader([]byte{0})), 10, nil)
	if !errors.Is(err, ErrEmptyFrame) || err.Error() != "empty frame" {
		t.Errorf("no sentinel: %v", err)
	}
}

// TestReadBodyGrowsAsBytesArrive: a peer that announces a frame far larger
// than what it sends costs what it sent plus one step, not what it
// announced.
func TestReadBodyGrowsAsBytesArrive(t *testing.T) {
	const announced = 256 << 20
	in := append(AppendLength(nil, announced), make([]byte, 1000)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ReadFrame(bufio.NewReader(bytes.NewReader(in)), announced, errTest)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want a truncated frame", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 4*readStep {
		t.Fatalf("reading 1000 bytes of an announced %d-byte frame allocated %d bytes", announced, got)
	}

	// A frame that does arrive is read whole, through several steps, into
	// a buffer no larger than the frame.
	body := bytes.Repeat([]byte("0123456789abcdef"), (3*readStep+100)/16)
	got, err := ReadBody(iotest.HalfReader(bytes.NewReader(body)), nil, len(body))
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("ReadBody of %d bytes: %d bytes, %v", len(body), len(got), err)
	}
	if cap(got) > len(body) {
		t.Errorf("buffer of %d bytes for a %d-byte frame", cap(got), len(body))
	}
}

// TestReadBodyReusesBuffer: a buffer large enough is reused, so a reader
// of many frames does not allocate for each.
func TestReadBodyReusesBuffer(t *testing.T) {
	buf := make([]byte, 0, 64)
	got, err := ReadBody(bytes.NewReader([]byte("hello world")), buf, 5)
	if err != nil || string(got) != "hello" || &got[0] != &buf[:1][0] {
		t.Fatalf("ReadBody = %q, %v (reused the buffer: %v)", got, err, err == nil && &got[0] == &buf[:1][0])
	}
	if _, err := ReadBody(bytes.NewReader(nil), nil, -1); err == nil {
		t.Error("a negative length was accepted")
	}
	if got, err := ReadBody(bytes.NewReader(nil), nil, 0); err != nil || len(got) != 0 {
		t.Errorf("ReadBody of 0 bytes: %x, %v", got, err)
	}
}

// countingWriter counts Write calls.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(p)
}

func TestWriteFrame(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parts [][]byte
		want  []byte
	}{
		{"one part", [][]byte{[]byte("abc")}, []byte{3, 'a', 'b', 'c'}},
		{"type byte and payload", [][]byte{{7}, []byte("xy")}, []byte{3, 7, 'x', 'y'}},
		{"empty payload", [][]byte{{8}, nil}, []byte{1, 8}},
		{"large", [][]byte{{1}, make([]byte, 200)}, append([]byte{0xc9, 0x01, 1}, make([]byte, 200)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w countingWriter
			if err := WriteFrame(&w, tc.parts...); err != nil {
				t.Fatal(err)
			}
			if w.writes != 1 || !bytes.Equal(w.Bytes(), tc.want) {
				t.Fatalf("WriteFrame: %d writes of %x; want one of %x", w.writes, w.Bytes(), tc.want)
			}
			// Through a bufio.Writer: the same bytes, one write when flushed.
			w = countingWriter{}
			bw := bufio.NewWriterSize(&w, 1024)
			if err := WriteFrame(bw, tc.parts...); err != nil || bw.Flush() != nil {
				t.Fatal(err)
			}
			if w.writes != 1 || !bytes.Equal(w.Bytes(), tc.want) {
				t.Fatalf("WriteFrame to a bufio.Writer: %d writes of %x; want one of %x", w.writes, w.Bytes(), tc.want)
			}
			if got := AppendFrame([]byte{0xaa}, tc.parts...); !bytes.Equal(got, append([]byte{0xaa}, tc.want...)) {
				t.Fatalf("AppendFrame = %x", got)
			}
			if FrameLen(len(bytes.Join(tc.parts, nil))) != len(tc.want) {
				t.Fatalf("FrameLen disagrees with the %d-byte frame", len(tc.want))
			}
		})
	}
	boom := errors.New("stream reset")
	if err := WriteFrame(errWriter{boom}, []byte{1}); !errors.Is(err, boom) {
		t.Errorf("write error: %v", err)
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

func TestAppendLenBytes(t *testing.T) {
	b := AppendLenBytes([]byte{9}, "héllo")
	b = AppendLenBytes(b, []byte{})
	d := dec(b...)
	if d.Byte("x") != 9 || string(d.LenBytes("s", 10)) != "héllo" || len(d.LenBytes("e", 0)) != 0 || d.Done("m") != nil {
		t.Fatalf("%x does not decode back: %v", b, d.Err)
	}
}

// FuzzReadFrame reads frames from arbitrary bytes under an arbitrary
// limit: no panic; every error is io.EOF at the start, a cut-off stream,
// or a length error wrapping the sentinel and its kind; a frame is never
// empty nor over the limit, and is exactly what the input starts with.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{3, 'a', 'b', 'c', 1, 'd'}, uint32(10))
	f.Add([]byte{0x80, 0x01}, uint32(200))
	f.Add([]byte{0x81, 0x00, 1}, uint32(10))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, uint32(1<<20))
	f.Add([]byte{}, uint32(1))
	f.Fuzz(func(t *testing.T, data []byte, limit uint32) {
		limit %= 1<<20 + 1
		r := bufio.NewReaderSize(bytes.NewReader(data), 16)
		rest := data
		for {
			body, err := ReadFrame(r, int(limit), errTest)
			if err != nil {
				lengthErr := errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrEmptyFrame) || errors.Is(err, ErrNonMinimalLength)
				switch {
				case err == io.EOF:
					if len(rest) != 0 {
						t.Fatalf("io.EOF with %d bytes left", len(rest))
					}
				case errors.Is(err, io.ErrUnexpectedEOF):
					if errors.Is(err, errTest) {
						t.Fatalf("a cut-off stream wraps the sentinel: %v", err)
					}
				case !lengthErr || !errors.Is(err, errTest):
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(body) == 0 || len(body) > int(limit) {
				t.Fatalf("frame of %d bytes with limit %d", len(body), limit)
			}
			frame := AppendFrame(nil, body)
			if !bytes.HasPrefix(rest, frame) {
				t.Fatalf("frame %x is not what the input starts with (%x)", frame, rest)
			}
			rest = rest[len(frame):]
		}
	})
}

// FuzzFrameRoundTrip: what WriteFrame writes, ReadFrame reads back, and
// nothing more.
func FuzzFrameRoundTrip(f *testing.F) {
	f.Add([]byte{7}, []byte("payload"))
	f.Add([]byte{}, []byte{0})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if len(a)+len(b) == 0 {
			return
		}
		var w bytes.Buffer
		if err := WriteFrame(&w, a, b); err != nil {
			t.Fatal(err)
		}
		if err := WriteFrame(&w, b, a); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(&w)
		for _, want := range [][]byte{append(bytes.Clone(a), b...), append(bytes.Clone(b), a...)} {
			got, err := ReadFrame(r, len(want), errTest)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read back %x, %v; want %x", got, err, want)
			}
		}
		if _, err := ReadFrame(r, 1, errTest); err != io.EOF {
			t.Fatalf("after the frames: %v, want io.EOF", err)
		}
	})
}
