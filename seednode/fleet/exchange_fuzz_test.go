package fleet

import (
	"bytes"
	"errors"
	"testing"

	"github.com/seedfleet/seedfleet/internal/wire"
)

// exchangeSamples are well-formed messages of every kind.
func exchangeSamples() [][]byte {
	d := NewDigest([32]byte{9})
	d.Add([32]byte{1}, [32]byte{2})
	return [][]byte{
		appendHello(nil, [32]byte{1}, [32]byte{2}),
		{msgEqual},
		AppendBuckets(nil, d),
		appendAsk(nil, []uint16{0, 7, DigestBuckets - 1}),
		appendItems(nil, []Pair{{Key: [32]byte{3}, Value: [32]byte{4}}, {Key: [32]byte{5}}}),
		{msgEnd},
		appendRefused(nil, "not a replica peer"),
	}
}

// FuzzDecodeExchangeMsg: any frame body decodes without panicking, to an
// error wrapping ErrExchangeProtocol or to a message that encodes back to
// the same bytes (one encoding per message).
func FuzzDecodeExchangeMsg(f *testing.F) {
	for _, s := range exchangeSamples() {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Add([]byte{msgAsk, 0})
	f.Add([]byte{msgAsk, 2, 0, 5, 0, 5})
	f.Add([]byte{msgItems, 0})
	f.Add([]byte{msgItems, 0x81, 0x00})
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := decodeExchangeMsg(body)
		if err != nil {
			if !errors.Is(err, ErrExchangeProtocol) {
				t.Fatalf("error %v does not wrap ErrExchangeProtocol", err)
			}
			return
		}
		if m.kind == msgRefused {
			return // its text is sanitized: control characters do not come back
		}
		if got := encodeExchangeMsg(t, m); !bytes.Equal(got, body) {
			t.Fatalf("%x decodes to %+v, which encodes to %x", body, m, got)
		}
	})
}

// encodeExchangeMsg is the inverse of decodeExchangeMsg, for the tests.
func encodeExchangeMsg(t *testing.T, m exchangeMsg) []byte {
	switch m.kind {
	case msgHello:
		return appendHello(nil, m.key, m.root)
	case msgEqual, msgEnd:
		return []byte{m.kind}
	case msgBuckets:
		out := []byte{msgBuckets}
		for _, b := range m.buckets {
			out = append(out, b.Hash[:]...)
			out = append(out, byte(b.Count>>24), byte(b.Count>>16), byte(b.Count>>8), byte(b.Count))
		}
		return out
	case msgAsk:
		return appendAsk(nil, m.ask)
	case msgItems:
		return appendItems(nil, m.items)
	case msgRefused:
		return appendRefused(nil, m.reason)
	}
	t.Fatalf("decoded an unknown kind %d", m.kind)
	return nil
}

// TestExchangeMsgRefusals: the malformed messages a hostile peer might send
// are refused with a reason.
func TestExchangeMsgRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"unknown kind", []byte{99}},
		{"short hello", appendHello(nil, [32]byte{}, [32]byte{})[:40]},
		{"trailing byte", append([]byte{msgEqual}, 0)},
		{"short buckets", AppendBuckets(nil, NewDigest([32]byte{}))[:100]},
		{"ask for none", []byte{msgAsk, 0}},
		{"ask repeats a bucket", appendAsk(nil, []uint16{3, 3})},
		{"ask out of range", appendAsk(nil, []uint16{DigestBuckets})},
		{"too many buckets", appendAsk(nil, make([]uint16, DigestBuckets+1))},
		{"no items", []byte{msgItems, 0}},
		{"too many items", appendItems(nil, make([]Pair, maxExchangeItems+1))},
		{"items cut short", appendItems(nil, make([]Pair, 2))[:70]},
		{"non-minimal count", []byte{msgItems, 0x81, 0x00}},
		{"refusal too long", append([]byte{msgRefused, 0x81, 0x04}, make([]byte, 513)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeExchangeMsg(tc.body); !errors.Is(err, ErrExchangeProtocol) {
				t.Fatalf("decoded %x: %v, want a protocol error", tc.body, err)
			}
		})
	}
	for _, s := range exchangeSamples() {
		m, err := decodeExchangeMsg(s)
		if err != nil {
			t.Fatalf("sample %x: %v", s, err)
		}
		if got := encodeExchangeMsg(t, m); !bytes.Equal(got, s) {
			t.Fatalf("sample %x round-trips to %x", s, got)
		}
	}
}

// fuzzStream is a stream whose peer sent in and reads nothing back.
type fuzzStream struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (s *fuzzStream) Read(p []byte) (int, error)  { return s.in.Read(p) }
func (s *fuzzStream) Write(p []byte) (int, error) { return s.out.Write(p) }
func (s *fuzzStream) CloseWrite() error           { return nil }

// fuzzSide is a side whose set is ten pairs, keeping every pair listed.
func fuzzSide() (ExchangeSide, *Digest) {
	d := NewDigest([32]byte{9})
	var pairs []Pair
	for i := range 10 {
		p := Pair{Key: [32]byte{byte(i * 29), byte(i)}, Value: [32]byte{byte(i)}}
		d.Add(p.Key, p.Value)
		pairs = append(pairs, p)
	}
	return ExchangeSide{
		Diff:   d.DiffBucketList,
		Digest: func([32]byte) ([32]byte, []byte, string) { return d.Root(), AppendBuckets(nil, d), "" },
		In: func(buckets []uint16) []Pair {
			in := InBuckets(buckets)
			var out []Pair
			for _, p := range pairs {
				if in(p.Key) {
					out = append(out, p)
				}
			}
			return out
		},
		Keep: func(Pair) bool { return true },
	}, d
}

// FuzzExchangeSides feeds what a hostile peer might send, as frames, to
// both sides of an exchange: each ends with a result or an error, never a
// panic, and keeps a bounded number of pairs.
func FuzzExchangeSides(f *testing.F) {
	side, d := fuzzSide()
	frames := func(bodies ...[]byte) []byte {
		var out []byte
		for _, b := range bodies {
			out = wire.AppendFrame(out, b)
		}
		return out
	}
	other := NewDigest([32]byte{9})
	f.Add(frames([]byte{msgEqual}))
	f.Add(frames(AppendBuckets(nil, other), appendItems(nil, []Pair{{Key: [32]byte{0, 1}}}), []byte{msgEnd}))
	f.Add(frames(appendHello(nil, [32]byte{9}, d.Root())))
	f.Add(frames(appendHello(nil, [32]byte{1}, [32]byte{2}), appendAsk(nil, []uint16{0, 7}), appendItems(nil, []Pair{{}}), []byte{msgEnd}))
	f.Add(frames(appendRefused(nil, "no")))
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, asker := range []bool{true, false} {
			s := &fuzzStream{in: bytes.NewReader(in)}
			var res ExchangeResult
			var err error
			if asker {
				res, err = Ask(s, [32]byte{9}, d.Root(), side)
			} else {
				res, err = Answer(s, side)
			}
			if err != nil {
				continue
			}
			if len(res.Theirs) > maxExchangePairs {
				t.Fatalf("kept %d pairs", len(res.Theirs))
			}
		}
	})
}
