package identity

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"
	"time"
)

// FuzzParseAgentDocument checks that ParseAgentDocument never panics, that
// its errors wrap ErrAgentDocument, and that the encoding is canonical:
// whatever is accepted encodes back to the same bytes.
//
// Mutated inputs almost never keep a valid signature, so the body decoder is
// also fuzzed directly on the input minus its last 64 bytes, and every body
// it accepts is re-rooted under fuzzRoot and run through Sign and
// ParseAgentDocument. The seed corpus (testdata/fuzz/FuzzParseAgentDocument)
// holds documents signed by fuzzRoot, valid ones and ones each breaking one
// rule, so the signed path is exercised as well.
func FuzzParseAgentDocument(f *testing.F) {
	fuzzRoot := testAgentKey(1)
	d, _, _ := sampleAgent(f)
	f.Add(mustSign(f, d, fuzzRoot))
	f.Add(mustSign(f, NewAgentDocument(pub(fuzzRoot), t0), fuzzRoot))
	full := NewAgentDocument(pub(fuzzRoot), t0)
	for i, k := range sortedPubs(MaxAgentDevices) {
		if err := full.AddDevice(fmt.Sprintf("device-%d", i), k, t0); err != nil {
			f.Fatal(err)
		}
	}
	for _, k := range sortedPubs(MaxAgentDevices / 2) {
		if err := full.Revoke(k, t0.Add(time.Hour)); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(mustSign(f, full, fuzzRoot))

	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseAgentDocument(b)
		if err != nil {
			if !errors.Is(err, ErrAgentDocument) {
				t.Fatalf("error %q does not wrap ErrAgentDocument", err)
			}
			if d != nil {
				t.Fatal("document returned with an error")
			}
		} else {
			if err := d.Validate(); err != nil {
				t.Fatalf("accepted document does not validate: %v", err)
			}
			if body := b[:len(b)-ed25519.SignatureSize]; !bytes.Equal(d.appendBody(nil), body) {
				t.Fatalf("accepted non-canonical encoding\n got %x\nwant %x", body, d.appendBody(nil))
			}
		}

		if len(b) < ed25519.SignatureSize {
			return
		}
		body := b[:len(b)-ed25519.SignatureSize]
		d, err = decodeAgentBody(body)
		if err != nil {
			return
		}
		if got := d.appendBody(nil); !bytes.Equal(got, body) {
			t.Fatalf("decoder accepted non-canonical body\n got %x\nwant %x", body, got)
		}
		d.Root = pub(fuzzRoot)
		if d.Validate() != nil {
			return // re-rooting made the root one of the listed keys
		}
		enc, err := d.Sign(fuzzRoot)
		if err != nil {
			t.Fatalf("Sign of a decoded document: %v", err)
		}
		again, err := ParseAgentDocument(enc)
		if err != nil {
			t.Fatalf("ParseAgentDocument of a signed document: %v", err)
		}
		if !bytes.Equal(again.appendBody(nil), d.appendBody(nil)) {
			t.Fatal("Sign and ParseAgentDocument do not round-trip")
		}
	})
}
