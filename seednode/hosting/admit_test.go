package hosting

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/seedfleet/seedfleet/internal/pebblelog"

	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/ticket"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// clock is a settable time source for the admitter.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func openDB(t *testing.T, dir string) *pebble.DB {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebblelog.New(slog.Default(), "hosting test")})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

type fixture struct {
	t       *testing.T
	dir     string
	db      *pebble.DB
	records *Records
	adm     *Admitter
	clock   *clock
	fleetSK ed25519.PrivateKey
	policy  Policy
	usage   map[[32]byte]VaultUsage
}

func newFixture(t *testing.T, p Policy) *fixture {
	t.Helper()
	_, fk, _ := ed25519.GenerateKey(nil)
	p.Fleet = testFleet
	if p.Admission == fleet.Invite {
		p.FleetKey = fk.Public().(ed25519.PublicKey)
	}
	f := &fixture{t: t, dir: filepath.Join(t.TempDir(), "db"), clock: &clock{time.Unix(1_800_000_000, 0)},
		fleetSK: fk, policy: p, usage: map[[32]byte]VaultUsage{}}
	f.open()
	t.Cleanup(func() { f.db.Close() })
	return f
}

func (f *fixture) open() {
	f.t.Helper()
	f.db = openDB(f.t, f.dir)
	var err error
	if f.records, err = OpenRecords(f.db, 'h'); err != nil {
		f.t.Fatal(err)
	}
	if f.adm, err = NewAdmitter(f.policy, f.records, func(ns [32]byte) VaultUsage { return f.usage[ns] }, f.clock.now); err != nil {
		f.t.Fatal(err)
	}
}

// reopen closes and reopens the database: a pod restart.
func (f *fixture) reopen() {
	f.t.Helper()
	if err := f.db.Close(); err != nil {
		f.t.Fatal(err)
	}
	f.open()
}

// ask sends a signed request from a's root key through the wire encoding.
func (f *fixture) ask(a *agent, op Op, invite string, vaults ...VaultAsk) *Answer {
	f.t.Helper()
	r := &Request{Op: op, Kind: SubjectAgent, Subject: a.root.Public().(ed25519.PublicKey), Fleet: testFleet,
		Time: f.clock.t, Vaults: vaults, Invite: invite}
	_, _ = rand.Read(r.Nonce[:])
	r.Sign(a.root)
	got, err := UnmarshalRequest(r.Marshal())
	if err != nil {
		f.t.Fatal(err)
	}
	f.clock.t = f.clock.t.Add(time.Millisecond)
	return f.adm.Handle(got, "127.0.0.0/24")
}

func vaultAsk(i int, quota uint64) VaultAsk {
	return VaultAsk{Namespace: [32]byte{byte(i), byte(i >> 8), 0xaa}, QuotaBytes: quota}
}

func wantReason(t *testing.T, ans *Answer, want Reason, text string) {
	t.Helper()
	if ans.Reason != want || !strings.Contains(ans.Message, text) {
		t.Fatalf("answer %v %q, want %v with %q", ans.Reason, ans.Message, want, text)
	}
}

func TestAdmissionPolicies(t *testing.T) {
	t.Run("Closed", func(t *testing.T) {
		f := newFixture(t, Policy{Admission: fleet.Closed})
		wantReason(t, f.ask(newAgent(t, f.clock.t), OpHost, "", vaultAsk(1, 0)), ReasonClosed, "only vaults its operators place")
		if f.records.Vaults() != 0 {
			t.Fatal("a closed fleet recorded a vault")
		}
	})
	t.Run("Open", func(t *testing.T) {
		f := newFixture(t, Policy{Admission: fleet.Open})
		f.usage[vaultAsk(1, 0).Namespace] = VaultUsage{Replicas: 3}
		ans := f.ask(newAgent(t, f.clock.t), OpHost, "", vaultAsk(1, 0))
		wantReason(t, ans, ReasonNone, "hosts 1 vault")
		if len(ans.Vaults) != 1 || ans.Vaults[0].Bytes.Limit != DefaultQuotaBytes || ans.Vaults[0].Replicas != 3 {
			t.Fatalf("answer vaults %+v", ans.Vaults)
		}
	})
	t.Run("Invite", func(t *testing.T) {
		f := newFixture(t, Policy{Admission: fleet.Invite})
		wantReason(t, f.ask(newAgent(t, f.clock.t), OpHost, "", vaultAsk(1, 0)), ReasonInviteNeeded, "--invite")
		inv, err := ticket.NewInviteTicket(testFleet, [16]byte{1}, f.clock.t.Add(time.Hour), 1, f.fleetSK)
		if err != nil {
			t.Fatal(err)
		}
		first := newAgent(t, f.clock.t)
		wantReason(t, f.ask(first, OpHost, inv.String(), vaultAsk(1, 0)), ReasonNone, "hosts 1 vault")
		// Single use: a second agent with the same invite is refused...
		wantReason(t, f.ask(newAgent(t, f.clock.t), OpHost, inv.String(), vaultAsk(2, 0)), ReasonInviteUsed, "already used 1 time")
		// ...while the admitted agent adds vaults without one.
		wantReason(t, f.ask(first, OpHost, "", vaultAsk(3, 0)), ReasonNone, "hosts 2 vault")
		// An invite signed by another key, and an expired one.
		_, other, _ := ed25519.GenerateKey(nil)
		forged, _ := ticket.NewInviteTicket(testFleet, [16]byte{2}, f.clock.t.Add(time.Hour), 5, other)
		wantReason(t, f.ask(newAgent(t, f.clock.t), OpHost, forged.String(), vaultAsk(4, 0)), ReasonInviteInvalid, "not signed by this fleet's key")
		expired, _ := ticket.NewInviteTicket(testFleet, [16]byte{3}, f.clock.t.Add(-time.Minute), 5, f.fleetSK)
		wantReason(t, f.ask(newAgent(t, f.clock.t), OpHost, expired.String(), vaultAsk(5, 0)), ReasonInviteInvalid, "expired")
	})
	t.Run("invite not consumed by a refused request", func(t *testing.T) {
		f := newFixture(t, Policy{Admission: fleet.Invite})
		inv, _ := ticket.NewInviteTicket(testFleet, [16]byte{7}, f.clock.t.Add(time.Hour), 1, f.fleetSK)
		a := newAgent(t, f.clock.t)
		wantReason(t, f.ask(a, OpHost, inv.String(), vaultAsk(1, DefaultMaxQuotaBytes+1)), ReasonQuota, "at most")
		wantReason(t, f.ask(a, OpHost, inv.String(), vaultAsk(1, 0)), ReasonNone, "hosts 1 vault")
	})
}

func TestQuotas(t *testing.T) {
	f := newFixture(t, Policy{Admission: fleet.Open, MaxVaultsPerAgent: 3, MaxQuotaBytes: 100 << 20,
		DefaultQuotaBytes: 10 << 20, MaxAgentBytes: 150 << 20, MaxVaultsPerPod: 5})
	a := newAgent(t, f.clock.t)
	// Per vault: at the limit, and one byte past it.
	wantReason(t, f.ask(a, OpHost, "", vaultAsk(1, 100<<20)), ReasonNone, "hosts 1 vault")
	wantReason(t, f.ask(a, OpHost, "", vaultAsk(2, 100<<20+1)), ReasonQuota,
		"vault "+vault.NamespaceID(vaultAsk(2, 0).Namespace).Short()+" asks for 104857601 bytes and 100000 entries; this fleet allows at most 104857600 bytes")
	// Per agent bytes: 100 + 50 = 150 MiB fits, 100 + 51 does not.
	wantReason(t, f.ask(a, OpHost, "", vaultAsk(2, 51<<20)), ReasonQuota, "add up to")
	wantReason(t, f.ask(a, OpHost, "", vaultAsk(2, 40<<20)), ReasonNone, "hosts 2 vault")
	// Per agent vaults: the third fits, a fourth does not.
	wantReason(t, f.ask(a, OpHost, "", vaultAsk(3, 1<<20)), ReasonNone, "hosts 3 vault")
	wantReason(t, f.ask(a, OpHost, "", vaultAsk(4, 1<<20)), ReasonTooManyVaults, "allows 3")
	// Per pod: 3 held; a second agent fits 2 more, then the pod is full.
	b := newAgent(t, f.clock.t)
	wantReason(t, f.ask(b, OpHost, "", vaultAsk(10, 0), vaultAsk(11, 0)), ReasonNone, "hosts 2 vault")
	wantReason(t, f.ask(b, OpHost, "", vaultAsk(12, 0)), ReasonFleetFull, "full (5 vaults)")
	// A vault another agent already holds costs the pod nothing more.
	wantReason(t, f.ask(b, OpHost, "", vaultAsk(1, 0)), ReasonNone, "hosts 3 vault")
	if f.records.Vaults() != 5 {
		t.Fatalf("pod counts %d distinct vaults, want 5", f.records.Vaults())
	}
	// Changing a quota is allowed within the limits.
	ans := f.ask(a, OpHost, "", vaultAsk(3, 2<<20))
	wantReason(t, ans, ReasonNone, "hosts 3 vault")
	if v := ans.Vaults[2]; v.Bytes.Limit != 2<<20 {
		t.Fatalf("quota not changed: %+v", v)
	}
}

func TestReplayAndOrder(t *testing.T) {
	f := newFixture(t, Policy{Admission: fleet.Open})
	a := newAgent(t, f.clock.t)
	r := &Request{Op: OpHost, Kind: SubjectAgent, Subject: a.root.Public().(ed25519.PublicKey), Fleet: testFleet,
		Time: f.clock.t, Vaults: []VaultAsk{vaultAsk(1, 0)}}
	r.Sign(a.root)
	wantReason(t, f.adm.Handle(r, "127.0.0.0/24"), ReasonNone, "hosts 1")
	wantReason(t, f.adm.Handle(r, "127.0.0.0/24"), ReasonReplay, "already accepted")
	// An older request signed later (a captured one) is refused too.
	old := *r
	old.Time = r.Time.Add(-time.Second)
	old.Nonce = [NonceLen]byte{9}
	old.Op = OpRelease
	old.Sign(a.root)
	wantReason(t, f.adm.Handle(&old, "127.0.0.0/24"), ReasonReplay, "at least as new")
}

func TestRateLimits(t *testing.T) {
	f := newFixture(t, Policy{Admission: fleet.Open, RequestsPerRangePerMinute: 8, AdmissionsPerSecond: 1000})
	refusedAt := -1
	for i := range 10 {
		ans := f.ask(newAgent(t, f.clock.t), OpHost, "", vaultAsk(i, 0))
		if ans.Reason == ReasonRateLimited {
			refusedAt = i
			if ans.RetryAfter <= 0 || !strings.Contains(ans.Message, "127.0.0.0/24") {
				t.Fatalf("rate refusal %+v", ans)
			}
			break
		}
	}
	if refusedAt != 2 { // burst = 8/4
		t.Fatalf("the range was refused after %d requests, want 2", refusedAt)
	}
	// Another range is not affected.
	r := &Request{Op: OpHost, Kind: SubjectAgent, Fleet: testFleet, Time: f.clock.t, Vaults: []VaultAsk{vaultAsk(50, 0)}}
	a := newAgent(t, f.clock.t)
	r.Subject = a.root.Public().(ed25519.PublicKey)
	r.Sign(a.root)
	wantReason(t, f.adm.Handle(r, "127.0.1.0/24"), ReasonNone, "hosts 1")

	g := newFixture(t, Policy{Admission: fleet.Open, AdmissionsPerSecond: 1, RequestsPerRangePerMinute: 1000})
	admitted := 0
	for i := range 5 {
		if g.ask(newAgent(t, g.clock.t), OpHost, "", vaultAsk(i, 0)).Reason == ReasonNone {
			admitted++
		}
	}
	if admitted != 2 { // burst = 2 × 1/s, the clock barely moves
		t.Fatalf("%d admitted within a few milliseconds at 1/s, want the burst of 2", admitted)
	}
}

func TestStatusReleaseAndRestart(t *testing.T) {
	f := newFixture(t, Policy{Admission: fleet.Open, MaxAgentBytes: 8 << 30})
	a := newAgent(t, f.clock.t)
	wantReason(t, f.ask(a, OpStatus, ""), ReasonNotHosted, "seedfleet host request")
	wantReason(t, f.ask(a, OpHost, "", vaultAsk(1, 0), vaultAsk(2, 0)), ReasonNone, "hosts 2 vault")
	f.usage[vaultAsk(1, 0).Namespace] = VaultUsage{Bytes: 1234, Entries: 5, Synced: 2, LastSync: f.clock.t}

	f.reopen() // the records survive a restart
	ans := f.ask(a, OpStatus, "")
	wantReason(t, ans, ReasonNone, "hosts 2 vault")
	if ans.Vaults[0].Bytes.Used != 1234 || ans.AgentBytes.Used != 1234 || ans.AgentVaults.Used != 2 {
		t.Fatalf("status after restart: %+v", ans)
	}
	wantReason(t, f.ask(a, OpRelease, "", vaultAsk(3, 0)), ReasonNotHosted, "none of the named vaults")
	wantReason(t, f.ask(a, OpRelease, "", vaultAsk(1, 0)), ReasonNone, "still hosts 1")
	wantReason(t, f.ask(a, OpRelease, ""), ReasonNone, "released every vault")
	if f.records.Vaults() != 0 {
		t.Fatalf("%d vaults counted after releasing all", f.records.Vaults())
	}
	f.reopen()
	if f.records.Vaults() != 0 {
		t.Fatal("released vaults came back after a restart")
	}
	wantReason(t, f.ask(a, OpStatus, ""), ReasonNotHosted, "holds nothing")
}

func TestIdleExpiry(t *testing.T) {
	f := newFixture(t, Policy{Admission: fleet.Open, IdleExpiry: 30 * 24 * time.Hour})
	a, b := newAgent(t, f.clock.t), newAgent(t, f.clock.t)
	wantReason(t, f.ask(a, OpHost, "", vaultAsk(1, 0)), ReasonNone, "hosts 1")
	wantReason(t, f.ask(b, OpHost, "", vaultAsk(2, 0)), ReasonNone, "hosts 1")
	start := f.clock.t

	f.clock.t = start.Add(29 * 24 * time.Hour)
	f.usage[vaultAsk(2, 0).Namespace] = VaultUsage{LastSync: f.clock.t} // b's vault is in use
	if ans := f.ask(a, OpStatus, ""); !ans.Vaults[0].ExpiresAt.IsZero() {
		t.Fatalf("a vault idle for 29 days shows an expiry: %v", ans.Vaults[0].ExpiresAt)
	}
	f.clock.t = start.Add(31 * 24 * time.Hour)
	ans := f.ask(a, OpStatus, "")
	want := start.Add(30*24*time.Hour + 3*24*time.Hour)
	if got := ans.Vaults[0].ExpiresAt; got.Sub(want).Abs() > time.Second {
		t.Fatalf("idle vault expires at %v, want %v (30 days idle + 3 days' notice)", got, want)
	}
	if released, err := f.adm.ExpireIdle(context.Background(), nil); err != nil || len(released) != 0 {
		t.Fatalf("released %v (%v) during the notice period", released, err)
	}
	f.clock.t = start.Add(34 * 24 * time.Hour)
	released, err := f.adm.ExpireIdle(context.Background(), nil)
	if err != nil || len(released) != 1 || released[0] != vaultAsk(1, 0).Namespace {
		t.Fatalf("ExpireIdle = %v, %v; want a's vault only", released, err)
	}
	wantReason(t, f.ask(a, OpStatus, ""), ReasonNotHosted, "holds nothing")
	wantReason(t, f.ask(b, OpStatus, ""), ReasonNone, "hosts 1")
}

// TestIdleExpiryAsksTheOtherHomePods: a vault idle here but synced at
// another home pod is not idle; when another home pod cannot say, nothing
// of the subject expires and the error says why.
func TestIdleExpiryAsksTheOtherHomePods(t *testing.T) {
	f := newFixture(t, Policy{Admission: fleet.Open, IdleExpiry: 30 * 24 * time.Hour})
	a, b := newAgent(t, f.clock.t), newAgent(t, f.clock.t)
	wantReason(t, f.ask(a, OpHost, "", vaultAsk(1, 0), vaultAsk(3, 0)), ReasonNone, "hosts 2")
	wantReason(t, f.ask(b, OpHost, "", vaultAsk(2, 0)), ReasonNone, "hosts 1")
	start := f.clock.t
	f.clock.t = start.Add(34 * 24 * time.Hour) // idle here, notice period over
	var asked [][][32]byte
	elsewhere := func(_ context.Context, rec *Record, vaults [][32]byte) ([]time.Time, error) {
		asked = append(asked, vaults)
		if bytes.Equal(rec.Subject, b.root.Public().(ed25519.PublicKey)) {
			return nil, errors.New("home pod 2 unreachable")
		}
		out := make([]time.Time, len(vaults))
		for i, ns := range vaults {
			if ns == vaultAsk(1, 0).Namespace {
				out[i] = f.clock.t.Add(-time.Hour) // a device synced it at another pod
			}
		}
		return out, nil
	}
	released, err := f.adm.ExpireIdle(context.Background(), elsewhere)
	if len(released) != 1 || released[0] != vaultAsk(3, 0).Namespace {
		t.Fatalf("released %x, want only a's vault 3 (vault 1 is in use elsewhere, b's unknown)", released)
	}
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("ExpireIdle error %v, want the unreachable pod named", err)
	}
	if len(asked) != 2 {
		t.Fatalf("asked elsewhere %d times, want once per subject due", len(asked))
	}
	ans := f.ask(a, OpStatus, "")
	wantReason(t, ans, ReasonNone, "hosts 1")
	if ans.Vaults[0].Namespace != vaultAsk(1, 0).Namespace {
		t.Fatalf("a keeps %x, want vault 1", ans.Vaults[0].Namespace)
	}
	wantReason(t, f.ask(b, OpStatus, ""), ReasonNone, "hosts 1")
}

func TestPolicyValidate(t *testing.T) {
	for _, tt := range []struct {
		p    Policy
		want string
	}{
		{Policy{}, "fleet name"},
		{Policy{Fleet: "f", Admission: fleet.Invite}, "needs the fleet's key"},
		{Policy{Fleet: "f", IdleExpiry: time.Minute}, "shorter than an hour"},
		{Policy{Fleet: "f", MaxQuotaBytes: 10 << 30}, "above maxAgentBytes"},
	} {
		err := tt.p.WithDefaults().Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.p, err, tt.want)
		}
	}
	if err := (Policy{Fleet: "f"}).WithDefaults().Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

// TestConcurrentAdmissionsKeepLimits: admissions of different agents commit
// concurrently, yet an invite's uses and the pod's vault limit are never
// exceeded, and the counts survive a restart.
func TestConcurrentAdmissionsKeepLimits(t *testing.T) {
	f := newFixture(t, Policy{Admission: fleet.Invite, MaxVaultsPerPod: 30, AdmissionsPerSecond: 1e6, RequestsPerRangePerMinute: 1 << 20})
	limited, _ := ticket.NewInviteTicket(testFleet, [16]byte{1}, f.clock.t.Add(time.Hour), 5, f.fleetSK)
	open, _ := ticket.NewInviteTicket(testFleet, [16]byte{2}, f.clock.t.Add(time.Hour), 1000, f.fleetSK)
	agents := make([]*agent, 80)
	for i := range agents {
		agents[i] = newAgent(t, f.clock.t)
	}
	results := make(chan Reason, len(agents))
	for i, a := range agents {
		inv := open
		if i%2 == 0 {
			inv = limited
		}
		r := &Request{Op: OpHost, Kind: SubjectAgent, Subject: a.root.Public().(ed25519.PublicKey), Fleet: testFleet,
			Time: f.clock.t, Vaults: []VaultAsk{vaultAsk(i, 0)}, Invite: inv.String()}
		_, _ = rand.Read(r.Nonce[:])
		r.Sign(a.root)
		go func() { results <- f.adm.Handle(r, "127.0.0.0/24").Reason }()
	}
	counts := map[Reason]int{}
	for range agents {
		counts[<-results]++
	}
	if counts[ReasonNone] != 30 || counts[ReasonFleetFull]+counts[ReasonInviteUsed] != 50 || counts[ReasonInviteUsed] < 35 {
		t.Fatalf("outcomes %v: want 30 admitted, the limited invite used at most 5 times, the rest refused as full", counts)
	}
	f.reopen()
	if f.records.Vaults() != 30 {
		t.Fatalf("%d vaults after a restart, want 30", f.records.Vaults())
	}
	uses, err := f.records.countInviteUses([16]byte{1}, 100)
	if err != nil || uses > 5 {
		t.Fatalf("the 5-use invite was used %d times (%v)", uses, err)
	}
}

// TestReleaseLeavesATombstone: releasing every vault keeps a record with no
// vaults and the release's time, so an older copy of the record (from a pod
// that was away) is not stored over it, a request older than the release
// is refused, a new one is admitted afresh, and the tombstone is purged
// after its lifetime.
func TestReleaseLeavesATombstone(t *testing.T) {
	f := newFixture(t, Policy{Admission: fleet.Open})
	a := newAgent(t, f.clock.t)
	subject := a.root.Public().(ed25519.PublicKey)
	wantReason(t, f.ask(a, OpHost, "", vaultAsk(1, 0)), ReasonNone, "hosts 1")
	before, err := f.records.Get(subject)
	if err != nil || before == nil {
		t.Fatalf("no record after admission (%v)", err)
	}
	f.clock.t = f.clock.t.Add(time.Minute)
	wantReason(t, f.ask(a, OpRelease, ""), ReasonNone, "released every vault")
	tomb, err := f.records.Get(subject)
	if err != nil || tomb == nil || !tomb.Released() || !tomb.LastRequest.After(before.LastRequest) {
		t.Fatalf("after the release: %+v (%v), want a tombstone of the release's time", tomb, err)
	}
	if tomb.Version() == before.Version() {
		t.Fatal("the release did not change the record's version")
	}
	if stored, err := f.records.Copy(before); err != nil || stored {
		t.Fatalf("an older record was stored over the tombstone (%v, %v)", stored, err)
	}
	if f.records.Vaults() != 0 {
		t.Fatalf("%d vaults claimed by a tombstone", f.records.Vaults())
	}
	wantReason(t, f.ask(a, OpStatus, ""), ReasonNotHosted, "holds nothing")
	wantReason(t, f.ask(a, OpRelease, ""), ReasonNotHosted, "holds nothing")

	// A new request is a new admission.
	f.clock.t = f.clock.t.Add(time.Minute)
	wantReason(t, f.ask(a, OpHost, "", vaultAsk(2, 0)), ReasonNone, "hosts 1")
	again, err := f.records.Get(subject)
	if err != nil || again == nil || len(again.Vaults) != 1 || !again.Admitted.After(tomb.LastRequest) {
		t.Fatalf("re-admitted record %+v (%v), want one vault admitted now", again, err)
	}

	// The tombstone goes once its lifetime has passed, not before.
	f.clock.t = f.clock.t.Add(time.Minute)
	wantReason(t, f.ask(a, OpRelease, ""), ReasonNone, "released every vault")
	released := f.clock.t // within a millisecond of the release
	for _, tc := range []struct {
		at   time.Time
		kept bool
	}{{released.Add(ReleasedLifetime - time.Hour), true}, {released.Add(ReleasedLifetime + time.Hour), false}} {
		if _, err := f.records.PurgeReleased(tc.at); err != nil {
			t.Fatal(err)
		}
		rec, err := f.records.Get(subject)
		if err != nil || (rec != nil) != tc.kept {
			t.Fatalf("at %v after the release: record %v (%v), want kept %v", tc.at.Sub(released), rec != nil, err, tc.kept)
		}
	}
}
