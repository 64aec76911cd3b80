package pairing

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/seedfleet/seedfleet/internal/wire"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"

	"github.com/seedfleet/seedfleet/seednode/identity"
)

// fixedPeer returns the peer ID of a key derived from seed byte i.
func fixedPeer(t testing.TB, i byte) peer.ID {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = i
	id, err := identity.PeerID(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func addrs(t testing.TB, ss ...string) []ma.Multiaddr {
	t.Helper()
	out := make([]ma.Multiaddr, 0, len(ss))
	for _, s := range ss {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

func manyAddrs(t testing.TB, n int) []ma.Multiaddr {
	ss := make([]string, n)
	for i := range ss {
		ss[i] = fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 7000+i)
	}
	return addrs(t, ss...)
}

func ticketsEqual(a, b Ticket) bool {
	return a.Peer.ID == b.Peer.ID && a.Code == b.Code &&
		slices.EqualFunc(a.Peer.Addrs, b.Peer.Addrs, func(x, y ma.Multiaddr) bool { return x.Equal(y) })
}

func sampleTickets(t testing.TB) []Ticket {
	id := fixedPeer(t, 1)
	return []Ticket{
		{Peer: peer.AddrInfo{ID: id}},
		{Peer: peer.AddrInfo{ID: id}, Code: "ABCDEFGH"},
		{Peer: peer.AddrInfo{ID: id, Addrs: addrs(t, "/ip4/192.168.1.20/tcp/7400", "/ip6/::1/udp/7400/quic-v1")}},
		{Peer: peer.AddrInfo{ID: fixedPeer(t, 2), Addrs: addrs(t,
			"/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit")}, Code: "ZZZZ0000"},
		{Peer: peer.AddrInfo{ID: id, Addrs: manyAddrs(t, MaxTicketAddrs)}, Code: "00000000"},
		{Peer: peer.AddrInfo{ID: id, Addrs: addrs(t, "/dns/"+strings.Repeat("a", maxAddrLen-8)+"/tcp/1")}},
	}
}

func TestTicketRoundTrip(t *testing.T) {
	for i, tk := range sampleTickets(t) {
		if err := tk.Validate(); err != nil {
			t.Fatalf("ticket %d: %v", i, err)
		}
		s := tk.String()
		if !strings.HasPrefix(s, TicketPrefix) || s != strings.ToLower(s) {
			t.Errorf("ticket %d text %q", i, s)
		}
		got, err := ParseTicket(s)
		if err != nil {
			t.Fatalf("ticket %d: ParseTicket: %v", i, err)
		}
		if !ticketsEqual(got, tk) {
			t.Errorf("ticket %d: round trip gives %+v, want %+v", i, got, tk)
		}
		// Copying damage that is tolerated: case and whitespace.
		var wrapped strings.Builder
		for j, r := range strings.ToUpper(s) {
			if j > 0 && j%20 == 0 {
				wrapped.WriteString("\n  ")
			}
			wrapped.WriteRune(r)
		}
		if got, err := ParseTicket(wrapped.String()); err != nil || !ticketsEqual(got, tk) {
			t.Errorf("ticket %d: wrapped upper-case text: %+v, %v", i, got, err)
		}
	}
}

func TestTicketCodeOptional(t *testing.T) {
	tk := Ticket{Peer: peer.AddrInfo{ID: fixedPeer(t, 1)}, Code: "abcd-efgh"}
	got, err := ParseTicket(tk.String())
	if err != nil || got.Code != "ABCDEFGH" {
		t.Fatalf("ticket with a code as typed: %q, %v", got.Code, err)
	}
	printed := Ticket{Peer: tk.Peer}.String()
	if got, err := ParseTicket(printed); err != nil || got.Code != "" {
		t.Fatalf("printed ticket: code %q, %v", got.Code, err)
	}
	if len(printed) >= len(tk.String()) {
		t.Errorf("a ticket without a code is not shorter")
	}
}

func TestTicketRejects(t *testing.T) {
	id := fixedPeer(t, 1)
	good := Ticket{Peer: peer.AddrInfo{ID: id, Addrs: addrs(t, "/ip4/127.0.0.1/tcp/1")}, Code: "ABCDEFGH"}.String()
	flip := func(s string, i int) string {
		c := byte('a')
		if s[i] == 'a' {
			c = 'b'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	// sealed returns the text of a payload with a correct checksum.
	sealed := func(payload []byte) string {
		sum := ticketChecksum(payload)
		return TicketPrefix + b32.EncodeToString(append(payload, sum[:]...))
	}
	payload := func(idb []byte, addrBytes [][]byte, code []byte) []byte {
		b := wire.AppendLenBytes([]byte{ticketVersion}, idb)
		b = append(b, byte(len(addrBytes)))
		for _, a := range addrBytes {
			b = wire.AppendLenBytes(b, a)
		}
		return wire.AppendLenBytes(b, code)
	}
	a1 := addrs(t, "/ip4/127.0.0.1/tcp/1")[0].Bytes()
	hashed, err := mh.Sum([]byte("rsa"), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, in, wantMsg string
	}{
		{"empty", "", "empty"},
		{"blob ticket", "blobaaaa", "not a pairing ticket"},
		{"other prefix", "hello", "starts with"},
		{"bad character", good[:10] + "1" + good[11:], `'1' at position 11`},
		{"non-ASCII", good[:10] + "é" + good[11:], "non-ASCII"},
		{"one character changed", flip(good, 20), ""},
		{"last character changed", flip(good, len(good)-1), ""},
		{"truncated", good[:len(good)-8], ""},
		{"nothing after prefix", TicketPrefix, "truncated"},
		{"extra character", good + "a", ""},
		{"too long", TicketPrefix + strings.Repeat("a", maxTicketText), "too long"},
		{"version 2", sealed(append([]byte{2}, payload([]byte(id), nil, nil)[1:]...)), "version 2"},
		{"trailing bytes", sealed(append(payload([]byte(id), nil, nil), 0)), "trailing"},
		{"hashed peer ID", sealed(payload(hashed, nil, nil)), "not a device's"},
		{"empty peer ID", sealed(payload(nil, nil, nil)), "empty peer ID"},
		{"too many addresses", sealed(payload([]byte(id), slices.Repeat([][]byte{a1}, MaxTicketAddrs+1), nil)), "at most 16"},
		{"repeated address", sealed(payload([]byte(id), [][]byte{a1, a1}, nil)), "twice"},
		{"bad multiaddr", sealed(payload([]byte(id), [][]byte{{0xff, 0xff}}, nil)), "invalid multiaddr"},
		{"empty multiaddr", sealed(payload([]byte(id), [][]byte{{}}, nil)), "empty multiaddr"},
		{"short code", sealed(payload([]byte(id), nil, []byte{1, 2, 3})), "code is 3 bytes"},
		{"long code", sealed(payload([]byte(id), nil, []byte{1, 2, 3, 4, 5, 6})), "code is 6 bytes"},
		{"cut in an address", sealed(payload([]byte(id), [][]byte{a1}, nil)[:len(id)+4]), "truncated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTicket(tc.in)
			if !errors.Is(err, ErrInvalidTicket) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("ParseTicket: %v; want ErrInvalidTicket mentioning %q", err, tc.wantMsg)
			}
			if strings.Contains(err.Error(), "ABCD") {
				t.Errorf("error quotes the code: %v", err)
			}
		})
	}
}

func TestTicketValidate(t *testing.T) {
	id := fixedPeer(t, 1)
	hashed, err := mh.Sum([]byte("rsa"), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	a := addrs(t, "/ip4/127.0.0.1/tcp/1")
	for _, tc := range []struct {
		name string
		tk   Ticket
	}{
		{"no peer", Ticket{}},
		{"hashed peer ID", Ticket{Peer: peer.AddrInfo{ID: peer.ID(hashed)}}},
		{"too many addresses", Ticket{Peer: peer.AddrInfo{ID: id, Addrs: manyAddrs(t, MaxTicketAddrs+1)}}},
		{"repeated address", Ticket{Peer: peer.AddrInfo{ID: id, Addrs: append(a, a...)}}},
		{"nil address", Ticket{Peer: peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{nil}}}},
		{"bad code", Ticket{Peer: peer.AddrInfo{ID: id}, Code: "ABCDEFGU"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.tk.Validate(); !errors.Is(err, ErrInvalidTicket) {
				t.Fatalf("Validate: %v, want ErrInvalidTicket", err)
			}
			// String does not validate, but what it gives does not parse.
			if _, err := ParseTicket(tc.tk.String()); !errors.Is(err, ErrInvalidTicket) {
				t.Fatalf("ParseTicket(String()) of an invalid ticket: %v", err)
			}
		})
	}
}
