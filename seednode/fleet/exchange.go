package fleet

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/seedfleet/seedfleet/internal/wire"
)

// A digest exchange compares, in one conversation between two pods, a set
// of (key, value) pairs each keeps for the other in a Digest: (vault,
// fingerprint) for the vaults two pods replicate, (subject, record version)
// for the hosting records they both keep. seednode/node's replica digest
// exchange and seednode/hosting's record exchange are its two uses; each
// keeps its sets and decides what to do with the pairs that differ.
//
// The asker sends the root of its digest under its own key (a secret of its
// process). The answerer keeps a digest of the same set under that key;
// equal roots end the exchange with one round trip and no per-pair work.
// Otherwise the answerer sends its 4,096 buckets, the asker names the
// buckets that differ and lists its pairs in them, and the answerer lists
// its own: both sides now know the pairs that differ. Every message is one
// bounded frame (exchange_wire.go); a pair listed outside the asked buckets
// ends the exchange.

// MaxExchangeFrame bounds every frame of a digest exchange (the largest is
// the buckets message): what a stream reserves twice over, read and written.
const MaxExchangeFrame = maxExchangeFrame

// maxExchangePairs bounds the pairs one side reads in one exchange.
const maxExchangePairs = 1 << 24

// ExchangeStream is the stream an exchange runs on (a libp2p stream is one).
type ExchangeStream interface {
	io.Reader
	io.Writer
	CloseWrite() error
}

// ExchangeResult is what one exchange found. Refused is the answerer's
// reason when it refused. Mine are this side's pairs in the buckets that
// differed and Theirs the peer's pairs there that this side keeps (Keep);
// both are empty when the sets were equal.
type ExchangeResult struct {
	Refused string
	Mine    []Pair
	Theirs  map[[32]byte][32]byte
}

// ExchangeSide is one pod's view of the set it shares with the peer. Its
// functions are called from the exchange's goroutine; they lock what they
// read.
type ExchangeSide struct {
	// Diff lists the buckets of the peer's digest that differ from this
	// pod's (asker only; both under the asker's key).
	Diff func(theirs []DigestBucket) []uint16
	// Digest is the set under the asker's key: its root and its buckets
	// message (AppendBuckets), or a reason to refuse the exchange
	// (answerer only).
	Digest func(key [32]byte) (root [32]byte, buckets []byte, refusal string)
	// In lists this pod's pairs in the buckets.
	In func(buckets []uint16) []Pair
	// Keep reports whether a pair the peer listed concerns this pod; the
	// others are dropped.
	Keep func(Pair) bool
}

// Ask runs an exchange as the asker, whose digest has root under key.
func Ask(s ExchangeStream, key, root [32]byte, side ExchangeSide) (ExchangeResult, error) {
	rd, w := bufio.NewReader(s), bufio.NewWriter(s)
	if err := writeMsg(w, appendHello(nil, key, root)); err != nil {
		return ExchangeResult{}, err
	}
	m, err := readMsg(rd)
	if err != nil {
		return ExchangeResult{}, err
	}
	switch m.kind {
	case msgEqual:
		return ExchangeResult{}, nil
	case msgRefused:
		return ExchangeResult{Refused: m.reason}, nil
	case msgBuckets:
	default:
		return ExchangeResult{}, fmt.Errorf("%w: message of kind %d after hello", ErrExchangeProtocol, m.kind)
	}
	asked := side.Diff(m.buckets)
	if len(asked) == 0 { // equal since the hello
		return ExchangeResult{}, s.CloseWrite()
	}
	res := ExchangeResult{Mine: side.In(asked)}
	if err := writeMsg(w, appendAsk(nil, asked)); err != nil {
		return res, err
	}
	if err := writePairs(w, res.Mine); err != nil {
		return res, err
	}
	res.Theirs, err = readPairs(rd, asked, side.Keep)
	return res, err
}

// Answer runs an exchange as the answerer.
func Answer(s ExchangeStream, side ExchangeSide) (ExchangeResult, error) {
	rd, w := bufio.NewReader(s), bufio.NewWriter(s)
	hello, err := readMsg(rd)
	if err == nil && hello.kind != msgHello {
		err = fmt.Errorf("%w: message of kind %d first, want hello", ErrExchangeProtocol, hello.kind)
	}
	if err != nil {
		return ExchangeResult{}, err
	}
	root, buckets, refusal := side.Digest(hello.key)
	if refusal != "" {
		return ExchangeResult{Refused: refusal}, writeMsg(w, appendRefused(nil, refusal))
	}
	if root == hello.root {
		return ExchangeResult{}, writeMsg(w, []byte{msgEqual})
	}
	if err := writeMsg(w, buckets); err != nil {
		return ExchangeResult{}, err
	}
	ask, err := readMsg(rd)
	if errors.Is(err, io.EOF) { // the asker found nothing differing
		return ExchangeResult{}, nil
	}
	if err == nil && ask.kind != msgAsk {
		err = fmt.Errorf("%w: message of kind %d after buckets, want ask", ErrExchangeProtocol, ask.kind)
	}
	if err != nil {
		return ExchangeResult{}, err
	}
	var res ExchangeResult
	if res.Theirs, err = readPairs(rd, ask.ask, side.Keep); err != nil {
		return res, err
	}
	res.Mine = side.In(ask.ask)
	return res, writePairs(w, res.Mine)
}

// bucketSet is a set of digest buckets.
type bucketSet [DigestBuckets]bool

func newBucketSet(list []uint16) *bucketSet {
	var s bucketSet
	for _, b := range list {
		s[b] = true
	}
	return &s
}

// InBuckets returns a test of whether a key falls in one of the buckets.
func InBuckets(buckets []uint16) func(key [32]byte) bool {
	in := newBucketSet(buckets)
	return func(key [32]byte) bool { return in[BucketOf(key)] }
}

// DiffBucketList lists the buckets of theirs that differ from d's (both
// under d's key).
func (d *Digest) DiffBucketList(theirs []DigestBucket) []uint16 {
	var out []uint16
	for i, b := range theirs {
		if h, c := d.Bucket(i); h != b.Hash || c != b.Count {
			out = append(out, uint16(i))
		}
	}
	return out
}

// readPairs reads the peer's pairs up to the end message: each must fall in
// an asked bucket. It keeps those keep accepts.
func readPairs(rd *bufio.Reader, buckets []uint16, keep func(Pair) bool) (map[[32]byte][32]byte, error) {
	in := newBucketSet(buckets)
	out := map[[32]byte][32]byte{}
	read := 0
	for {
		m, err := readMsg(rd)
		if err != nil {
			return nil, err
		}
		switch m.kind {
		case msgEnd:
			return out, nil
		case msgItems:
		default:
			return nil, fmt.Errorf("%w: message of kind %d among items", ErrExchangeProtocol, m.kind)
		}
		if read += len(m.items); read > maxExchangePairs {
			return nil, fmt.Errorf("%w: more than %d pairs listed", ErrExchangeProtocol, maxExchangePairs)
		}
		for _, it := range m.items {
			if !in[BucketOf(it.Key)] {
				return nil, fmt.Errorf("%w: key %x listed outside the asked buckets", ErrExchangeProtocol, it.Key[:6])
			}
			if keep(it) {
				out[it.Key] = it.Value
			}
		}
	}
}

func readMsg(rd *bufio.Reader) (exchangeMsg, error) {
	body, err := wire.ReadFrame(rd, maxExchangeFrame, ErrExchangeProtocol)
	if err != nil {
		return exchangeMsg{}, err
	}
	return decodeExchangeMsg(body)
}

func writeMsg(w *bufio.Writer, body []byte) error {
	if err := wire.WriteFrame(w, body); err != nil {
		return err
	}
	return w.Flush()
}

// writePairs sends pairs in frames of at most maxExchangeItems, then end.
func writePairs(w *bufio.Writer, items []Pair) error {
	for len(items) > 0 {
		n := min(len(items), maxExchangeItems)
		if err := wire.WriteFrame(w, appendItems(nil, items[:n])); err != nil {
			return err
		}
		items = items[n:]
	}
	return writeMsg(w, []byte{msgEnd})
}
