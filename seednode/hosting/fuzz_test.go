package hosting

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/internal/wire"
)

// FuzzUnmarshalRequest: a request either decodes to one that re-encodes to
// the same bytes (the encoding is canonical, so a signature covers one
// meaning), or is refused with ErrMalformed; Verify never panics on what
// decodes.
func FuzzUnmarshalRequest(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	a := newAgent(f, now)
	r := a.request(now, [32]byte{1}, [32]byte{2})
	r.Sign(a.device)
	f.Add(r.Marshal())
	r2 := a.request(now)
	r2.Op, r2.AgentDoc = OpStatus, nil
	r2.Sign(a.root)
	f.Add(r2.Marshal())
	f.Add([]byte{})
	f.Add([]byte{requestVersion, byte(OpHost), byte(SubjectAgent)})
	f.Fuzz(func(t *testing.T, p []byte) {
		got, err := UnmarshalRequest(p)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if again := got.Marshal(); !bytes.Equal(again, p) {
			t.Fatalf("decoded request re-encodes differently:\n in %x\nout %x", p, again)
		}
		_, _ = got.Verify(testFleet, now, a.doc)
	})
}

// FuzzUnmarshalAnswer: an answer either decodes, or is refused with
// ErrMalformed; what decodes re-encodes to an answer that decodes the same.
func FuzzUnmarshalAnswer(f *testing.F) {
	f.Add(sampleAnswer(f).Marshal())
	f.Add((&Answer{Reason: ReasonQuota, Message: "over quota", RetryAfter: time.Minute}).Marshal())
	f.Add([]byte{answerVersion})
	f.Fuzz(func(t *testing.T, p []byte) {
		got, err := UnmarshalAnswer(p)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again, err := UnmarshalAnswer(got.Marshal())
		if err != nil {
			t.Fatalf("a decoded answer re-encodes to one that does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, got) {
			t.Fatalf("re-encoding changed the answer:\n%+v\n%+v", got, again)
		}
	})
}

// FuzzDecodeBatch: a batch frame from a pod either decodes (items that do
// not decode are empty entries) or is refused with ErrMalformed, never a
// panic; a decoded request or record re-encodes to what was sent.
func FuzzDecodeBatch(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	a := newAgent(f, now)
	r := a.request(now, [32]byte{1})
	r.Sign(a.device)
	rec := &Record{Kind: SubjectAgent, Subject: r.Subject, Admitted: now, LastRequest: now,
		Vaults: []VaultRecord{{Namespace: [32]byte{1}, QuotaBytes: 10, QuotaEntries: 2, Admitted: now}}}
	good := binary.AppendUvarint([]byte{}, 2)
	good = append(good, itemRequest)
	good = wire.AppendLenBytes(good, "127.0.0.0/24")
	good = wire.AppendLenBytes(good, r.Marshal())
	good = append(good, itemRecord)
	good = wire.AppendLenBytes(good, rec.Encode())
	f.Add(good)
	f.Add([]byte{1, itemRecord, 3, 1, 2, 3})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, p []byte) {
		items, err := decodeBatch(p)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		for _, it := range items {
			if it.rec != nil {
				if _, err := DecodeRecord(it.rec.Encode()); err != nil {
					t.Fatalf("a decoded record re-encodes to one that does not decode: %v", err)
				}
			}
		}
	})
}

// TestDecodeBatchItems: the two item kinds decode to what was sent; a
// damaged item is an empty entry, a damaged frame an error.
func TestDecodeBatchItems(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := newAgent(t, now)
	r := a.request(now, [32]byte{1})
	r.Sign(a.device)
	rec := &Record{Kind: SubjectVault, Subject: r.Subject, Admitted: now, LastRequest: now,
		Vaults: []VaultRecord{{Namespace: [32]byte{7}, QuotaBytes: 10, QuotaEntries: 2, Admitted: now}}}
	p := binary.AppendUvarint(nil, 3)
	p = append(p, itemRequest)
	p = wire.AppendLenBytes(p, "10.0.0.0/24")
	p = wire.AppendLenBytes(p, r.Marshal())
	p = append(p, itemRecord)
	p = wire.AppendLenBytes(p, rec.Encode())
	p = append(p, itemRecord)
	p = wire.AppendLenBytes(p, []byte{9, 9})
	items, err := decodeBatch(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 || items[0].from != "10.0.0.0/24" || items[0].req == nil || !bytes.Equal(items[0].req.Marshal(), r.Marshal()) {
		t.Fatalf("request item decoded as %+v", items[0])
	}
	if items[1].rec == nil || items[1].rec.Vaults[0].Namespace != [32]byte{7} {
		t.Fatalf("record item decoded as %+v", items[1])
	}
	if items[2].req != nil || items[2].rec != nil {
		t.Fatalf("a damaged record decoded: %+v", items[2])
	}
	if _, err := decodeBatch(append(p, 0)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a frame with trailing bytes: %v", err)
	}
	if _, err := decodeBatch(append(binary.AppendUvarint(nil, 1), 'X')); !errors.Is(err, ErrMalformed) {
		t.Fatalf("an unknown item type: %v", err)
	}
}

// FuzzDecodeStates: a pod's vault states decode or are refused with
// ErrMalformed, never a panic.
func FuzzDecodeStates(f *testing.F) {
	ok := append([]byte{1}, make([]byte, 32)...)
	f.Add(append(ok, 0), 1)
	f.Add([]byte{2}, 1)
	f.Add([]byte{}, 0)
	f.Add(append(append([]byte{}, ok...), 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01), 1) // a sync time past year 9999
	f.Fuzz(func(t *testing.T, p []byte, n int) {
		n = min(max(n, 0), MaxStateVaults)
		withSync := n%2 == 1
		sts, err := decodeStates(p, n, withSync)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(sts) != n {
			t.Fatalf("%d states for %d vaults", len(sts), n)
		}
	})
}
