package hosting

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/seednode/identity"
)

const testFleet = "seeds.example"

type agent struct {
	root      ed25519.PrivateKey
	device    ed25519.PrivateKey
	doc       *identity.AgentDocument
	signedDoc []byte
}

func newAgent(t testing.TB, now time.Time) *agent {
	t.Helper()
	_, root, _ := ed25519.GenerateKey(nil)
	_, device, _ := ed25519.GenerateKey(nil)
	doc := identity.NewAgentDocument(root.Public().(ed25519.PublicKey), now.Add(-time.Hour))
	if err := doc.AddDevice("laptop", device.Public().(ed25519.PublicKey), now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	signed, err := doc.Sign(root)
	if err != nil {
		t.Fatal(err)
	}
	return &agent{root: root, device: device, doc: doc, signedDoc: signed}
}

func (a *agent) request(now time.Time, vaults ...[32]byte) *Request {
	r := &Request{Op: OpHost, Kind: SubjectAgent, Subject: a.root.Public().(ed25519.PublicKey),
		Fleet: testFleet, Time: now, AgentDoc: a.signedDoc}
	for _, v := range vaults {
		r.Vaults = append(r.Vaults, VaultAsk{Namespace: v, QuotaBytes: 1 << 20})
	}
	_, _ = rand.Read(r.Nonce[:])
	return r
}

// decodeAsSeed encodes and decodes r, as a seed receives it.
func decodeAsSeed(t testing.TB, r *Request) *Request {
	t.Helper()
	got, err := UnmarshalRequest(r.Marshal())
	if err != nil {
		t.Fatalf("a signed request does not decode: %v", err)
	}
	return got
}

func TestRequestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := newAgent(t, now)
	vaultA := [32]byte{1}

	t.Run("root key", func(t *testing.T) {
		r := a.request(now, vaultA)
		r.AgentDoc = nil
		r.Sign(a.root)
		if _, err := decodeAsSeed(t, r).Verify(testFleet, now, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("listed device", func(t *testing.T) {
		r := a.request(now, vaultA)
		r.Sign(a.device)
		doc, err := decodeAsSeed(t, r).Verify(testFleet, now, nil)
		if err != nil || doc == nil || doc.Version != a.doc.Version {
			t.Fatalf("Verify = %v, %v", doc, err)
		}
	})
	t.Run("plain vault", func(t *testing.T) {
		_, nsKey, _ := ed25519.GenerateKey(nil)
		ns := [32]byte(nsKey.Public().(ed25519.PublicKey))
		r := &Request{Op: OpHost, Kind: SubjectVault, Subject: ns[:], Fleet: testFleet, Time: now,
			Vaults: []VaultAsk{{Namespace: ns}}}
		r.Sign(nsKey)
		if _, err := decodeAsSeed(t, r).Verify(testFleet, now, nil); err != nil {
			t.Fatal(err)
		}
	})

	_, stranger, _ := ed25519.GenerateKey(nil)
	revokedDoc := a.doc.Next(now.Add(-time.Minute))
	if err := revokedDoc.Revoke(a.device.Public().(ed25519.PublicKey), now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	revokedSigned, err := revokedDoc.Sign(a.root)
	if err != nil {
		t.Fatal(err)
	}
	refused := []struct {
		name  string
		build func() *Request
		fleet string
		held  *identity.AgentDocument
		want  string
	}{
		{"unlisted key", func() *Request { r := a.request(now, vaultA); r.Sign(stranger); return r }, testFleet, nil, "not listed"},
		{"device without document", func() *Request {
			r := a.request(now, vaultA)
			r.AgentDoc = nil
			r.Sign(a.device)
			return r
		}, testFleet, nil, "carries no agent document"},
		{"forged signature", func() *Request {
			r := a.request(now, vaultA)
			r.Sign(a.device)
			r.Vaults[0].QuotaBytes *= 100 // changed after signing
			return r
		}, testFleet, nil, "signature does not verify"},
		{"revoked device, new document sent", func() *Request {
			r := a.request(now, vaultA)
			r.AgentDoc = revokedSigned
			r.Sign(a.device)
			return r
		}, testFleet, nil, "revoked"},
		{"revoked device, old document sent, new one held", func() *Request {
			r := a.request(now, vaultA)
			r.Sign(a.device)
			return r
		}, testFleet, revokedDoc, "revoked"},
		{"other fleet", func() *Request { r := a.request(now, vaultA); r.Sign(a.root); return r }, "other", nil, `for fleet "seeds.example"`},
		{"from the past", func() *Request {
			r := a.request(now.Add(-MaxClockSkew-time.Second), vaultA)
			r.Sign(a.root)
			return r
		}, testFleet, nil, "check the device's clock"},
		{"from the future", func() *Request {
			r := a.request(now.Add(MaxClockSkew+time.Second), vaultA)
			r.Sign(a.root)
			return r
		}, testFleet, nil, "check the device's clock"},
		{"another agent's document", func() *Request {
			r := a.request(now, vaultA)
			r.AgentDoc = newAgent(t, now).signedDoc
			r.Sign(a.device)
			return r
		}, testFleet, nil, "another agent"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			r := decodeAsSeed(t, tt.build())
			_, err := r.Verify(tt.fleet, now, tt.held)
			if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Verify: %v, want ErrUnauthorized with %q", err, tt.want)
			}
		})
	}
}

func TestRequestShapeRefused(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := newAgent(t, now)
	_, nsKey, _ := ed25519.GenerateKey(nil)
	tests := []struct {
		name   string
		change func(*Request)
		want   string
	}{
		{"no vaults", func(r *Request) { r.Vaults = nil }, "names no vault"},
		{"status with vaults", func(r *Request) { r.Op = OpStatus }, "status request names vaults"},
		{"unknown op", func(r *Request) { r.Op = 9 }, "unknown operation"},
		{"unknown kind", func(r *Request) { r.Kind = 7 }, "unknown subject kind"},
		{"vault twice", func(r *Request) { r.Vaults = append(r.Vaults, r.Vaults[0]) }, "named twice"},
		{"no fleet", func(r *Request) { r.Fleet = "" }, "no fleet"},
		{"plain vault signed by another key", func(r *Request) { r.Kind = SubjectVault; r.AgentDoc = nil }, "signed by its namespace key"},
		{"too many vaults", func(r *Request) {
			r.Vaults = nil
			for i := range MaxVaultsPerRequest + 1 {
				r.Vaults = append(r.Vaults, VaultAsk{Namespace: [32]byte{byte(i), byte(i >> 8)}})
			}
		}, "at most 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.request(now, [32]byte{1})
			tt.change(r)
			key := a.root
			if tt.name == "plain vault signed by another key" {
				key = nsKey
				r.Subject = a.root.Public().(ed25519.PublicKey)
			}
			r.Sign(key)
			_, err := UnmarshalRequest(r.Marshal())
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("UnmarshalRequest: %v, want ErrMalformed with %q", err, tt.want)
			}
		})
	}
}

func TestReplay(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := newAgent(t, now)
	g := NewReplay(2)
	r1, r2, r3 := a.request(now), a.request(now), a.request(now)
	if fresh, _ := g.Check(r1, now); !fresh {
		t.Fatal("a new request is taken for a replay")
	}
	if fresh, full := g.Check(r1, now.Add(time.Minute)); fresh || full {
		t.Fatalf("a replay is accepted (fresh=%v full=%v)", fresh, full)
	}
	if fresh, _ := g.Check(r2, now); !fresh {
		t.Fatal("a second request is taken for a replay")
	}
	if fresh, full := g.Check(r3, now); fresh || !full {
		t.Fatalf("a full guard accepted a request (fresh=%v full=%v)", fresh, full)
	}
	// Once a request is too old for Verify, the guard forgets it and has room.
	later := now.Add(MaxClockSkew + 2*time.Second)
	if fresh, full := g.Check(r3, later); !fresh || full || g.Len() != 1 {
		t.Fatalf("after the window: fresh=%v full=%v len=%d", fresh, full, g.Len())
	}
}
