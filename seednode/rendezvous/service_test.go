package rendezvous

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/seedfleet/seedfleet/internal/p2ptest"
	"github.com/seedfleet/seedfleet/internal/wire"
)

// refusal asserts that err is a seed's refusal with code and a reason that
// mentions want.
func refusal(t *testing.T, err error, code Code, want string) {
	t.Helper()
	var re *RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not a *RefusedError (want %s: %q)", err, code, want)
	}
	if re.Code != code {
		t.Errorf("refusal code %s, want %s (reason %q)", re.Code, code, re.Reason)
	}
	if !strings.Contains(re.Reason, want) {
		t.Errorf("reason %q does not mention %q", re.Reason, want)
	}
}

// contexts returns the contexts of recs, in order.
func contexts(recs []Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Context)
	}
	return out
}

func sameStrings(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// TestRegisterLookupRoundTrip: two devices of one agent register on a seed
// and each finds the other, with its addresses, signed.
func TestRegisterLookupRoundTrip(t *testing.T) {
	f := newSeed(t)
	agent := newAgent(t)
	laptop, phone := f.deviceOf(t, agent), f.deviceOf(t, agent)
	ctx := testCtx(t)

	now := f.clock.Now()
	lr := laptop.record(t, agent, "laptop", now.Add(-time.Second), "/ip4/192.168.1.10/tcp/7400", "/ip4/192.168.1.10/udp/7400/quic-v1")
	pr := phone.record(t, agent, "phone", now, "/ip4/10.0.0.7/tcp/4001")
	reg, err := RegisterDetailed(ctx, laptop.h, f.h.ID(), lr)
	if err != nil {
		t.Fatalf("laptop registers: %v", err)
	}
	// The seed says how long it keeps the record, so the device knows when
	// to register again.
	if reg.TTL != DefaultTTL || !reg.Expires.Equal(lr.Time().Add(DefaultTTL)) || !reg.RenewAt(lr).Equal(lr.Time().Add(DefaultTTL/2)) {
		t.Fatalf("registration %+v (renew at %s), want the default TTL %s from the record's time %s", reg, reg.RenewAt(lr), DefaultTTL, lr.Time())
	}
	if err := Register(ctx, phone.h, f.h.ID(), pr); err != nil {
		t.Fatalf("phone registers: %v", err)
	}
	// Another agent's device, to show lookups are per agent.
	other := newAgent(t)
	od := f.deviceOf(t, other)
	if err := Register(ctx, od.h, f.h.ID(), od.record(t, other, "desktop", now)); err != nil {
		t.Fatal(err)
	}

	for _, asker := range []device{laptop, phone} {
		res, err := LookupDetailed(ctx, asker.h, f.h.ID(), agent)
		if err != nil {
			t.Fatalf("lookup: %v", err)
		}
		if res.Dropped != 0 {
			t.Errorf("dropped %d records from an honest seed: %s", res.Dropped, res.DropReason)
		}
		// Newest first.
		if got := contexts(res.Records); !sameStrings(got, []string{"phone", "laptop"}) {
			t.Fatalf("lookup returned contexts %v, want [phone laptop]", got)
		}
		for i, want := range []Record{pr, lr} {
			got := res.Records[i]
			if err := got.Verify(); err != nil {
				t.Errorf("returned record does not verify: %v", err)
			}
			a, _ := got.MarshalBinary()
			b, _ := want.MarshalBinary()
			if !bytes.Equal(a, b) {
				t.Errorf("record %d differs from the one registered:\n got %+v\nwant %+v", i, got, want)
			}
			info, err := got.AddrInfo()
			if err != nil {
				t.Fatal(err)
			}
			wantID := laptop.h.ID()
			if i == 0 {
				wantID = phone.h.ID()
			}
			if info.ID != wantID {
				t.Errorf("record %d is of peer %s, want %s", i, info.ID, wantID)
			}
		}
	}
	if st := f.svc.Stats(); st.Agents != 2 || st.Records != 3 {
		t.Errorf("Stats = %+v, want 2 agents and 3 records", st)
	}
	if got := metric(t, f.reg, "seedfleet_rendezvous_registrations_total", ""); got != 3 {
		t.Errorf("registrations metric = %v, want 3", got)
	}
	if got := metric(t, f.reg, "seedfleet_rendezvous_records", ""); got != 3 {
		t.Errorf("records metric = %v, want 3", got)
	}
	if got := metric(t, f.reg, "seedfleet_rendezvous_lookups_total", ""); got != 2 {
		t.Errorf("lookups metric = %v, want 2", got)
	}
}

// TestOnlyAuthorizedDevices: a device the authorizer does not list is
// refused with the authorizer's reason and never appears in lookups; a
// device revoked after registering disappears from lookups at once; only
// the agent's devices may look its records up, unless lookups are public.
func TestOnlyAuthorizedDevices(t *testing.T) {
	f := newSeed(t)
	agent := newAgent(t)
	laptop, phone := f.deviceOf(t, agent), f.deviceOf(t, agent)
	stranger := newDevice(t, f.h) // not in the agent document
	ctx := testCtx(t)
	now := f.clock.Now()

	for _, d := range []struct {
		dev device
		ctx string
	}{{laptop, "laptop"}, {phone, "phone"}} {
		if err := Register(ctx, d.dev.h, f.h.ID(), d.dev.record(t, agent, d.ctx, now)); err != nil {
			t.Fatalf("%s: %v", d.ctx, err)
		}
	}
	err := Register(ctx, stranger.h, f.h.ID(), stranger.record(t, agent, "intruder", now))
	refusal(t, err, CodeUnauthorized, denyText)
	if got := metric(t, f.reg, "seedfleet_rendezvous_refusals_total", "unauthorized"); got != 1 {
		t.Errorf("unauthorized refusals metric = %v, want 1", got)
	}

	recs, err := Lookup(ctx, laptop.h, f.h.ID(), agent)
	if err != nil {
		t.Fatal(err)
	}
	if got := contexts(recs); !sameStrings(got, []string{"laptop", "phone"}) && !sameStrings(got, []string{"phone", "laptop"}) {
		t.Fatalf("lookup = %v, want laptop and phone only", got)
	}

	// The stranger may not look the agent up either.
	_, err = Lookup(ctx, stranger.h, f.h.ID(), agent)
	refusal(t, err, CodeUnauthorized, denyText)

	// Revoking the phone hides its record before it expires.
	f.auth.revoke(agent, phone.pub())
	recs, err = Lookup(ctx, laptop.h, f.h.ID(), agent)
	if err != nil {
		t.Fatal(err)
	}
	if got := contexts(recs); !sameStrings(got, []string{"laptop"}) {
		t.Fatalf("after revoking the phone, lookup = %v, want [laptop]", got)
	}

	// With public lookups the stranger gets the (authorized) records.
	pub := newSeed(t, WithPublicLookup())
	pub.auth.allow(agent, laptop.pub())
	laptop.h.Peerstore().AddAddrs(pub.h.ID(), pub.h.Addrs(), time.Hour)
	stranger.h.Peerstore().AddAddrs(pub.h.ID(), pub.h.Addrs(), time.Hour)
	if err := Register(ctx, laptop.h, pub.h.ID(), laptop.record(t, agent, "laptop", pub.clock.Now())); err != nil {
		t.Fatal(err)
	}
	recs, err = Lookup(ctx, stranger.h, pub.h.ID(), agent)
	if err != nil {
		t.Fatalf("public lookup: %v", err)
	}
	if got := contexts(recs); !sameStrings(got, []string{"laptop"}) {
		t.Fatalf("public lookup = %v, want [laptop]", got)
	}
}

// TestNilAuthorizerRefusesAll: a seed without an authorizer stores nothing.
func TestNilAuthorizerRefusesAll(t *testing.T) {
	seed := p2ptest.NewHost(t, true)
	svc, err := New(seed, nil, WithLogger(quietLog))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	agent := newAgent(t)
	d := newDevice(t, seed)
	err = Register(testCtx(t), d.h, seed.ID(), d.record(t, agent, "laptop", time.Now()))
	refusal(t, err, CodeUnauthorized, "no authorizer")
	if st := svc.Stats(); st.Records != 0 {
		t.Fatalf("stored %d records", st.Records)
	}
}

// TestRegisterRefusals: records a seed must refuse, each with a clear
// reason and nothing stored; and the boundary cases it must accept.
func TestRegisterRefusals(t *testing.T) {
	f := newSeed(t)
	agent := newAgent(t)
	dev := f.deviceOf(t, agent)
	other := f.deviceOf(t, agent) // authorized too: only "not self" stops it
	now := f.clock.Now()
	good := func() Record { return dev.record(t, agent, "laptop", now, "/ip4/127.0.0.1/tcp/1") }

	manyAddrs := good()
	for len(manyAddrs.Addrs) <= MaxAddrs {
		manyAddrs.Addrs = append(manyAddrs.Addrs, mustAddr(t, "/ip4/127.0.0.1/tcp/2"))
	}
	longAddr := good()
	longAddr.Addrs = []ma.Multiaddr{mustAddr(t, "/dns/"+strings.Repeat("a", MaxAddrLen-5)+"/tcp/1")}
	badDID := func(did string) Record { r := good(); r.AgentDID = did; return forge(r, dev.key) }
	tampered := good()
	tampered.Addrs = []ma.Multiaddr{mustAddr(t, "/ip4/6.6.6.6/tcp/1")} // after signing
	forgedSig := good()
	forgedSig.Signature[0] ^= 1
	signedByOther := good()
	signedByOther = forge(signedByOther, other.key) // claims dev's key, signed by other's

	oversized := frameOf(append([]byte{reqRegister}, make([]byte, MaxRequestSize)...))
	trailing := frameOf(append((&request{kind: reqRegister, record: good()}).append(nil), 0))

	tests := []struct {
		name  string
		from  device
		frame []byte
		code  Code // 0: accepted
		want  string
	}{
		{"forged signature", dev, registerFrame(forgedSig), CodeBadSignature, "signature does not verify"},
		{"address changed after signing", dev, registerFrame(tampered), CodeBadSignature, "signature does not verify"},
		{"signed by another key", dev, registerFrame(signedByOther), CodeBadSignature, "signature does not verify"},
		{"another device's record", other, registerFrame(good()), CodeNotSelf, "may register only its own record"},
		{"future timestamp", dev, registerFrame(dev.record(t, agent, "laptop", now.Add(DefaultMaxClockSkew+time.Minute))), CodeFuture, "ahead of this seed's clock"},
		{"expired timestamp", dev, registerFrame(dev.record(t, agent, "laptop", now.Add(-DefaultTTL-time.Second))), CodeExpired, "older than this seed's record TTL"},
		{"expired exactly", dev, registerFrame(dev.record(t, agent, "laptop", now.Add(-DefaultTTL))), CodeExpired, "older than this seed's record TTL"},
		{"did:web", dev, registerFrame(badDID("did:web:example.com")), CodeInvalidRecord, "does not start with \"did:key:\""},
		{"DID with fragment", dev, registerFrame(badDID(agent + "#laptop")), CodeInvalidRecord, "has a fragment"},
		{"DID of a non-Ed25519 key", dev, registerFrame(badDID("did:key:z6LSeu9HkTHSfLLeUs2nnzUSNedgDUevfNQgQjQC23ZCit6F")), CodeInvalidRecord, "x25519"},
		{"bad base58 DID", dev, registerFrame(badDID("did:key:z6Mk0TBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp")), CodeInvalidRecord, "base58btc"},
		{"too many addresses", dev, registerFrame(forge(manyAddrs, dev.key)), CodeInvalidRecord, "17 addresses, max 16"},
		{"address too long", dev, registerFrame(forge(longAddr, dev.key)), CodeInvalidRecord, "257 bytes, at most 256"},
		{"oversized request", dev, oversized, CodeTooLarge, "exceeds the 16384-byte limit"},
		{"trailing bytes", dev, trailing, CodeInvalidRecord, "trailing"},
		{"unknown request type", dev, frameOf([]byte{7, 1, 2, 3}), CodeMalformed, "unknown request type 7"},
		{"empty message", dev, []byte{0}, CodeMalformed, "empty frame"},
		// Boundaries that must be accepted (each in turn newer than the
		// last, so none is a replay).
		{"timestamp within the skew", dev, registerFrame(dev.record(t, agent, "laptop", now.Add(-DefaultTTL+time.Second))), 0, ""},
		{"timestamp at the skew", dev, registerFrame(dev.record(t, agent, "laptop", now.Add(DefaultMaxClockSkew))), 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.svc.Stats().Records
			resp, err := sendRaw(t, tc.from.h, f.h.ID(), tc.frame, reqRegister)
			if err != nil {
				t.Fatalf("no response: %v", err)
			}
			if tc.code == 0 {
				if resp.refused != nil {
					t.Fatalf("refused: %v", resp.refused)
				}
				if f.svc.Stats().Records != 1 {
					t.Fatalf("holds %d records, want 1", f.svc.Stats().Records)
				}
				return
			}
			if resp.refused == nil {
				t.Fatal("accepted")
			}
			refusal(t, resp.refused, tc.code, tc.want)
			if after := f.svc.Stats().Records; after != before {
				t.Fatalf("records held went from %d to %d", before, after)
			}
		})
	}
	// The refusals left nothing behind but the accepted boundary record.
	recs, err := Lookup(testCtx(t), dev.h, f.h.ID(), agent)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Timestamp != micros(now.Add(DefaultMaxClockSkew)) {
		t.Fatalf("lookup after the refusals: %+v", recs)
	}
	if got := metric(t, f.reg, "seedfleet_rendezvous_refusals_total", "bad_signature"); got != 3 {
		t.Errorf("bad_signature refusals = %v, want 3", got)
	}
	if got := metric(t, f.reg, "seedfleet_rendezvous_refusals_total", "too_large"); got != 1 {
		t.Errorf("too_large refusals = %v, want 1", got)
	}
}

// TestReplay: a record replaces only older records of the same device; a
// retry of the held record is accepted without change.
func TestReplay(t *testing.T) {
	f := newSeed(t)
	agent := newAgent(t)
	dev := f.deviceOf(t, agent)
	ctx := testCtx(t)
	now := f.clock.Now()
	t1 := dev.record(t, agent, "laptop", now.Add(-2*time.Minute), "/ip4/127.0.0.1/tcp/1")
	t2 := dev.record(t, agent, "laptop", now.Add(-time.Minute), "/ip4/127.0.0.1/tcp/2")
	t2b := dev.record(t, agent, "laptop", now.Add(-time.Minute), "/ip4/127.0.0.1/tcp/99")
	t3 := dev.record(t, agent, "laptop", now, "/ip4/127.0.0.1/tcp/3")

	steps := []struct {
		name string
		rec  Record
		code Code
		port string // the port of the record held afterwards
	}{
		{"first", t2, 0, "2"},
		{"retry of the same record", t2, 0, "2"},
		{"older record", t1, CodeReplay, "2"},
		{"same time, other content", t2b, CodeReplay, "2"},
		{"newer record", t3, 0, "3"},
		{"the replaced record again", t2, CodeReplay, "3"},
	}
	for _, s := range steps {
		err := Register(ctx, dev.h, f.h.ID(), s.rec)
		if s.code == 0 && err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if s.code != 0 {
			refusal(t, err, s.code, "not older than this one")
		}
		recs, err := Lookup(ctx, dev.h, f.h.ID(), agent)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 {
			t.Fatalf("%s: lookup returned %d records, want 1", s.name, len(recs))
		}
		if port, _ := recs[0].Addrs[0].ValueForProtocol(ma.P_TCP); port != s.port {
			t.Fatalf("%s: held record has port %s, want %s", s.name, port, s.port)
		}
	}
	if got := metric(t, f.reg, "seedfleet_rendezvous_refusals_total", "replay"); got != 3 {
		t.Errorf("replay refusals = %v, want 3", got)
	}
}

// TestLimits: the per-agent cap (a newer record of a held device still
// replaces; expired records free their slots) and the agent cap.
func TestLimits(t *testing.T) {
	t.Run("per agent", func(t *testing.T) {
		f := newSeed(t, WithMaxRecordsPerAgent(2))
		agent := newAgent(t)
		a, b, c := f.deviceOf(t, agent), f.deviceOf(t, agent), f.deviceOf(t, agent)
		ctx := testCtx(t)
		t0 := f.clock.Now()
		for _, d := range []device{a, b} {
			if err := Register(ctx, d.h, f.h.ID(), d.record(t, agent, "d", t0)); err != nil {
				t.Fatal(err)
			}
		}
		err := Register(ctx, c.h, f.h.ID(), c.record(t, agent, "c", t0))
		refusal(t, err, CodeAgentFull, "already has 2 device records")

		// A held device may still refresh its record.
		f.clock.Advance(DefaultTTL / 2)
		if err := Register(ctx, a.h, f.h.ID(), a.record(t, agent, "d", f.clock.Now())); err != nil {
			t.Fatalf("refresh at the cap: %v", err)
		}
		err = Register(ctx, c.h, f.h.ID(), c.record(t, agent, "c", f.clock.Now()))
		refusal(t, err, CodeAgentFull, "already has 2 device records")

		// b's record expires: its slot goes to c.
		f.clock.Advance(DefaultTTL/2 + time.Second)
		if err := Register(ctx, c.h, f.h.ID(), c.record(t, agent, "c", f.clock.Now())); err != nil {
			t.Fatalf("after an expiry: %v", err)
		}
		recs, err := Lookup(ctx, a.h, f.h.ID(), agent)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 2 || !recs[0].Device.Equal(c.pub()) || !recs[1].Device.Equal(a.pub()) {
			t.Fatalf("lookup = %v, want c then a", recs)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		// Room for one small record (165 bytes and the overhead), not two.
		f := newSeed(t, WithMaxRecordBytes(400))
		ctx := testCtx(t)
		agent1, agent2 := newAgent(t), newAgent(t)
		d1, d2 := f.deviceOf(t, agent1), f.deviceOf(t, agent2)
		if err := Register(ctx, d1.h, f.h.ID(), d1.record(t, agent1, "d", f.clock.Now())); err != nil {
			t.Fatal(err)
		}
		err := Register(ctx, d2.h, f.h.ID(), d2.record(t, agent2, "d", f.clock.Now()))
		refusal(t, err, CodeSeedFull, "bytes of records, the most it keeps (400)")
		// A refresh of the same size fits; a larger one does not.
		f.clock.Advance(time.Minute)
		if err := Register(ctx, d1.h, f.h.ID(), d1.record(t, agent1, "e", f.clock.Now())); err != nil {
			t.Fatalf("same-size refresh: %v", err)
		}
		err = Register(ctx, d1.h, f.h.ID(), d1.record(t, agent1, "e", f.clock.Now().Add(time.Second), "/ip4/127.0.0.1/tcp/1/ws"))
		if err != nil {
			t.Fatalf("slightly larger refresh: %v", err)
		}
		err = Register(ctx, d1.h, f.h.ID(), d1.record(t, agent1, "e", f.clock.Now().Add(2*time.Second), "/dns/"+strings.Repeat("a", 200)+"/tcp/1"))
		refusal(t, err, CodeSeedFull, "bytes of records")
		held := d1.record(t, agent1, "e", f.clock.Now(), "/ip4/127.0.0.1/tcp/1/ws")
		if st := f.svc.Stats(); st.Agents != 1 || st.Records != 1 || st.Bytes != int64(held.encodedLen()+heldOverhead) {
			t.Fatalf("Stats = %+v, want 1 agent, 1 record of %d bytes", st, held.encodedLen()+heldOverhead)
		}
		// Expiry frees the bytes.
		f.clock.Advance(DefaultTTL + time.Minute)
		r2 := d2.record(t, agent2, "d", f.clock.Now())
		if err := Register(ctx, d2.h, f.h.ID(), r2); err != nil {
			t.Fatalf("after agent 1's record expired: %v", err)
		}
		if st := f.svc.Stats(); st.Agents != 1 || st.Records != 1 || st.Bytes != int64(r2.encodedLen()+heldOverhead) {
			t.Fatalf("Stats = %+v, want 1 agent, 1 record of %d bytes", st, r2.encodedLen()+heldOverhead)
		}
	})
	t.Run("agents", func(t *testing.T) {
		f := newSeed(t, WithMaxAgents(1))
		ctx := testCtx(t)
		agent1, agent2 := newAgent(t), newAgent(t)
		d1, d2 := f.deviceOf(t, agent1), f.deviceOf(t, agent2)
		if err := Register(ctx, d1.h, f.h.ID(), d1.record(t, agent1, "d", f.clock.Now())); err != nil {
			t.Fatal(err)
		}
		err := Register(ctx, d2.h, f.h.ID(), d2.record(t, agent2, "d", f.clock.Now()))
		refusal(t, err, CodeSeedFull, "holds records of 1 agents")
		// Another device of a held agent is not a new agent.
		d1b := f.deviceOf(t, agent1)
		if err := Register(ctx, d1b.h, f.h.ID(), d1b.record(t, agent1, "e", f.clock.Now())); err != nil {
			t.Fatalf("second device of a held agent: %v", err)
		}
		f.clock.Advance(DefaultTTL + time.Second)
		if err := Register(ctx, d2.h, f.h.ID(), d2.record(t, agent2, "d", f.clock.Now())); err != nil {
			t.Fatalf("after agent 1's records expired: %v", err)
		}
		if st := f.svc.Stats(); st.Agents != 1 || st.Records != 1 {
			t.Fatalf("Stats = %+v, want 1 agent, 1 record", st)
		}
	})
}

// TestExpiry: records vanish a TTL after their timestamp, on access and
// through the background sweep.
func TestExpiry(t *testing.T) {
	const ttl = 30 * time.Minute
	f := newSeed(t, WithTTL(ttl), WithSweepInterval(5*time.Millisecond))
	agent := newAgent(t)
	a, b := f.deviceOf(t, agent), f.deviceOf(t, agent)
	ctx := testCtx(t)
	t0 := f.clock.Now()
	if err := Register(ctx, a.h, f.h.ID(), a.record(t, agent, "a", t0)); err != nil {
		t.Fatal(err)
	}
	if err := Register(ctx, b.h, f.h.ID(), b.record(t, agent, "b", t0.Add(10*time.Minute))); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		at   time.Duration
		want []string
	}{
		{ttl - time.Second, []string{"b", "a"}},
		{ttl, []string{"b"}},
		{ttl + 10*time.Minute - time.Microsecond, []string{"b"}},
		{ttl + 10*time.Minute, nil},
	}
	for _, s := range steps {
		f.clock.Advance(t0.Add(s.at).Sub(f.clock.Now()))
		recs, err := Lookup(ctx, a.h, f.h.ID(), agent)
		if err != nil {
			t.Fatal(err)
		}
		if got := contexts(recs); !sameStrings(got, s.want) {
			t.Fatalf("at +%s: lookup = %v, want %v", s.at, got, s.want)
		}
	}

	// The sweep drops records nobody asks for.
	c := f.deviceOf(t, agent)
	if err := Register(ctx, c.h, f.h.ID(), c.record(t, agent, "c", f.clock.Now())); err != nil {
		t.Fatal(err)
	}
	if st := f.svc.Stats(); st.Records != 1 {
		t.Fatalf("Stats = %+v, want 1 record", st)
	}
	f.clock.Advance(ttl)
	deadline := time.Now().Add(2 * time.Second)
	for f.svc.Stats().Records != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the sweep did not drop the expired record: %+v", f.svc.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := f.svc.Stats(); st.Agents != 0 || st.Bytes != 0 {
		t.Errorf("Stats = %+v after the sweep, want nothing held", st)
	}
	if got := metric(t, f.reg, "seedfleet_rendezvous_records", ""); got != 0 {
		t.Errorf("records metric = %v after the sweep, want 0", got)
	}
	if got := metric(t, f.reg, "seedfleet_rendezvous_agents", ""); got != 0 {
		t.Errorf("agents metric = %v after the sweep, want 0", got)
	}
}

func TestTTLIsCapped(t *testing.T) {
	if _, err := New(p2ptest.NewHost(t, false), nil, WithTTL(1000*time.Hour)); err == nil || !strings.Contains(err.Error(), "more than MaxTTL (72h0m0s)") {
		t.Fatalf("a TTL over MaxTTL: error %v, want one naming MaxTTL", err)
	}
	f := newSeed(t, WithTTL(MaxTTL))
	agent := newAgent(t)
	d := f.deviceOf(t, agent)
	err := Register(testCtx(t), d.h, f.h.ID(), d.record(t, agent, "d", f.clock.Now().Add(-MaxTTL-time.Second)))
	refusal(t, err, CodeExpired, "72h0m0s")
}

// TestClientDropsTamperedRecords: a seed that alters, swaps or invents
// records cannot get them past the client.
func TestClientDropsTamperedRecords(t *testing.T) {
	agent := newAgent(t)
	seed := p2ptest.NewHost(t, true)
	asker := newDevice(t, seed)
	laptop, phone, tablet := mustKey(t), mustKey(t), mustKey(t)
	dev := func(k ed25519.PrivateKey) device { return device{key: k} }
	now := time.Now()

	valid := dev(laptop).record(t, agent, "laptop", now, "/ip4/127.0.0.1/tcp/1")
	olderLaptop := dev(laptop).record(t, agent, "laptop", now.Add(-time.Minute), "/ip4/127.0.0.1/tcp/9")
	redirected := dev(phone).record(t, agent, "phone", now, "/ip4/127.0.0.1/tcp/2")
	redirected.Addrs = []ma.Multiaddr{mustAddr(t, "/ip4/6.6.6.6/tcp/2")}
	resigned := forge(dev(tablet).record(t, agent, "tablet", now), laptop) // tablet's record, laptop's signature
	otherAgent := dev(tablet).record(t, newAgent(t), "tablet", now)
	stale := dev(tablet).record(t, agent, "tablet", now.Add(-MaxTTL-time.Hour))
	enc := func(r Record) []byte { return r.appendBinary(nil) }
	garbage := []byte("not a record")

	tests := []struct {
		name        string
		records     [][]byte
		wantCtx     []string
		wantDropped int
		wantReason  string
	}{
		{"honest", [][]byte{enc(valid)}, []string{"laptop"}, 0, ""},
		{"address changed", [][]byte{enc(valid), enc(redirected)}, []string{"laptop"}, 1, "signature does not verify"},
		{"signed by another device", [][]byte{enc(resigned), enc(valid)}, []string{"laptop"}, 1, "signature does not verify"},
		{"another agent's record", [][]byte{enc(otherAgent), enc(valid)}, []string{"laptop"}, 1, "not " + agent},
		{"undecodable", [][]byte{garbage, enc(valid)}, []string{"laptop"}, 1, "encoding version"},
		{"older duplicate after", [][]byte{enc(valid), enc(olderLaptop)}, []string{"laptop"}, 1, "older duplicate"},
		{"older duplicate before", [][]byte{enc(olderLaptop), enc(valid)}, []string{"laptop"}, 1, "older duplicate"},
		{"too old for any seed", [][]byte{enc(stale), enc(valid)}, []string{"laptop"}, 1, "older than any seed"},
		{"all bad", [][]byte{enc(redirected), garbage, enc(otherAgent)}, nil, 3, "signature"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fakeSeed(seed, appendLookupOK(nil, tc.records))
			res, err := LookupDetailed(testCtx(t), asker.h, seed.ID(), agent)
			if err != nil {
				t.Fatalf("lookup: %v", err)
			}
			if got := contexts(res.Records); !sameStrings(got, tc.wantCtx) {
				t.Errorf("kept %v, want %v", got, tc.wantCtx)
			}
			for _, r := range res.Records {
				if err := r.Verify(); err != nil || r.AgentDID != agent {
					t.Errorf("kept a bad record: %v", err)
				}
				if port, _ := r.Addrs[0].ValueForProtocol(ma.P_TCP); port != "1" {
					t.Errorf("kept the laptop record with port %s, want the newest (1)", port)
				}
			}
			if res.Dropped != tc.wantDropped || !strings.Contains(res.DropReason, tc.wantReason) {
				t.Errorf("dropped %d (%q), want %d (%q)", res.Dropped, res.DropReason, tc.wantDropped, tc.wantReason)
			}
		})
	}

	t.Run("refusal with control characters", func(t *testing.T) {
		fakeSeed(seed, appendRefusal(nil, &RefusedError{Code: 99, Reason: "no\x1b[31m way\n"}))
		_, err := Lookup(testCtx(t), asker.h, seed.ID(), agent)
		var re *RefusedError
		if !errors.As(err, &re) || re.Code != 99 || re.Code.String() != "code_99" {
			t.Fatalf("err = %v, want a refusal with code 99", err)
		}
		if strings.ContainsAny(re.Reason, "\x1b\n") || !strings.Contains(re.Reason, "way") {
			t.Fatalf("reason %q was not sanitized", re.Reason)
		}
	})
	t.Run("malformed response", func(t *testing.T) {
		for _, body := range [][]byte{{7}, {respOK, 5}, append(appendLookupOK(nil, nil), 0), {respRefused, 1, 10, 'x'}} {
			fakeSeed(seed, body)
			_, err := Lookup(testCtx(t), asker.h, seed.ID(), agent)
			if !errors.Is(err, ErrProtocol) {
				t.Errorf("response %x: err = %v, want ErrProtocol", body, err)
			}
		}
	})
	t.Run("malformed registration response", func(t *testing.T) {
		rec := asker.record(t, agent, "laptop", time.Now())
		// No TTL, a zero TTL, one longer than any seed may keep a record,
		// a non-minimal uvarint, trailing bytes.
		maxSecs := uint64(MaxTTL / time.Second)
		for _, body := range [][]byte{{respOK}, {respOK, 0}, binary.AppendUvarint([]byte{respOK}, maxSecs+1), {respOK, 0x81, 0x00}, {respOK, 1, 0}} {
			fakeSeed(seed, body)
			_, err := RegisterDetailed(testCtx(t), asker.h, seed.ID(), rec)
			if !errors.Is(err, ErrProtocol) {
				t.Errorf("response %x: err = %v, want ErrProtocol", body, err)
			}
		}
		fakeSeed(seed, binary.AppendUvarint([]byte{respOK}, maxSecs))
		if reg, err := RegisterDetailed(testCtx(t), asker.h, seed.ID(), rec); err != nil || reg.TTL != MaxTTL {
			t.Errorf("the longest TTL: %+v, %v", reg, err)
		}
	})
	t.Run("oversized response", func(t *testing.T) {
		seed.SetStreamHandler(ProtocolID, func(st network.Stream) {
			defer st.Close()
			_, _ = st.Write([]byte{0x81, 0x80, 0x40}) // announces 1 MiB + 1
		})
		_, err := Lookup(testCtx(t), asker.h, seed.ID(), agent)
		if err == nil || !strings.Contains(err.Error(), "exceeds the 1048576-byte limit") {
			t.Fatalf("err = %v, want the response size limit", err)
		}
	})
}

// fakeSeed makes h answer every rendezvous request with resp.
func fakeSeed(h host.Host, resp []byte) {
	h.SetStreamHandler(ProtocolID, func(st network.Stream) {
		defer st.Close()
		br := bufio.NewReader(st)
		l, err := wire.ReadLength(br, MaxRequestSize, ErrProtocol)
		if err != nil {
			return
		}
		if _, err := wire.ReadBody(br, nil, l); err != nil {
			return
		}
		_ = wire.WriteFrame(st, resp)
	})
}

// TestClientChecksLocally: the client refuses to send what no seed would
// accept, without a round trip.
func TestClientChecksLocally(t *testing.T) {
	h := p2ptest.NewHost(t, false)
	agent := newAgent(t)
	dev := device{key: mustKey(t)}
	bad := dev.record(t, agent, "laptop", time.Now())
	bad.Signature[5] ^= 1
	if err := Register(testCtx(t), h, h.ID(), bad); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("Register(bad signature) = %v, want ErrBadSignature", err)
	}
	if _, err := Lookup(testCtx(t), h, h.ID(), agent+"#laptop"); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("Lookup(DID with fragment) = %v, want ErrInvalidRecord", err)
	}
}

// TestClose: Close ends requests in flight promptly, waits for them, and
// is idempotent; a closed seed serves nothing.
func TestClose(t *testing.T) {
	f := newSeed(t)
	agent := newAgent(t)
	d := f.deviceOf(t, agent)
	ctx := testCtx(t)

	// A peer that starts a request and stalls holds a handler.
	st, err := d.h.NewStream(ctx, f.h.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write([]byte{0x80}); err != nil { // half a length prefix
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for f.svc.inFlight() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the handler did not start")
		}
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if err := f.svc.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Close took %s with a stalled request", took)
	}
	if n := f.svc.inFlight(); n != 0 {
		t.Fatalf("%d handlers still running after Close", n)
	}
	if err := f.svc.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	err = Register(ctx, d.h, f.h.ID(), d.record(t, agent, "d", f.clock.Now()))
	var re *RefusedError
	if err == nil || errors.As(err, &re) {
		t.Fatalf("Register on a closed seed = %v, want a stream error", err)
	}
}

// TestDeadlines: a peer that stalls mid-request is cut off at the
// deadline; a client whose seed never answers gives up when its context
// ends.
func TestDeadlines(t *testing.T) {
	f := newSeed(t, func(c *config) error { c.timeout = 200 * time.Millisecond; return nil })
	agent := newAgent(t)
	d := f.deviceOf(t, agent)
	ctx := testCtx(t)
	for name, partial := range map[string][]byte{
		"half a length prefix": {0x80},
		"half a request":       append(binary.AppendUvarint(nil, 100), reqLookup, 5),
	} {
		t.Run(name, func(t *testing.T) {
			st, err := d.h.NewStream(ctx, f.h.ID(), ProtocolID)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Reset()
			if _, err := st.Write(partial); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_ = st.SetReadDeadline(time.Now().Add(3 * time.Second))
			_, err = st.Read(make([]byte, 1))
			if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read after stalling: %v, want the seed to reset the stream", err)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("the seed waited %s for a stalled request", took)
			}
		})
	}

	silent := p2ptest.NewHost(t, true)
	silent.SetStreamHandler(ProtocolID, func(st network.Stream) {
		time.Sleep(3 * time.Second)
		st.Reset()
	})
	d.h.Peerstore().AddAddrs(silent.ID(), silent.Addrs(), time.Hour)
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Lookup(short, d.h, silent.ID(), agent)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lookup on a silent seed = %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Lookup took %s with a 300 ms context", took)
	}
}

// TestLargeLookup: records at the size limits come back whole.
func TestLargeLookup(t *testing.T) {
	f := newSeed(t)
	agent := newAgent(t)
	ctx := testCtx(t)
	var addrs []string
	for i := range MaxAddrs {
		addrs = append(addrs, fmt.Sprintf("/dns/%s%02d/tcp/1", strings.Repeat("a", MaxAddrLen-8), i))
	}
	const n = 6
	var first device
	for i := range n {
		d := f.deviceOf(t, agent)
		if i == 0 {
			first = d
		}
		r := d.record(t, agent, strings.Repeat(fmt.Sprint(i), MaxContextLen), f.clock.Now(), addrs...)
		if err := Register(ctx, d.h, f.h.ID(), r); err != nil {
			t.Fatal(err)
		}
	}
	res, err := LookupDetailed(ctx, first.h, f.h.ID(), agent)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != n || res.Dropped != 0 {
		t.Fatalf("lookup returned %d records (dropped %d: %s), want %d", len(res.Records), res.Dropped, res.DropReason, n)
	}
	for _, r := range res.Records {
		if len(r.Addrs) != MaxAddrs || len(r.Addrs[MaxAddrs-1].Bytes()) != MaxAddrLen {
			t.Fatalf("record came back with %d addresses", len(r.Addrs))
		}
	}
}

// TestNewRefusesBadOptions: an option out of its range is an error naming
// the option, not a silent default.
func TestNewRefusesBadOptions(t *testing.T) {
	h := p2ptest.NewHost(t, false)
	for _, tc := range []struct {
		opt  Option
		want string
	}{
		{WithTTL(0), "WithTTL: 0s is not positive"},
		{WithMaxRecordsPerAgent(0), "WithMaxRecordsPerAgent: 0 is not positive"},
		{WithMaxRecordsPerAgent(MaxRecordsPerAgentLimit + 1), "more than 1024"},
		{WithMaxAgents(-1), "WithMaxAgents: -1 is not positive"},
		{WithMaxRecordBytes(0), "WithMaxRecordBytes"},
		{WithClock(nil), "nil clock"},
		{WithMaxClockSkew(-time.Second), "WithMaxClockSkew"},
		{WithSweepInterval(0), "WithSweepInterval"},
		{WithRegisterer(nil), "nil registerer"},
		{WithLogger(nil), "nil logger"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			svc, err := New(h, nil, tc.opt)
			if err == nil {
				svc.Close()
				t.Fatal("New accepted it")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
	// Metrics go only where they are told to, and only once.
	reg := prometheus.NewRegistry()
	svc, err := New(h, nil, WithRegisterer(reg), WithLogger(quietLog))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if _, err := New(h, nil, WithRegisterer(reg), WithLogger(quietLog)); err == nil || !strings.Contains(err.Error(), "rendezvous: metrics") {
		t.Fatalf("a second service on the same registerer: %v, want a metrics error", err)
	}
}
