package pairing

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/seedfleet/seedfleet/internal/wire"
)

// sampleMessages covers every message type and the bounds of its fields.
func sampleMessages() []message {
	var sid [sidLen]byte
	var pt, mac [pointLen]byte
	for i := range pt {
		pt[i], mac[i] = byte(i), byte(255-i)
	}
	copy(sid[:], "0123456789abcdef")
	return []message{
		{typ: msgHello, sid: sid, point: pt},
		{typ: msgReply, point: pt, mac: mac},
		{typ: msgConfirm, mac: mac},
		{typ: msgRequest, name: "laptop", tagged: true, tag: mac},
		{typ: msgRequest, name: strings.Repeat("a", MaxNameLen), tagged: true, tag: mac},
		{typ: msgWelcome, payload: []byte{}, tagged: true, tag: mac},
		{typ: msgWelcome, payload: bytes.Repeat([]byte{7}, MaxWelcomeSize), tagged: true, tag: mac},
		{typ: msgRefusal, reason: reasonBusy, text: "busy"},
		{typ: msgRefusal, reason: reasonDenied, text: strings.Repeat("x", maxReasonLen), tagged: true, tag: mac},
		{typ: msgRefusal, reason: 200, text: ""},
		{typ: msgAck, tagged: true, tag: mac},
	}
}

func messagesEqual(a, b message) bool {
	return bytes.Equal(a.append(nil), b.append(nil)) && a.tagged == b.tagged
}

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		enc := m.append(nil)
		if len(enc) > maxFrameSize || m.typ != msgWelcome && len(enc) > maxSmallFrameSize {
			t.Errorf("%s of %d bytes exceeds its frame limit", msgName(m.typ), len(enc))
		}
		got, err := decodeMessage(enc)
		if err != nil {
			t.Fatalf("%s: %v", msgName(m.typ), err)
		}
		if !messagesEqual(got, m) {
			t.Errorf("%s: round trip gives %+v", msgName(m.typ), got)
		}
		var buf bytes.Buffer
		if err := wire.WriteFrame(&buf, enc); err != nil {
			t.Fatal(err)
		}
		body, err := wire.ReadFrame(bufio.NewReader(&buf), maxFrameSize, ErrProtocol)
		if err != nil || !bytes.Equal(body, enc) {
			t.Errorf("%s: frame round trip: %v", msgName(m.typ), err)
		}
	}
}

func TestDecodeMessageRejects(t *testing.T) {
	var tag [macLen]byte
	for _, tc := range []struct {
		name    string
		in      []byte
		wantMsg string
	}{
		{"empty", nil, "message type"},
		{"unknown type", []byte{0}, "unknown message type 0"},
		{"unknown type 200", []byte{200, 1}, "unknown message type 200"},
		{"short hello", append([]byte{msgHello}, make([]byte, sidLen+pointLen-1)...), "point Ya"},
		{"long hello", append([]byte{msgHello}, make([]byte, sidLen+pointLen+1)...), "trailing"},
		{"short reply", append([]byte{msgReply}, make([]byte, 2*pointLen-1)...), "MAC_B"},
		{"short confirm", []byte{msgConfirm, 1}, "MAC_A"},
		{"request without tag", wire.AppendLenBytes([]byte{msgRequest}, []byte("laptop")), "request tag"},
		{"long name", append(wire.AppendLenBytes([]byte{msgRequest}, bytes.Repeat([]byte("a"), MaxNameLen+1)), tag[:]...), "at most 64"},
		{"non-minimal length", append([]byte{msgRequest, 0x86, 0x00}, make([]byte, 6+macLen)...), "device name length"},
		{"name length past the end", []byte{msgRequest, 10, 'a'}, "device name"},
		{"huge welcome", append([]byte{msgWelcome}, 0x81, 0x80, 0x04), "at most 65536"},
		{"welcome without tag", wire.AppendLenBytes([]byte{msgWelcome}, []byte("x")), "welcome tag"},
		{"refusal with a short tag", append(wire.AppendLenBytes([]byte{msgRefusal, 1}, []byte("x")), 1, 2, 3), "trailing"},
		{"long reason", wire.AppendLenBytes([]byte{msgRefusal, 1}, make([]byte, maxReasonLen+1)), "at most 1024"},
		{"ack without tag", []byte{msgAck}, "ack tag"},
		{"ack with extra", append(append([]byte{msgAck}, tag[:]...), 0), "trailing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeMessage(tc.in)
			if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("decodeMessage: %v; want ErrProtocol mentioning %q", err, tc.wantMsg)
			}
		})
	}
}
