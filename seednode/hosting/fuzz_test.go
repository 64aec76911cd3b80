package hosting

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
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
