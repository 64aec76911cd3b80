package fleet

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/seedfleet/seedfleet/internal/wire"
)

// The digest exchange's messages. Each is one frame (internal/wire) whose
// body starts with its kind:
//
//	hello    asker → answerer  key[32] root[32]: the asker's digest of the
//	                           (key, value) pairs it shares with the
//	                           answerer, under key (the asker's).
//	equal    answerer → asker  the answerer's digest under key has that root.
//	buckets  answerer → asker  else its 4,096 buckets: hash[16] count[4].
//	ask      asker → answerer  n, then n bucket indices (2 bytes each,
//	                           strictly increasing): list their pairs.
//	items    both ways         n ≤ maxExchangeItems, then n × key[32] value[32],
//	                           every pair in an asked bucket;
//	end      both ways         no more items.
//	refused  answerer → asker  why (text); the stream ends.
const (
	msgHello   byte = 1
	msgEqual   byte = 2
	msgBuckets byte = 3
	msgAsk     byte = 4
	msgItems   byte = 5
	msgEnd     byte = 6
	msgRefused byte = 7
)

const (
	// maxExchangeItems bounds the pairs one items frame carries (64 KiB).
	maxExchangeItems = 1024
	// bucketsLen is the body of a buckets message after its kind.
	bucketsLen = DigestBuckets * (DigestItemLen + 4)
	// maxExchangeFrame bounds every frame of the protocol: the largest is
	// a buckets message.
	maxExchangeFrame = 1 + bucketsLen
	// maxRefusalLen bounds a refusal's text.
	maxRefusalLen = 256
)

// ErrExchangeProtocol is wrapped by every error about a malformed message of
// a digest exchange.
var ErrExchangeProtocol = errors.New("digest exchange protocol violation")

// DigestBucket is one bucket of a digest as it travels.
type DigestBucket struct {
	Hash  [DigestItemLen]byte
	Count uint32
}

// Pair is one item of a digest set: a key (a vault, a subject) and its value
// (the vault's fingerprint, the subject's record version).
type Pair struct {
	Key, Value [32]byte
}

// exchangeMsg is a decoded message; which fields are set depends on kind.
type exchangeMsg struct {
	kind      byte
	key, root [32]byte
	buckets   []DigestBucket // DigestBuckets of them
	ask       []uint16
	items     []Pair
	reason    string
}

func appendHello(b []byte, key, root [32]byte) []byte {
	b = append(b, msgHello)
	b = append(b, key[:]...)
	return append(b, root[:]...)
}

// AppendBuckets appends the buckets message of d: what an answerer's
// ExchangeSide.Digest returns.
func AppendBuckets(b []byte, d *Digest) []byte {
	b = append(b, msgBuckets)
	for i := range DigestBuckets {
		h, c := d.Bucket(i)
		b = append(b, h[:]...)
		b = binary.BigEndian.AppendUint32(b, c)
	}
	return b
}

func appendAsk(b []byte, buckets []uint16) []byte {
	b = append(b, msgAsk)
	b = binary.AppendUvarint(b, uint64(len(buckets)))
	for _, i := range buckets {
		b = binary.BigEndian.AppendUint16(b, i)
	}
	return b
}

func appendItems(b []byte, items []Pair) []byte {
	b = append(b, msgItems)
	b = binary.AppendUvarint(b, uint64(len(items)))
	for _, it := range items {
		b = append(b, it.Key[:]...)
		b = append(b, it.Value[:]...)
	}
	return b
}

func appendRefused(b []byte, reason string) []byte {
	b = append(b, msgRefused)
	return wire.AppendLenBytes(b, wire.Truncate(reason, maxRefusalLen))
}

// decodeExchangeMsg decodes one frame body. It never panics; errors wrap
// ErrExchangeProtocol and say what was wrong.
func decodeExchangeMsg(body []byte) (exchangeMsg, error) {
	d := wire.Decoder{B: body, Sentinel: ErrExchangeProtocol}
	m := exchangeMsg{kind: d.Byte("message kind")}
	switch m.kind {
	case msgHello:
		d.Fixed(m.key[:], "hello key")
		d.Fixed(m.root[:], "hello root")
	case msgEqual, msgEnd:
	case msgBuckets:
		raw := d.Bytes(bucketsLen, "buckets")
		if raw != nil {
			m.buckets = make([]DigestBucket, DigestBuckets)
			for i := range m.buckets {
				r := raw[i*(DigestItemLen+4):]
				copy(m.buckets[i].Hash[:], r)
				m.buckets[i].Count = binary.BigEndian.Uint32(r[DigestItemLen:])
			}
		}
	case msgAsk:
		n := d.Uvarint("bucket count")
		if d.Err == nil && (n == 0 || n > DigestBuckets) {
			return m, fmt.Errorf("%w: ask for %d buckets (1 to %d)", ErrExchangeProtocol, n, DigestBuckets)
		}
		raw := d.Bytes(int(n)*2, "bucket indices")
		for i := 0; raw != nil && i < int(n); i++ {
			b := binary.BigEndian.Uint16(raw[2*i:])
			if b >= DigestBuckets || (i > 0 && b <= m.ask[i-1]) {
				return m, fmt.Errorf("%w: bucket indices out of range or not strictly increasing", ErrExchangeProtocol)
			}
			m.ask = append(m.ask, b)
		}
	case msgItems:
		n := d.Uvarint("item count")
		if d.Err == nil && (n == 0 || n > maxExchangeItems) {
			return m, fmt.Errorf("%w: %d items in a frame (1 to %d)", ErrExchangeProtocol, n, maxExchangeItems)
		}
		raw := d.Bytes(int(n)*64, "items")
		for i := 0; raw != nil && i < int(n); i++ {
			var it Pair
			copy(it.Key[:], raw[64*i:])
			copy(it.Value[:], raw[64*i+32:])
			m.items = append(m.items, it)
		}
	case msgRefused:
		m.reason = wire.Sanitize(string(d.LenBytes("refusal", maxRefusalLen)))
	default:
		return m, fmt.Errorf("%w: unknown message kind %d", ErrExchangeProtocol, m.kind)
	}
	return m, d.Done(fmt.Sprintf("message of kind %d", m.kind))
}
