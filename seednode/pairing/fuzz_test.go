package pairing

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Fuzz targets for everything that decodes bytes from a peer or a user.
// Run one with, for example:
//
//	go test ./seednode/pairing -run='^$' -fuzz='^FuzzDecodeMessage$' -fuzztime=20s
//
// Inputs that once failed are kept in testdata/fuzz/<FuzzName>/ and run as
// regular tests.

func FuzzDecodeMessage(f *testing.F) {
	for _, m := range sampleMessages() {
		b := m.append(nil)
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(append(bytes.Clone(b), 0))
	}
	f.Add([]byte{})
	f.Add([]byte{msgRefusal, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeMessage(data)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		// The encoding is canonical: what decodes re-encodes to itself,
		// so a tag computed over the re-encoding covers the bytes sent.
		if enc := m.append(nil); !bytes.Equal(enc, data) {
			t.Fatalf("decoded %+v re-encodes to %x, not %x", m, enc, data)
		}
		if len(m.name) > MaxNameLen || len(m.payload) > MaxWelcomeSize || len(m.text) > maxReasonLen {
			t.Fatalf("decoded fields exceed their bounds: %d, %d, %d", len(m.name), len(m.payload), len(m.text))
		}
	})
}

func FuzzParseTicket(f *testing.F) {
	for _, tk := range sampleTickets(f) {
		s := tk.String()
		f.Add(s)
		f.Add(strings.ToUpper(s))
		f.Add(s[:len(s)-1])
		f.Add(string(tk.appendBinary(nil))) // a payload, for the sealed path
	}
	f.Add("")
	f.Add(TicketPrefix)
	f.Add("\x01")
	f.Fuzz(func(t *testing.T, s string) {
		checkTicket(t, s)
		// Random text almost never gets past the checksum: also try the
		// input as a payload with a correct one, to reach the decoder.
		if len(s) <= maxTicketBytes {
			sum := ticketChecksum([]byte(s))
			checkTicket(t, TicketPrefix+b32.EncodeToString(append([]byte(s), sum[:]...)))
		}
	})
}

func checkTicket(t *testing.T, s string) {
	tk, err := ParseTicket(s)
	if err != nil {
		if !errors.Is(err, ErrInvalidTicket) {
			t.Fatalf("error %v does not wrap ErrInvalidTicket", err)
		}
		return
	}
	if err := tk.Validate(); err != nil {
		t.Fatalf("accepted a ticket that does not validate: %v", err)
	}
	if canon := tk.String(); canon != normalizeTicket(s) {
		t.Fatalf("accepted text is not canonical:\n  in %q\n out %q", s, canon)
	}
	again, err := ParseTicket(tk.String())
	if err != nil || !ticketsEqual(again, tk) {
		t.Fatalf("canonical form parses to %+v, %v; want %+v", again, err, tk)
	}
	if tk.Code != "" && !tk.Code.isCanonical() {
		t.Fatalf("parsed code %q is not canonical", tk.Code)
	}
	if _, err := peer.IDFromBytes([]byte(tk.Peer.ID)); err != nil {
		t.Fatalf("parsed peer ID does not decode: %v", err)
	}
}

func FuzzParseCode(f *testing.F) {
	for _, s := range []string{"ABCD-EFGH", "abcd efgh", "o1il-OILZ", "ABCU-EFGH", "", "-", "ÄBCD-EFGH", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCode(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidCode) {
				t.Fatalf("error %v does not wrap ErrInvalidCode", err)
			}
			return
		}
		if !c.isCanonical() {
			t.Fatalf("ParseCode(%q) = %q, not canonical", s, c)
		}
		if again, err := ParseCode(c.String()); err != nil || again != c {
			t.Fatalf("displayed form %q parses to %q, %v", c.String(), again, err)
		}
		if codeFromBytes(c.bytes()) != c {
			t.Fatalf("%q does not survive its binary form", c)
		}
	})
}
