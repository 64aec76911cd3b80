package wire

import (
	"encoding/binary"
	"fmt"
)

// Decoder is a cursor over a message.
type Decoder struct {
	B   []byte // what is left to read
	Err error  // the first error; once set, reads return zero values
	// Sentinel is wrapped by every error the Decoder sets, so callers can
	// tell a malformed message (errors.Is) from other failures.
	Sentinel error
}

// Fail records that what is truncated or malformed, unless an error is
// already recorded.
func (d *Decoder) Fail(what string) {
	if d.Err == nil {
		d.Err = fmt.Errorf("%w: truncated or malformed %s", d.Sentinel, what)
	}
}

// Bytes reads n bytes. The slice aliases the message, with its capacity cut
// at n: appending to it never overwrites what follows.
func (d *Decoder) Bytes(n int, what string) []byte {
	if d.Err != nil || n < 0 || len(d.B) < n {
		d.Fail(what)
		return nil
	}
	out := d.B[:n:n]
	d.B = d.B[n:]
	return out
}

// Byte reads one byte.
func (d *Decoder) Byte(what string) byte {
	if b := d.Bytes(1, what); b != nil {
		return b[0]
	}
	return 0
}

// Fixed reads len(dst) bytes into dst.
func (d *Decoder) Fixed(dst []byte, what string) {
	copy(dst, d.Bytes(len(dst), what))
}

// Uvarint reads a minimally encoded uvarint: every value has exactly one
// encoding, so no two messages that differ in bytes mean the same.
func (d *Decoder) Uvarint(what string) uint64 {
	if d.Err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.B)
	if n <= 0 || n != UvarintLen(v) {
		d.Fail(what)
		return 0
	}
	d.B = d.B[n:]
	return v
}

// LenBytes reads a uvarint length of at most max, then that many bytes.
func (d *Decoder) LenBytes(what string, max int) []byte {
	l := d.Uvarint(what + " length")
	if d.Err != nil {
		return nil
	}
	if l > uint64(max) {
		d.Err = fmt.Errorf("%w: %s is %d bytes, at most %d", d.Sentinel, what, l, max)
		return nil
	}
	return d.Bytes(int(l), what)
}

// Done reports the first error, or an error if bytes are left after what,
// the message's last field.
func (d *Decoder) Done(what string) error {
	if d.Err == nil && len(d.B) != 0 {
		d.Err = fmt.Errorf("%w: %d trailing bytes after %s", d.Sentinel, len(d.B), what)
	}
	return d.Err
}

// UvarintLen is the length of v's minimal uvarint encoding.
func UvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
