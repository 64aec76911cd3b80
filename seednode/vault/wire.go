package vault

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/seedfleet/seedfleet/internal/wire"
)

// ProtocolID is the libp2p protocol of vault sync.
const ProtocolID = "/seedfleet/vault-sync/1.0.0"

// Frame sizes are bounded on both sides: a peer that announces a larger frame
// is cut off before anything is allocated, and a frame's buffer grows as its
// bytes arrive (see wire.ReadBody).
const (
	maxFrame       = 1 << 20
	itemsFrameSize = 64 << 10 // items are packed into frames of about this size
	// MaxInlineValue: values up to this size are stored and sent with their
	// entry; larger ones are blobs.
	MaxInlineValue  = 1024
	protocolVersion = 1
	helloLen        = 1 + idLen + saltLen + 1
	saltLen         = 16
	maxAuthorTable  = 1 << 16
)

// Frame types. A session is a sequence of turns: each side sends frames and
// then frameEndTurn; after reconciliation a live session exchanges items and
// pings freely.
const (
	frameHello   = 1 // version | namespace | salt | flags
	frameSplit   = 2 // node | 16 × range fingerprint
	frameIDList  = 3 // node | uvarint n | n × item ID
	frameWant    = 4 // node | uvarint n | n × item ID
	frameWantAll = 5 // node
	frameAuthor  = 6 // author | consent kind | [notAfter | capability signature]
	frameItems   = 7 // uvarint n | n × item
	frameEndTurn = 8 // (empty)
	frameRefused = 9 // uvarint count | reason
	frameError   = 10
	framePing    = 11
	framePong    = 12
	// frameLacksBlobs (uvarint count) tells the peer that this side lacks
	// blobs its vault's entries refer to and will fetch them after the
	// session: a device then stays to serve them, as after sending entries
	// that refer to blobs. Sent only to a peer whose hello has
	// helloFlagLacksBlobs (peers from before it would take it for a
	// protocol violation).
	frameLacksBlobs = 13
)

const (
	helloFlagLive = 1
	// helloFlagLacksBlobs: the sender of the hello understands frameLacksBlobs.
	helloFlagLacksBlobs = 2
	// helloFlagTombstones: the sender of the hello reads tombstones; a
	// peer from before them is sent none (see the package documentation).
	helloFlagTombstones = 4
)

// ErrProtocol marks a peer that broke the protocol.
var ErrProtocol = errors.New("vault-sync protocol violation")

// Error codes carried by frameError.
const (
	CodeNotHosted = 1
	CodeProtocol  = 2
	CodeInternal  = 3
	CodeBadEntry  = 4
	CodeShutdown  = 5
)

// PeerError is an error the peer reported and ended the session with.
type PeerError struct {
	Code    int
	Message string
}

func (e *PeerError) Error() string { return "peer: " + e.Message }

// Is lets callers test errors.Is(err, ErrNotHosted).
func (e *PeerError) Is(target error) bool {
	return target == ErrNotHosted && e.Code == CodeNotHosted
}

// byteReader is what a frameReader reads: a bufio.Reader while
// reconciling, the stream itself in live mode.
type byteReader interface {
	io.Reader
	io.ByteReader
}

// frameReader reads frames (wire.ReadFrame) with a hard size bound. A
// frame's body is its type byte, then its payload.
type frameReader struct {
	r   byteReader
	buf []byte
	n   int64 // bytes read
}

// ReadByte counts the length prefix's bytes as wire.ReadLength reads them.
func (fr *frameReader) ReadByte() (byte, error) {
	c, err := fr.r.ReadByte()
	if err == nil {
		fr.n++
	}
	return c, err
}

// next returns the type and payload of the next frame; the payload is valid
// until the following call. A peer's bad length wraps ErrProtocol; the end
// of the stream between frames is io.EOF.
func (fr *frameReader) next() (byte, []byte, error) {
	l, err := wire.ReadLength(fr, maxFrame, ErrProtocol)
	if err != nil {
		return 0, nil, err
	}
	b, err := wire.ReadBody(fr.r, fr.buf, l)
	if err != nil {
		return 0, nil, err
	}
	fr.buf = b
	fr.n += int64(l)
	// Do not keep a huge buffer after one big frame.
	if cap(fr.buf) > 2*itemsFrameSize {
		fr.buf = nil
	}
	return b[0], b[1:], nil
}

// frameWriter buffers frames; flush sends them.
type frameWriter struct {
	w *bufio.Writer
	n int64
}

// write buffers one frame: its type byte and payload are its body.
func (fw *frameWriter) write(typ byte, payload []byte) error {
	if err := wire.WriteFrame(fw.w, []byte{typ}, payload); err != nil {
		return err
	}
	fw.n += int64(wire.FrameLen(1 + len(payload)))
	return nil
}

func (fw *frameWriter) flush() error { return fw.w.Flush() }

// decoder is a bounds-checked cursor over a frame payload (see
// wire.Decoder); its errors wrap ErrProtocol.
type decoder struct{ wire.Decoder }

func newDecoder(p []byte) *decoder { return &decoder{wire.Decoder{B: p, Sentinel: ErrProtocol}} }

func (d *decoder) node() Node {
	if d.Err != nil {
		return Node{}
	}
	n, used, err := decodeNode(d.B)
	if err != nil {
		d.Err = err
		return Node{}
	}
	d.B = d.B[used:]
	return n
}

// ids decodes a count-prefixed list of item IDs.
func (d *decoder) ids(what string) []itemID {
	n := d.Uvarint(what)
	if d.Err != nil {
		return nil
	}
	if n > uint64(len(d.B)/len(itemID{})) {
		d.Fail(what)
		return nil
	}
	out := make([]itemID, n)
	for i := range out {
		copy(out[i][:], d.Bytes(len(itemID{}), what))
	}
	return out
}

func appendIDs(b []byte, ids []itemID) []byte {
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for i := range ids {
		b = append(b, ids[i][:]...)
	}
	return b
}

// authorRef is one row of a session's author table: who signs, and how the
// namespace consented. Items name their row by index, so a capability crosses
// the wire once per session instead of once per entry.
type authorRef struct {
	author   AuthorID
	kind     ConsentKind
	notAfter uint64
	capSig   [sigLen]byte
}

func refOf(se *SignedEntry) authorRef {
	r := authorRef{author: se.Author, kind: se.Consent.Kind}
	if r.kind == ConsentCapability {
		r.notAfter = se.Consent.NotAfter
		r.capSig = se.Consent.Sig
	}
	return r
}

func appendAuthorRef(b []byte, r *authorRef) []byte {
	b = append(b, r.author[:]...)
	b = append(b, byte(r.kind))
	if r.kind == ConsentCapability {
		b = binary.BigEndian.AppendUint64(b, r.notAfter)
		b = append(b, r.capSig[:]...)
	}
	return b
}

func decodeAuthorRef(p []byte) (authorRef, error) {
	var r authorRef
	d := newDecoder(p)
	copy(r.author[:], d.Bytes(idLen, "author"))
	r.kind = ConsentKind(d.Byte("consent kind"))
	switch r.kind {
	case ConsentNamespaceSig, ConsentAgent:
	case ConsentCapability:
		if b := d.Bytes(8, "capability"); b != nil {
			r.notAfter = binary.BigEndian.Uint64(b)
		}
		copy(r.capSig[:], d.Bytes(sigLen, "capability signature"))
	default:
		if d.Err == nil {
			d.Err = fmt.Errorf("%w: unknown consent kind %d", ErrProtocol, r.kind)
		}
	}
	return r, d.Done("author frame")
}

// appendWireItem encodes an item against the sender's author table row.
func appendWireItem(b []byte, row int, it *Item) []byte {
	e := &it.Entry
	b = binary.AppendUvarint(b, uint64(row))
	b = binary.AppendUvarint(b, uint64(len(e.Key)))
	b = append(b, e.Key...)
	b = append(b, e.Hash[:]...)
	b = binary.AppendUvarint(b, e.Size)
	b = binary.AppendUvarint(b, e.Timestamp)
	b = append(b, e.AuthorSig[:]...)
	if e.Consent.Kind == ConsentNamespaceSig {
		b = append(b, e.Consent.Sig[:]...)
	}
	if it.Content == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(it.Content))+1)
	return append(b, it.Content...)
}

// decodeWireItems decodes an items frame. Content is checked against size and
// hash here, signatures later by the Verifier.
func decodeWireItems(p []byte, ns NamespaceID, authors []authorRef, out []Item) ([]Item, error) {
	d := newDecoder(p)
	n := d.Uvarint("item count")
	// An item is at least ~100 bytes; refuse counts the frame cannot hold.
	if d.Err == nil && n > uint64(len(d.B)/64+1) {
		return out, fmt.Errorf("%w: items frame claims %d items in %d bytes", ErrProtocol, n, len(p))
	}
	for i := uint64(0); i < n && d.Err == nil; i++ {
		var it Item
		e := &it.Entry
		e.Namespace = ns
		row := d.Uvarint("author row")
		if d.Err == nil && row >= uint64(len(authors)) {
			return out, fmt.Errorf("%w: item names author row %d of %d", ErrProtocol, row, len(authors))
		}
		kl := d.Uvarint("key length")
		if d.Err == nil && (kl == 0 || kl > MaxKeyLen) {
			return out, fmt.Errorf("%w: item key of %d bytes (allowed 1..%d)", ErrProtocol, kl, MaxKeyLen)
		}
		e.Key = append([]byte(nil), d.Bytes(int(kl), "key")...)
		copy(e.Hash[:], d.Bytes(idLen, "hash"))
		e.Size = d.Uvarint("size")
		e.Timestamp = d.Uvarint("timestamp")
		copy(e.AuthorSig[:], d.Bytes(sigLen, "author signature"))
		if d.Err != nil {
			break
		}
		ref := &authors[row]
		e.Author = ref.author
		e.Consent = Consent{Kind: ref.kind, NotAfter: ref.notAfter, Sig: ref.capSig}
		if ref.kind == ConsentNamespaceSig {
			copy(e.Consent.Sig[:], d.Bytes(sigLen, "namespace signature"))
		}
		cl := d.Uvarint("content length")
		if cl > 0 && d.Err == nil {
			cl--
			if cl > InlineLimit(e.Key) || cl != e.Size {
				return out, fmt.Errorf("%w: inline value of %d bytes for an entry of %d bytes", ErrContentInvalid, cl, e.Size)
			}
			it.Content = append([]byte{}, d.Bytes(int(cl), "content")...)
			if d.Err == nil && HashOf(it.Content) != e.Hash {
				return out, fmt.Errorf("%w: inline value of key %q does not hash to the entry's hash", ErrContentInvalid, e.Key)
			}
		}
		out = append(out, it)
	}
	return out, d.Done("items frame")
}
