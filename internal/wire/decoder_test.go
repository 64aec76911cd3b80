package wire

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
)

var errTest = errors.New("test protocol error")

func dec(b ...byte) *Decoder { return &Decoder{B: b, Sentinel: errTest} }

func TestUvarintMinimalOnly(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 300, 1 << 35, math.MaxUint64} {
		b := binary.AppendUvarint(nil, v)
		if len(b) != UvarintLen(v) {
			t.Errorf("UvarintLen(%d) = %d, encoding has %d bytes", v, UvarintLen(v), len(b))
		}
		d := dec(b...)
		if got := d.Uvarint("n"); got != v || d.Done("n") != nil {
			t.Errorf("Uvarint of %x: %d, %v", b, got, d.Err)
		}
	}
	for name, b := range map[string][]byte{
		"non-minimal zero": {0x80, 0x00},
		"non-minimal one":  {0x81, 0x00},
		"truncated":        {0x80},
		"empty":            {},
		"overflow":         {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},
	} {
		d := dec(b...)
		if v := d.Uvarint("count"); v != 0 || !errors.Is(d.Err, errTest) || !strings.Contains(d.Err.Error(), "count") {
			t.Errorf("%s (%x): value %d, error %v; want 0 and an error naming the field", name, b, v, d.Err)
		}
	}
}

func TestDecoderErrors(t *testing.T) {
	// Bytes past the end: an error, nothing consumed, and every later read
	// returns nothing even where bytes remain.
	d := dec(1, 2, 3)
	if b := d.Bytes(4, "key"); b != nil || !errors.Is(d.Err, errTest) || !strings.Contains(d.Err.Error(), "key") {
		t.Fatalf("Bytes past the end: %x, %v", b, d.Err)
	}
	first := d.Err
	if d.Byte("x") != 0 || d.Bytes(1, "y") != nil || d.Uvarint("z") != 0 || d.Done("msg") != first {
		t.Error("reads after an error returned data or replaced the first error")
	}
	if d := dec(1); d.Bytes(-1, "n") != nil || d.Err == nil {
		t.Error("a negative length was accepted")
	}

	// A length over its limit is refused before the bytes are read.
	d = dec(append([]byte{5}, "hello"...)...)
	if b := d.LenBytes("name", 4); b != nil || !errors.Is(d.Err, errTest) || !strings.Contains(d.Err.Error(), "name is 5 bytes, at most 4") {
		t.Errorf("LenBytes over its limit: %q, %v", b, d.Err)
	}
	d = dec(append([]byte{5}, "hello!"...)...)
	if b := d.LenBytes("name", 5); string(b) != "hello" {
		t.Errorf("LenBytes: %q, %v", b, d.Err)
	}
	if err := d.Done("message"); !errors.Is(err, errTest) || !strings.Contains(err.Error(), "1 trailing bytes after message") {
		t.Errorf("trailing byte: %v", err)
	}
}

// TestBytesCapped: appending to a decoded field must not overwrite the
// fields after it in the message.
func TestBytesCapped(t *testing.T) {
	msg := []byte{1, 2, 3, 4}
	d := dec(msg...)
	a := d.Bytes(2, "a")
	_ = append(a, 9, 9)
	var rest [2]byte
	d.Fixed(rest[:], "rest")
	if rest != [2]byte{3, 4} || d.Done("m") != nil {
		t.Errorf("after appending to the first field the rest reads %v (%v)", rest, d.Err)
	}
}

// FuzzDecoder runs arbitrary bytes through every read: no panic, every
// error wraps the sentinel, and nothing beyond the input is returned.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte{0x03, 'a', 'b', 'c', 0x80, 0x01, 7})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{0x80, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := dec(b...)
		total := 0
		for i := 0; d.Err == nil && len(d.B) > 0 && i < 64; i++ {
			switch d.B[0] % 4 {
			case 0:
				total += len(d.LenBytes("field", 16))
			case 1:
				d.Uvarint("n")
			case 2:
				d.Byte("b")
				total++
			default:
				total += len(d.Bytes(int(d.B[0]%8), "run"))
			}
		}
		if d.Err != nil && !errors.Is(d.Err, errTest) {
			t.Fatalf("error %v does not wrap the sentinel", d.Err)
		}
		if total > len(b) {
			t.Fatalf("returned %d bytes from a %d-byte input", total, len(b))
		}
	})
}
