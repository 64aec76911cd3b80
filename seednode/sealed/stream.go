package sealed

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// A sealed stream is the STREAM construction (Hoang, Reyhanitabar, Rogaway,
// Vizár) over XChaCha20-Poly1305:
//
//	header:   version (1) | epoch (u32 BE) | nonce prefix (16, random)
//	segments: ciphertext of StreamSegment plaintext bytes + 16-byte tag, each
//
// Segment i is sealed with nonce prefix || i (7 bytes BE) || last flag (1 on
// the final segment, 0 otherwise) and the same binding associated data as a
// value (own domain). Every segment but the last holds exactly StreamSegment
// plaintext bytes; the last holds 1..StreamSegment, or 0 for an empty stream.
// The counter stops reordering and duplication, the flag stops truncation at a
// segment boundary and appended data.
const (
	// StreamSegment is the plaintext size of every segment but the last.
	StreamSegment = 64 << 10

	streamDomain     = "seedfleet/sealed/stream/v1\x00"
	streamPrefixLen  = 16
	streamHeaderLen  = 1 + 4 + streamPrefixLen
	streamSealedSeg  = StreamSegment + chacha20poly1305.Overhead
	streamMaxCounter = 1<<56 - 1
)

// SealedStreamSize returns the exact size of the sealed stream of a
// plaintext of plaintextSize bytes, or -1 if plaintextSize is negative.
func SealedStreamSize(plaintextSize int64) int64 {
	if plaintextSize < 0 {
		return -1
	}
	segments := plaintextSize / StreamSegment
	if plaintextSize%StreamSegment != 0 || plaintextSize == 0 {
		segments++
	}
	return streamHeaderLen + plaintextSize + segments*chacha20poly1305.Overhead
}

// streamNonce is the per-segment nonce: prefix || counter || last flag.
type streamNonce [chacha20poly1305.NonceSizeX]byte

func (n *streamNonce) set(counter uint64, last bool) {
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], counter)
	copy(n[streamPrefixLen:], c[1:]) // 7 bytes; counter ≤ streamMaxCounter
	n[len(n)-1] = 0
	if last {
		n[len(n)-1] = 1
	}
}

type streamSealer struct {
	w       io.Writer
	aead    cipher.AEAD
	ad      []byte
	nonce   streamNonce
	counter uint64
	buf     []byte // pending plaintext; capacity streamSealedSeg to seal in place
	closed  bool
	err     error
}

// NewStreamSealer writes the stream header to w and returns a writer that
// encrypts what is written to it in StreamSegment-sized segments, in constant
// memory. Close must be called: it writes the final segment, without which
// the stream does not open. Close does not close w.
func NewStreamSealer(w io.Writer, k ContentKey, epoch uint32, ns [32]byte, storedKey []byte) (io.WriteCloser, error) {
	return newStreamSealer(rand.Reader, w, k, epoch, ns, storedKey)
}

func newStreamSealer(random io.Reader, w io.Writer, k ContentKey, epoch uint32, ns [32]byte, storedKey []byte) (*streamSealer, error) {
	aead, err := chacha20poly1305.NewX(k[:])
	if err != nil {
		return nil, fmt.Errorf("sealed stream: %w", err)
	}
	s := &streamSealer{
		w:    w,
		aead: aead,
		ad:   bindingAD(streamDomain, ns, epoch, storedKey),
		buf:  make([]byte, 0, streamSealedSeg),
	}
	if _, err := io.ReadFull(random, s.nonce[:streamPrefixLen]); err != nil {
		return nil, fmt.Errorf("sealed stream: nonce prefix: %w", err)
	}
	var header [streamHeaderLen]byte
	header[0] = streamVersion
	binary.BigEndian.PutUint32(header[1:5], epoch)
	copy(header[5:], s.nonce[:streamPrefixLen])
	if _, err := w.Write(header[:]); err != nil {
		return nil, fmt.Errorf("sealed stream: write header: %w", err)
	}
	return s, nil
}

var errSealerClosed = errors.New("sealed stream: write after Close")

func (s *streamSealer) Write(p []byte) (int, error) {
	if s.closed {
		return 0, errSealerClosed
	}
	if s.err != nil {
		return 0, s.err
	}
	written := 0
	for len(p) > 0 {
		// A full segment is sealed only once more data arrives: until
		// then it might be the last one.
		if len(s.buf) == StreamSegment {
			if err := s.flush(false); err != nil {
				return written, err
			}
		}
		n := copy(s.buf[len(s.buf):StreamSegment], p)
		s.buf = s.buf[:len(s.buf)+n]
		p = p[n:]
		written += n
	}
	return written, nil
}

// Close seals and writes the final segment. Later calls return the same
// result.
func (s *streamSealer) Close() error {
	if s.closed {
		return s.err
	}
	s.closed = true
	if s.err != nil {
		return s.err
	}
	return s.flush(true)
}

func (s *streamSealer) flush(last bool) error {
	if s.counter > streamMaxCounter {
		s.err = errors.New("sealed stream: too many segments")
		return s.err
	}
	s.nonce.set(s.counter, last)
	sealed := s.aead.Seal(s.buf[:0], s.nonce[:], s.buf, s.ad)
	if _, err := s.w.Write(sealed); err != nil {
		s.err = fmt.Errorf("sealed stream: write segment %d: %w", s.counter, err)
		return s.err
	}
	s.counter++
	s.buf = s.buf[:0]
	return nil
}

type streamOpener struct {
	r       io.Reader
	aead    cipher.AEAD
	ad      []byte
	nonce   streamNonce
	counter uint64
	buf     []byte // one sealed segment and one byte more; opened in place
	plain   []byte // opened plaintext not yet returned, within buf
	peek    byte   // first byte of the next segment, read to find the last
	hasPeek bool
	done    bool // the final segment has been opened
	err     error
}

// NewStreamOpener reads the header of a sealed stream from r and returns a
// reader of its plaintext and the stream's epoch. The reader returns only
// authenticated plaintext, and fails with ErrDecrypt if the stream was
// tampered with, reordered, truncated (a stream that stops before its final
// segment never reads as a short, successful one) or extended. Reading uses
// constant memory: one segment.
func NewStreamOpener(r io.Reader, keys Keys, ns [32]byte, storedKey []byte) (io.Reader, uint32, error) {
	var header [streamHeaderLen]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, 0, fmt.Errorf("sealed stream: truncated header: %w", ErrMalformed)
		}
		return nil, 0, fmt.Errorf("sealed stream: read header: %w", err)
	}
	if header[0] != streamVersion {
		return nil, 0, fmt.Errorf("sealed stream version %d (want %d): %w", header[0], streamVersion, ErrMalformed)
	}
	epoch := binary.BigEndian.Uint32(header[1:5])
	k, err := lookupKey(keys, epoch)
	if err != nil {
		return nil, epoch, fmt.Errorf("sealed stream: %w", err)
	}
	aead, err := chacha20poly1305.NewX(k[:])
	if err != nil {
		return nil, epoch, fmt.Errorf("sealed stream: %w", err)
	}
	o := &streamOpener{
		r:    r,
		aead: aead,
		ad:   bindingAD(streamDomain, ns, epoch, storedKey),
		buf:  make([]byte, streamSealedSeg+1),
	}
	copy(o.nonce[:], header[5:])
	return o, epoch, nil
}

func (o *streamOpener) Read(p []byte) (int, error) {
	for len(o.plain) == 0 {
		if o.err != nil {
			return 0, o.err
		}
		if o.done {
			return 0, io.EOF
		}
		o.err = o.next()
	}
	n := copy(p, o.plain)
	o.plain = o.plain[n:]
	return n, nil
}

// next reads and opens one segment. A segment is the last one if the input
// ends within it or right after it, which takes reading one byte ahead.
func (o *streamOpener) next() error {
	filled := 0
	if o.hasPeek {
		o.buf[0] = o.peek
		filled = 1
	}
	n, err := io.ReadFull(o.r, o.buf[filled:])
	filled += n
	last := false
	switch {
	case err == nil:
		// A whole segment and a byte of the next: not the last one.
		o.peek, o.hasPeek = o.buf[streamSealedSeg], true
		filled = streamSealedSeg
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		last = true
	default:
		return fmt.Errorf("sealed stream: read segment %d: %w", o.counter, err)
	}
	if o.counter > streamMaxCounter {
		return fmt.Errorf("sealed stream: more than %d segments: %w", uint64(streamMaxCounter)+1, ErrDecrypt)
	}
	o.nonce.set(o.counter, last)
	sealed := o.buf[:filled]
	plain, err := o.aead.Open(sealed[:0], o.nonce[:], sealed, o.ad)
	if err != nil {
		if last {
			return fmt.Errorf("sealed stream: final segment %d (truncated or tampered): %w", o.counter, ErrDecrypt)
		}
		return fmt.Errorf("sealed stream: segment %d: %w", o.counter, ErrDecrypt)
	}
	o.counter++
	o.plain = plain
	o.done = last
	return nil
}
