package rendezvous

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/seedfleet/seedfleet/seednode/identity"
)

// Fuzz targets for everything that decodes bytes from a peer. Run one
// with, for example:
//
//	go test ./seednode/rendezvous -run='^$' -fuzz='^FuzzDecodeRecord$' -fuzztime=20s
//
// Inputs that once failed are kept in testdata/fuzz/<FuzzName>/ and run as
// regular tests.

// fuzzRecords returns valid records covering the format's corners.
func fuzzRecords(t testing.TB) []Record {
	agent := identity.DIDKey(pubOf(fixedKey(1)))
	mk := func(ctx string, addrs ...string) Record {
		var as []ma.Multiaddr
		for _, a := range addrs {
			as = append(as, mustAddr(t, a))
		}
		r, err := NewRecord(agent, ctx, fixedKey(2), as, fixedTime)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	return []Record{
		mk("laptop"),
		mk("phone", "/ip4/127.0.0.1/tcp/7400", "/ip6/::1/udp/7400/quic-v1", "/dns/seed.example/tcp/443/wss"),
		mk(strings.Repeat("x", MaxContextLen), "/ip4/1.2.3.4/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit"),
		mk("a", "/dns/"+strings.Repeat("a", MaxAddrLen-6)+"/tcp/1", "/unix/tmp/sock"),
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, r := range fuzzRecords(f) {
		b := r.appendBinary(nil)
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(append(bytes.Clone(b), 0))
	}
	f.Add([]byte{})
	f.Add([]byte{RecordVersion})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRecord(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("error %v does not wrap ErrInvalidRecord", err)
			}
			return
		}
		again, err := r.MarshalBinary()
		if err != nil {
			t.Fatalf("accepted record does not re-encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("accepted encoding does not re-encode to itself:\n  in %x\n out %x", data, again)
		}
		if len(r.Addrs) > MaxAddrs || len(r.Device) != keyLen || r.Context == "" || len(r.Context) > MaxContextLen {
			t.Fatalf("accepted a record that breaks the rules: %+v", r)
		}
		if err := CheckAgentDID(r.AgentDID); err != nil {
			t.Fatalf("accepted a bad agent DID: %v", err)
		}
		_ = r.Verify() // must not panic
	})
}

func FuzzDecodeRequest(f *testing.F) {
	for _, r := range fuzzRecords(f) {
		b := (&request{kind: reqRegister, record: r}).append(nil)
		f.Add(b)
		f.Add(b[:len(b)-1])
		lk := (&request{kind: reqLookup, agentDID: r.AgentDID}).append(nil)
		f.Add(lk)
		f.Add(append(bytes.Clone(lk), 0))
	}
	f.Add([]byte{})
	f.Add([]byte{reqLookup})
	f.Add([]byte{9})
	f.Fuzz(func(t *testing.T, data []byte) {
		q, rerr := decodeRequest(data)
		if rerr != nil {
			if _, ok := codeNames[rerr.Code]; !ok || rerr.Reason == "" {
				t.Fatalf("refusal without a known code or a reason: %+v", rerr)
			}
			return
		}
		if again := q.append(nil); !bytes.Equal(again, data) {
			t.Fatalf("accepted request does not re-encode to itself:\n  in %x\n out %x", data, again)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	var encs [][]byte
	for _, r := range fuzzRecords(f) {
		encs = append(encs, r.appendBinary(nil))
	}
	f.Add(appendLookupOK(nil, encs), true)
	f.Add(appendLookupOK(nil, nil), true)
	f.Add([]byte{respOK}, false)
	f.Add(appendRegisterOK(nil, DefaultTTL), false)
	f.Add(appendRefusal(nil, refuse(CodeReplay, "replay")), false)
	agent := identity.DIDKey(pubOf(fixedKey(1)))
	now := fixedTime.Add(time.Minute)
	f.Fuzz(func(t *testing.T, data []byte, lookup bool) {
		kind := byte(reqRegister)
		if lookup {
			kind = reqLookup
		}
		resp, err := decodeResponse(data, kind)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		if resp.refused != nil && (strings.ContainsAny(resp.refused.Reason, "\x00\x1b\n\r") || len(resp.refused.Reason) > 4*maxReasonLen) {
			t.Fatalf("unsanitized reason %q", resp.refused.Reason)
		}
		res := verifyLookup(resp.records, agent, now)
		if len(res.Records)+res.Dropped != len(resp.records) {
			t.Fatalf("kept %d and dropped %d of %d records", len(res.Records), res.Dropped, len(resp.records))
		}
		for _, r := range res.Records {
			if err := r.Verify(); err != nil || r.AgentDID != agent {
				t.Fatalf("kept a bad record: %v", err)
			}
		}
	})
}
