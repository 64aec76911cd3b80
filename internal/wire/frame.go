package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Errors of a frame's length prefix. ReadLength and ReadFrame return errors
// that wrap one of these and the protocol's sentinel, so a caller can tell
// what the peer did wrong (errors.Is(err, ErrFrameTooLarge): answer "too
// large") and that it was the peer (errors.Is(err, ErrProtocol)).
var (
	// ErrFrameTooLarge: the length is over the limit, or overflows 64 bits.
	ErrFrameTooLarge = errors.New("frame too large")
	// ErrEmptyFrame: the length is 0. No protocol sends empty frames: a
	// body always holds at least a type or status byte.
	ErrEmptyFrame = errors.New("empty frame")
	// ErrNonMinimalLength: the length is not a minimal uvarint. Every
	// sender writes minimal ones (binary.AppendUvarint); refusing others
	// keeps one encoding per frame.
	ErrNonMinimalLength = errors.New("frame length is not a minimal uvarint")
)

// A body cut off by the end of the stream is not one of these: its error
// wraps io.ErrUnexpectedEOF and not the protocol's sentinel, because a
// stream that ends early is as often the network as the peer, and callers
// answer a protocol violation (an error frame, a refusal metric) where they
// only hang up on a lost stream.

// readStep bounds how much ReadBody reads, and so allocates, ahead of the
// bytes that have arrived.
const readStep = 64 << 10

// Reader is what frames are read from: a *bufio.Reader over a stream.
type Reader interface {
	io.Reader
	io.ByteReader
}

// frameError is an error of a frame's length: its text names the protocol,
// and it wraps both the protocol's sentinel and the kind of error.
type frameError struct {
	sentinel, kind error
	msg            string
}

func (e *frameError) Error() string {
	if e.sentinel == nil {
		return e.msg
	}
	return e.sentinel.Error() + ": " + e.msg
}

func (e *frameError) Unwrap() []error {
	if e.sentinel == nil {
		return []error{e.kind}
	}
	return []error{e.sentinel, e.kind}
}

// ReadLength reads a frame's length prefix: a minimal uvarint from 1 to
// limit. It reads at most binary.MaxVarintLen64 bytes. Errors:
//   - io.EOF, unwrapped, if the stream ends before the first byte (the peer
//     is done);
//   - io.ErrUnexpectedEOF if it ends within the prefix;
//   - ErrFrameTooLarge, ErrEmptyFrame or ErrNonMinimalLength, also wrapping
//     sentinel (the protocol's error for a peer that broke it; may be nil);
//   - the reader's own error otherwise.
func ReadLength(r io.ByteReader, limit int, sentinel error) (int, error) {
	fail := func(kind error, format string, args ...any) (int, error) {
		return 0, &frameError{sentinel: sentinel, kind: kind, msg: fmt.Sprintf(format, args...)}
	}
	var l uint64
	for i := 0; ; i++ {
		c, err := r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if i == 0 {
					return 0, io.EOF
				}
				return 0, fmt.Errorf("frame length cut off after %d bytes: %w", i, io.ErrUnexpectedEOF)
			}
			return 0, err
		}
		if i == binary.MaxVarintLen64-1 && c > 1 {
			return fail(ErrFrameTooLarge, "frame length overflows 64 bits")
		}
		l |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if c == 0 && i > 0 {
				return fail(ErrNonMinimalLength, "frame length is not a minimal uvarint")
			}
			break
		}
	}
	switch {
	case l == 0:
		return fail(ErrEmptyFrame, "empty frame")
	case l > uint64(max(limit, 0)):
		return fail(ErrFrameTooLarge, "frame of %d bytes exceeds the %d-byte limit", l, limit)
	}
	return int(l), nil
}

// ReadBody reads a frame body of n bytes, into buf's memory if it is large
// enough (buf[:0] is reused; pass nil for a new buffer). The buffer grows
// as bytes arrive, at most readStep ahead of them and never beyond n: a
// peer that announces a large frame and sends little costs little. A
// stream that ends early gives an error wrapping io.ErrUnexpectedEOF.
func ReadBody(r io.Reader, buf []byte, n int) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("read frame: negative length %d", n)
	}
	b := buf[:0]
	for len(b) < n {
		step := min(n-len(b), readStep)
		if cap(b)-len(b) < step {
			// Double what has arrived, as append would, but never past
			// the frame's length.
			grown := make([]byte, len(b), min(n, max(len(b)+step, 2*cap(b))))
			copy(grown, b)
			b = grown
		}
		got, err := io.ReadFull(r, b[len(b):len(b)+step])
		b = b[:len(b)+got]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("read frame (%d of %d bytes): %w", len(b), n, err)
		}
	}
	return b, nil
}

// ReadFrame reads one frame of at most limit bytes: ReadLength, then
// ReadBody into a new buffer. A caller that reserves memory for the body
// once its length is known calls the two itself.
func ReadFrame(r Reader, limit int, sentinel error) ([]byte, error) {
	n, err := ReadLength(r, limit, sentinel)
	if err != nil {
		return nil, err
	}
	return ReadBody(r, nil, n)
}

// WriteFrame writes one frame whose body is the concatenation of parts
// (a protocol's type byte and its payload, say) in a single Write call, so
// that a frame is never split across two writes on a stream. A
// *bufio.Writer gets the prefix and the parts straight into its buffer,
// which joins them anyway, without a copy.
func WriteFrame(w io.Writer, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if bw, ok := w.(*bufio.Writer); ok {
		_, err := bw.Write(AppendLength(bw.AvailableBuffer(), n))
		for _, p := range parts {
			if err != nil {
				break
			}
			_, err = bw.Write(p)
		}
		return err
	}
	_, err := w.Write(AppendFrame(make([]byte, 0, FrameLen(n)), parts...))
	return err
}

// AppendFrame appends one frame whose body is the concatenation of parts.
func AppendFrame(dst []byte, parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	dst = AppendLength(dst, n)
	for _, p := range parts {
		dst = append(dst, p...)
	}
	return dst
}

// AppendLength appends the length prefix of a frame whose body is n bytes,
// for a sender that appends the body itself (in place, without a copy).
func AppendLength(dst []byte, n int) []byte {
	return binary.AppendUvarint(dst, uint64(n))
}

// FrameLen is the length of a frame whose body is n bytes, prefix included.
func FrameLen(n int) int { return UvarintLen(uint64(n)) + n }

// AppendLenBytes appends a field as Decoder.LenBytes reads it: a uvarint
// length, then the bytes.
func AppendLenBytes[T ~string | ~[]byte](dst []byte, field T) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(field))), field...)
}
