package ticket

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/seednode/fleet"
)

func sampleFleet(t testing.TB, peers int) FleetTicket {
	return FleetTicket{Name: "seeds.example-foundation", Admission: fleet.Invite, Replicas: 3, Pods: 5,
		Peers: samplePeers(t, peers)}
}

func TestFleetTicketRoundTrip(t *testing.T) {
	tk := sampleFleet(t, 3)
	text, err := tk.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(text), FleetPrefix) {
		t.Fatalf("text %q lacks the %q prefix", text, FleetPrefix)
	}
	got, err := ParseFleetTicket(string(text))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(tk) {
		t.Fatalf("round trip changed the ticket:\n%+v\n%+v", got, tk)
	}
	if v, err := Parse(strings.ToUpper(string(text))); err != nil || !v.(FleetTicket).Equal(tk) {
		t.Fatalf("Parse: %v", err)
	}
	// A fleet ticket is not a vault ticket.
	if _, err := ParseDocTicket(string(text)); err == nil || !strings.Contains(err.Error(), `"fleet" ticket`) {
		t.Fatalf("ParseDocTicket of a fleet ticket: %v", err)
	}
}

func TestFleetTicketRefused(t *testing.T) {
	tests := []struct {
		name   string
		change func(*FleetTicket)
		want   string
	}{
		{"no name", func(f *FleetTicket) { f.Name = "" }, "fleet name must be"},
		{"control character", func(f *FleetTicket) { f.Name = "a\nb" }, "control character"},
		{"bad policy", func(f *FleetTicket) { f.Admission = "Public" }, "unknown admission policy"},
		{"no replicas", func(f *FleetTicket) { f.Replicas = 0 }, "replicas 0 outside"},
		{"too many replicas", func(f *FleetTicket) { f.Replicas = MaxFleetReplicas + 1 }, "replicas 17 outside"},
		{"more seeds than pods", func(f *FleetTicket) { f.Pods = 2 }, "3 seeds listed in a fleet of 2 pods"},
		{"no seeds", func(f *FleetTicket) { f.Peers = nil }, "at least one seed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk := sampleFleet(t, 3)
			tt.change(&tk)
			_, err := tk.MarshalText()
			if err == nil || !errors.Is(err, ErrInvalidTicket) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("MarshalText: %v, want an invalid ticket error with %q", err, tt.want)
			}
			// The decoder refuses what the encoder would: seal the payload as is.
			if _, err := ParseFleetTicket(tk.String()); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseFleetTicket: %v, want %q", err, tt.want)
			}
		})
	}
}

func TestInviteTicket(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	otherPub, otherKey, _ := ed25519.GenerateKey(nil)
	now := time.Unix(1_800_000_000, 0)
	id := [InviteIDLen]byte{1, 2, 3}
	inv, err := NewInviteTicket("seeds.example", id, now.Add(7*24*time.Hour), 1, key)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseInviteTicket(inv.String())
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	if err := parsed.Verify("seeds.example", pub, now); err != nil {
		t.Fatalf("a fresh invite does not verify: %v", err)
	}
	if parsed.ID != id || parsed.Uses != 1 || !parsed.NotAfter.Equal(inv.NotAfter) {
		t.Fatalf("parsed %+v, made %+v", parsed, inv)
	}

	checks := []struct {
		name  string
		fleet string
		key   ed25519.PublicKey
		at    time.Time
		tk    func() InviteTicket
		want  string
	}{
		{"other fleet", "other", pub, now, func() InviteTicket { return parsed }, `for fleet "seeds.example"`},
		{"other key", "seeds.example", otherPub, now, func() InviteTicket { return parsed }, "not signed by this fleet's key"},
		{"expired", "seeds.example", pub, now.Add(8 * 24 * time.Hour), func() InviteTicket { return parsed }, "expired"},
		{"more uses", "seeds.example", pub, now, func() InviteTicket { c := parsed; c.Uses = 100; return c }, "signature is not valid"},
		{"later expiry", "seeds.example", pub, now, func() InviteTicket { c := parsed; c.NotAfter = c.NotAfter.Add(time.Hour); return c }, "signature is not valid"},
		{"signed by another key", "seeds.example", pub, now, func() InviteTicket {
			c, _ := NewInviteTicket("seeds.example", id, now.Add(time.Hour), 1, otherKey)
			c.FleetKey = pub
			return c
		}, "signature is not valid"},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			err := c.tk().Verify(c.fleet, c.key, c.at)
			if err == nil || !errors.Is(err, ErrInvalidTicket) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Verify: %v, want %q", err, c.want)
			}
		})
	}
	if _, err := NewInviteTicket("seeds.example", id, now, 0, key); err == nil {
		t.Fatal("an invite for no admission was made")
	}
}

func FuzzParseFleetTicket(f *testing.F) {
	fuzzSeeds(f, FleetPrefix, []string{sampleFleet(f, 1).String(), sampleFleet(f, 3).String()})
	f.Fuzz(func(t *testing.T, s string) {
		checkCanonical(t, FleetPrefix, s, func(in string) (fmt.Stringer, error) { return ParseFleetTicket(in) })
	})
}

func FuzzParseInviteTicket(f *testing.F) {
	_, key, _ := ed25519.GenerateKey(nil)
	inv, err := NewInviteTicket("seeds.example", [InviteIDLen]byte{9}, time.Unix(1_800_000_000, 0), 3, key)
	if err != nil {
		f.Fatal(err)
	}
	fuzzSeeds(f, InvitePrefix, []string{inv.String()})
	f.Fuzz(func(t *testing.T, s string) {
		checkCanonical(t, InvitePrefix, s, func(in string) (fmt.Stringer, error) { return ParseInviteTicket(in) })
	})
}

// checkCanonical parses s as text and as a sealed payload: each is refused
// with ErrInvalidTicket, or accepted and then re-encoded to itself.
func checkCanonical(t *testing.T, prefix, s string, parse func(string) (fmt.Stringer, error)) {
	for _, in := range []string{s, seal(prefix, []byte(s))} {
		if len(in) > MaxTextLen {
			continue
		}
		tk, err := parse(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidTicket) {
				t.Fatalf("error %v does not wrap ErrInvalidTicket", err)
			}
			continue
		}
		if canon := tk.String(); canon != normalize(in) {
			t.Fatalf("accepted text is not canonical:\n  in %q\n out %q", in, canon)
		}
	}
}
