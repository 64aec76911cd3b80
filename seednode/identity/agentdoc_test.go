package identity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// signedMessagePrefix is spelled out rather than taken from the package so
// that changing the domain separator, which invalidates every stored
// document, fails a test.
const signedMessagePrefix = "seedfleet/agent-document/v1\x00"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testAgentKey returns a deterministic key, so encoded documents (and the
// fuzz corpus built from them) are stable.
func testAgentKey(n byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{n}, ed25519.SeedSize))
}

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

// seqPub returns the i-th of a series of deterministic public keys, none of
// them a testAgentKey.
func seqPub(i int) ed25519.PublicKey {
	seed := binary.BigEndian.AppendUint64(bytes.Repeat([]byte{0xa5}, ed25519.SeedSize-8), uint64(i))
	return pub(ed25519.NewKeyFromSeed(seed))
}

// sortedPubs returns n distinct public keys in ascending byte order.
func sortedPubs(n int) []ed25519.PublicKey {
	keys := make([]ed25519.PublicKey, n)
	for i := range keys {
		keys[i] = seqPub(i)
	}
	slices.SortFunc(keys, func(a, b ed25519.PublicKey) int { return bytes.Compare(a, b) })
	return keys
}

func mustSign(t testing.TB, d *AgentDocument, k ed25519.PrivateKey) []byte {
	t.Helper()
	b, err := d.Sign(k)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return b
}

func mustNoErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErr fails unless err wraps every one of targets and mentions every
// one of substrings.
func wantErr(t testing.TB, err error, targets []error, substrings ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want one wrapping %v", targets)
	}
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Errorf("error %q does not wrap %q", err, target)
		}
	}
	for _, s := range substrings {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

// sameDocument compares documents through their canonical encoding, which
// covers every field.
func sameDocument(t testing.TB, got, want *AgentDocument) {
	t.Helper()
	if g, w := got.appendBody(nil), want.appendBody(nil); !bytes.Equal(g, w) {
		t.Fatalf("documents differ:\n got %+v\nwant %+v", got, want)
	}
}

// sampleAgent is an agent with the root key testAgentKey(1), three devices
// and one revoked key.
func sampleAgent(t testing.TB) (*AgentDocument, ed25519.PrivateKey, map[string]ed25519.PrivateKey) {
	t.Helper()
	root := testAgentKey(1)
	devices := map[string]ed25519.PrivateKey{
		"laptop": testAgentKey(2), "phone": testAgentKey(3), "server-1": testAgentKey(4), "old-tablet": testAgentKey(5),
	}
	d := NewAgentDocument(pub(root), t0)
	for _, name := range []string{"laptop", "phone", "server-1", "old-tablet"} {
		mustNoErr(t, d.AddDevice(name, pub(devices[name]), t0))
	}
	mustNoErr(t, d.Revoke(pub(devices["old-tablet"]), t0.Add(time.Hour)))
	return d, root, devices
}

// rawEntry and rawDoc encode documents independently of appendBody, so the
// decoder can be fed encodings that appendBody would never write.
type rawEntry struct {
	frag string
	key  []byte
	t    uint64
}

type rawDoc struct {
	enc             byte
	root            []byte
	version, issued uint64
	devices         []rawEntry
	revoked         []rawEntry
	// deviceCount and revokedCount replace the minimal uvarint counts.
	deviceCount, revokedCount []byte
	trailing                  []byte
}

func (r rawDoc) body() []byte {
	b := []byte{r.enc}
	b = append(b, r.root...)
	b = binary.BigEndian.AppendUint64(b, r.version)
	b = binary.BigEndian.AppendUint64(b, r.issued)
	list := func(count []byte, entries []rawEntry) {
		if count == nil {
			count = binary.AppendUvarint(nil, uint64(len(entries)))
		}
		b = append(b, count...)
		for _, e := range entries {
			b = append(b, byte(len(e.frag)))
			b = append(b, e.frag...)
			b = append(b, e.key...)
			b = binary.BigEndian.AppendUint64(b, e.t)
		}
	}
	list(r.deviceCount, r.devices)
	list(r.revokedCount, r.revoked)
	return append(b, r.trailing...)
}

// signRaw signs any body the way Sign does, valid or not.
func signRaw(k ed25519.PrivateKey, body []byte) []byte {
	sig := ed25519.Sign(k, append([]byte(signedMessagePrefix), body...))
	return append(slices.Clone(body), sig...)
}

func TestAgentDocumentEncodingLayout(t *testing.T) {
	root := testAgentKey(1)
	keys := sortedPubs(2)
	d := &AgentDocument{
		Root: pub(root), Version: 2, Issued: 3,
		Devices: []DeviceKey{{Fragment: "a", Key: keys[1], Added: 4}},
		Revoked: []RevokedKey{{Fragment: "b", Key: keys[0], RevokedAt: 5}},
	}
	var want []byte
	want = append(want, 1)
	want = append(want, pub(root)...)
	want = append(want, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3)
	want = append(want, 1, 1, 'a')
	want = append(want, keys[1]...)
	want = append(want, 0, 0, 0, 0, 0, 0, 0, 4)
	want = append(want, 1, 1, 'b')
	want = append(want, keys[0]...)
	want = append(want, 0, 0, 0, 0, 0, 0, 0, 5)

	got := mustSign(t, d, root)
	if len(got) != len(want)+ed25519.SignatureSize {
		t.Fatalf("encoding is %d bytes, want %d", len(got), len(want)+ed25519.SignatureSize)
	}
	body, sig := got[:len(want)], got[len(want):]
	if !bytes.Equal(body, want) {
		t.Fatalf("body\n got %x\nwant %x", body, want)
	}
	if !ed25519.Verify(pub(root), append([]byte(signedMessagePrefix), body...), sig) {
		t.Fatal("signature is not over the domain separator and the body")
	}
}

func TestAgentDocumentRoundTrip(t *testing.T) {
	root := testAgentKey(1)
	sample, _, _ := sampleAgent(t)
	full := NewAgentDocument(pub(root), t0)
	for i, k := range sortedPubs(MaxAgentDevices) {
		mustNoErr(t, full.AddDevice(fmt.Sprintf("device-%03d", i), k, t0.Add(time.Duration(i)*time.Microsecond)))
	}
	tests := []struct {
		name string
		doc  *AgentDocument
	}{
		{"new", NewAgentDocument(pub(root), t0)},
		{"devices and revoked", sample},
		{"next version", sample.Next(t0.Add(24 * time.Hour))},
		{"max devices", full},
		{"zero and max times", &AgentDocument{Root: pub(root), Version: 1<<64 - 1, Issued: 1<<64 - 1,
			Devices: []DeviceKey{{Fragment: "x", Key: sortedPubs(1)[0], Added: 0}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc := mustSign(t, tc.doc, root)
			if len(enc) != tc.doc.encodedSize() {
				t.Errorf("encoding is %d bytes, encodedSize says %d", len(enc), tc.doc.encodedSize())
			}
			got, err := ParseAgentDocument(enc)
			if err != nil {
				t.Fatalf("ParseAgentDocument: %v", err)
			}
			sameDocument(t, got, tc.doc)
			if again := mustSign(t, got, root); !bytes.Equal(again, enc) {
				t.Error("re-signing the parsed document gives different bytes")
			}
			// The parsed document must not alias the input buffer.
			clear(enc)
			sameDocument(t, got, tc.doc)
		})
	}
}

func TestAgentDocumentSignRefuses(t *testing.T) {
	d, root, devices := sampleAgent(t)
	other := testAgentKey(9)
	tests := []struct {
		name    string
		doc     *AgentDocument
		key     ed25519.PrivateKey
		targets []error
		msg     string
	}{
		{"another root", d, other, []error{ErrOtherAgent}, DIDKey(pub(other))},
		{"a device key", d, devices["laptop"], []error{ErrOtherAgent}, DIDKey(pub(devices["laptop"]))},
		{"short key", d, root[:32], nil, "private key is 32 bytes"},
		{"version 0", &AgentDocument{Root: pub(root)}, root, []error{ErrAgentDocument}, "version is 0"},
		{"no root", &AgentDocument{Version: 1}, root, []error{ErrAgentDocument}, "root key is 0 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.doc.Sign(tc.key)
			wantErr(t, err, tc.targets, tc.msg)
			if b != nil {
				t.Error("Sign returned bytes with an error")
			}
		})
	}
}

func TestParseAgentDocumentTampered(t *testing.T) {
	d, root, _ := sampleAgent(t)
	enc := mustSign(t, d, root)
	check := func(t *testing.T, b []byte) {
		t.Helper()
		got, err := ParseAgentDocument(b)
		if err == nil {
			t.Fatalf("accepted tampered document %x", b)
		}
		if !errors.Is(err, ErrAgentDocument) || got != nil {
			t.Fatalf("got %v, %q; want nil and an error wrapping ErrAgentDocument", got, err)
		}
	}
	t.Run("each byte", func(t *testing.T) {
		for i := range enc {
			for _, mask := range []byte{0x01, 0x80, 0xff} {
				b := slices.Clone(enc)
				b[i] ^= mask
				check(t, b)
			}
		}
	})
	t.Run("truncated", func(t *testing.T) {
		for n := range len(enc) {
			check(t, enc[:n])
		}
	})
	t.Run("extended", func(t *testing.T) {
		check(t, append(slices.Clone(enc), 0))
		check(t, append([]byte{1}, enc...))
	})
	t.Run("signature over the body without domain separator", func(t *testing.T) {
		body := enc[:len(enc)-ed25519.SignatureSize]
		check(t, append(slices.Clone(body), ed25519.Sign(root, body)...))
	})
	t.Run("signature of another version", func(t *testing.T) {
		next := mustSign(t, d.Next(t0.Add(time.Hour)), root)
		body := enc[:len(enc)-ed25519.SignatureSize]
		check(t, append(slices.Clone(body), next[len(next)-ed25519.SignatureSize:]...))
	})
}

func TestParseAgentDocumentForged(t *testing.T) {
	d, _, devices := sampleAgent(t)
	body := d.appendBody(nil)
	for name, k := range map[string]ed25519.PrivateKey{
		"another root":       testAgentKey(9),
		"the agent's device": devices["laptop"],
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ParseAgentDocument(signRaw(k, body))
			wantErr(t, err, []error{ErrAgentDocument, ErrAgentSignature}, d.DID())
			if got != nil {
				t.Error("document returned with an error")
			}
		})
	}
}

func TestParseAgentDocumentMalformed(t *testing.T) {
	root := testAgentKey(1)
	rootPub := pub(root)
	k := sortedPubs(3)
	good := func() rawDoc {
		return rawDoc{
			enc: 1, root: rootPub, version: 1, issued: 10,
			devices: []rawEntry{{"a", k[0], 1}, {"b", k[1], 2}},
			revoked: []rawEntry{{"c", k[2], 3}},
		}
	}
	if _, err := ParseAgentDocument(signRaw(root, good().body())); err != nil {
		t.Fatalf("baseline document refused: %v", err)
	}
	tests := []struct {
		name string
		edit func(r *rawDoc)
		msg  string
	}{
		{"encoding version 0", func(r *rawDoc) { r.enc = 0 }, "encoding version 0"},
		{"encoding version 2", func(r *rawDoc) { r.enc = 2 }, "encoding version 2"},
		{"version 0", func(r *rawDoc) { r.version = 0 }, "version is 0"},
		{"trailing byte", func(r *rawDoc) { r.trailing = []byte{0} }, "1 trailing bytes"},
		{"devices unsorted", func(r *rawDoc) { r.devices[0], r.devices[1] = r.devices[1], r.devices[0] }, "not sorted"},
		{"duplicate device", func(r *rawDoc) { r.devices[1].key = k[0] }, "duplicate key"},
		{"revoked unsorted", func(r *rawDoc) {
			r.devices = r.devices[:1]
			r.revoked = []rawEntry{{"c", k[2], 3}, {"b", k[1], 2}}
		}, "not sorted"},
		{"duplicate revoked", func(r *rawDoc) {
			r.devices = r.devices[:1]
			r.revoked = []rawEntry{{"b", k[2], 2}, {"c", k[2], 3}}
		}, "duplicate key"},
		{"listed and revoked", func(r *rawDoc) { r.revoked[0].key = k[1] }, "still listed"},
		{"root as device", func(r *rawDoc) { r.devices = []rawEntry{{"a", rootPub, 1}} }, "is the root key"},
		{"root as revoked", func(r *rawDoc) { r.revoked = []rawEntry{{"c", rootPub, 1}} }, "is the root key"},
		{"fragment reused across lists", func(r *rawDoc) { r.revoked[0].frag = "a" }, "fragment used twice"},
		{"fragment reused among devices", func(r *rawDoc) { r.devices[1].frag = "a" }, "fragment used twice"},
		{"empty fragment", func(r *rawDoc) { r.devices[0].frag = "" }, "fragment length 0"},
		{"fragment too long", func(r *rawDoc) { r.devices[0].frag = strings.Repeat("x", 65) }, "fragment length 65"},
		{"fragment with '#'", func(r *rawDoc) { r.devices[0].frag = "a#b" }, `contains '#'`},
		{"fragment with '/'", func(r *rawDoc) { r.revoked[0].frag = "../c" }, `contains '/'`},
		{"device count beyond the data", func(r *rawDoc) { r.deviceCount = []byte{5} }, "5 devices need at least"},
		{"revoked count beyond the data", func(r *rawDoc) { r.revokedCount = []byte{2} }, "2 revoked keys need at least"},
		{"device count above the limit", func(r *rawDoc) { r.deviceCount = binary.AppendUvarint(nil, MaxAgentDevices+1) }, "129 devices, max 128"},
		{"revoked count above the limit", func(r *rawDoc) { r.revokedCount = binary.AppendUvarint(nil, MaxAgentRevoked+1) }, "257 revoked keys, max 256"},
		{"huge count", func(r *rawDoc) { r.deviceCount = binary.AppendUvarint(nil, 1<<62) }, "devices, max 128"},
		{"count that overflows", func(r *rawDoc) { r.deviceCount = bytes.Repeat([]byte{0xff}, 10) }, "device count"},
		{"non-minimal count", func(r *rawDoc) { r.deviceCount = []byte{0x82, 0x00} }, "not minimally encoded"},
		{"count truncated", func(r *rawDoc) {
			r.devices, r.revoked, r.revokedCount = nil, nil, []byte{0x80}
		}, "revoked key count"},
		{"device count smaller than the list", func(r *rawDoc) { r.deviceCount = []byte{1} }, ""},
		{"device count larger than the list", func(r *rawDoc) { r.deviceCount = []byte{3} }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := good()
			tc.edit(&r)
			got, err := ParseAgentDocument(signRaw(root, r.body()))
			wantErr(t, err, []error{ErrAgentDocument}, tc.msg)
			if errors.Is(err, ErrAgentSignature) {
				t.Errorf("validly signed document refused for its signature: %v", err)
			}
			if got != nil {
				t.Error("document returned with an error")
			}
		})
	}
}

func TestParseAgentDocumentSizeBounds(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		msg  string
	}{
		{"nil", nil, "0 bytes, shorter than"},
		{"too short", make([]byte, agentMinSize-1), "shorter than"},
		{"too long", make([]byte, MaxAgentDocumentSize+1), "16385 bytes, max 16384"},
		{"huge", make([]byte, 1<<20), "max 16384"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAgentDocument(tc.b)
			wantErr(t, err, []error{ErrAgentDocument}, tc.msg)
		})
	}
}

func TestAgentDocumentAuthorized(t *testing.T) {
	d, root, devices := sampleAgent(t)
	revokedAt := uint64(t0.Add(time.Hour).UnixMicro())
	stranger := pub(testAgentKey(9))
	tests := []struct {
		name    string
		key     ed25519.PublicKey
		at      uint64
		targets []error
		msgs    []string
	}{
		{"root", pub(root), 0, nil, nil},
		{"root far future", pub(root), 1<<64 - 1, nil, nil},
		{"listed device", pub(devices["laptop"]), revokedAt * 2, nil, nil},
		{"revoked, entry before revocation", pub(devices["old-tablet"]), revokedAt - 1, nil, nil},
		{"revoked, entry at revocation", pub(devices["old-tablet"]), revokedAt, []error{ErrKeyRevoked},
			[]string{d.DID() + "#old-tablet", "2026-03-01T13:00:00Z"}},
		{"revoked, entry after revocation", pub(devices["old-tablet"]), 1<<64 - 1, []error{ErrKeyRevoked},
			[]string{"#old-tablet", "2026-03-01T13:00:00Z"}},
		{"unknown key", stranger, 0, []error{ErrKeyNotListed}, []string{DIDKey(stranger), d.DID()}},
		{"short key", stranger[:31], 0, []error{ErrKeyNotListed}, []string{"31-byte key"}},
		{"nil key", nil, 0, []error{ErrKeyNotListed}, nil},
		{"root prefix", pub(root)[:16], 0, []error{ErrKeyNotListed}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := d.Authorized(tc.key, tc.at)
			if tc.targets == nil {
				if err != nil {
					t.Fatalf("Authorized: %v", err)
				}
				return
			}
			wantErr(t, err, tc.targets, tc.msgs...)
		})
	}
}

func TestAgentDocumentAddDevice(t *testing.T) {
	tests := []struct {
		name     string
		fragment string
		key      string // see agentKey
		targets  []error
		msg      string
	}{
		{"new device", "desktop", "stranger", nil, ""},
		{"key already listed", "desktop", "phone", []error{ErrAgentDocument}, "already listed as #phone"},
		{"fragment of a listed device", "phone", "stranger", []error{ErrAgentDocument}, "#phone is already in use"},
		{"fragment of a revoked key", "old-tablet", "stranger", []error{ErrAgentDocument}, "#old-tablet is already in use"},
		{"revoked key", "tablet-again", "old-tablet", []error{ErrKeyRevoked}, "never listed again"},
		{"root key", "root", "root", []error{ErrAgentDocument}, "root key"},
		{"short key", "desktop", "short", []error{ErrAgentDocument}, "31 bytes"},
		{"empty fragment", "", "stranger", []error{ErrAgentDocument}, "fragment is empty"},
		{"fragment with '#'", "a#b", "stranger", []error{ErrAgentDocument}, "contains '#'"},
		{"fragment too long", strings.Repeat("x", 65), "stranger", []error{ErrAgentDocument}, "65 characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, root, devices := sampleAgent(t)
			before := d.appendBody(nil)
			want := agentKey(tc.key, root, devices)
			key := slices.Clone(want)
			err := d.AddDevice(tc.fragment, key, t0.Add(time.Minute))
			if tc.targets != nil {
				wantErr(t, err, tc.targets, tc.msg)
				if !bytes.Equal(d.appendBody(nil), before) {
					t.Error("refused AddDevice changed the document")
				}
				return
			}
			mustNoErr(t, err)
			dev, ok := d.Device(key)
			if !ok || dev.Fragment != tc.fragment || dev.Added != uint64(t0.Add(time.Minute).UnixMicro()) {
				t.Fatalf("Device after AddDevice = %+v, %v", dev, ok)
			}
			clear(key) // the document must hold its own copy
			if _, ok := d.Device(want); !ok {
				t.Error("changing the caller's key buffer changed the document")
			}
			mustNoErr(t, d.Validate()) // still sorted
		})
	}
}

// agentKey resolves the key names of test tables: "root", a device of
// sampleAgent, "stranger" (no device of the agent) or "short" (31 bytes).
func agentKey(name string, root ed25519.PrivateKey, devices map[string]ed25519.PrivateKey) ed25519.PublicKey {
	switch name {
	case "root":
		return pub(root)
	case "stranger":
		return pub(testAgentKey(9))
	case "short":
		return pub(testAgentKey(9))[:31]
	}
	k, ok := devices[name]
	if !ok {
		panic("agentKey: no key named " + name)
	}
	return pub(k)
}

func TestAgentDocumentDeviceLimit(t *testing.T) {
	root := testAgentKey(1)
	d := NewAgentDocument(pub(root), t0)
	keys := sortedPubs(MaxAgentDevices + 1)
	// Added in reverse so every insertion lands at the front.
	for i := MaxAgentDevices - 1; i >= 0; i-- {
		mustNoErr(t, d.AddDevice(fmt.Sprintf("d%d", i), keys[i], t0))
	}
	mustNoErr(t, d.Validate())
	err := d.AddDevice("one-too-many", keys[MaxAgentDevices], t0)
	wantErr(t, err, []error{ErrAgentDocument}, "128 devices, max 128")

	over := d.Clone()
	over.Devices = append(over.Devices, DeviceKey{Fragment: "x", Key: keys[MaxAgentDevices]})
	wantErr(t, over.Validate(), []error{ErrAgentDocument}, "129 devices, max 128")
	if _, err := over.Sign(root); !errors.Is(err, ErrAgentDocument) {
		t.Errorf("Sign of 129 devices: %v, want ErrAgentDocument", err)
	}
}

func TestAgentDocumentSizeLimit(t *testing.T) {
	root := testAgentKey(1)
	d := NewAgentDocument(pub(root), t0)
	// Long fragments make entries as large as they get; devices are revoked
	// as the list fills, until the encoding, not a count, is the limit.
	var err error
	for i := 0; ; i++ {
		if len(d.Devices) == MaxAgentDevices {
			mustNoErr(t, d.Revoke(d.Devices[0].Key, t0))
		}
		if err = d.AddDevice(fmt.Sprintf("%064d", i), seqPub(i), t0); err != nil {
			break
		}
		if i > MaxAgentDevices+MaxAgentRevoked {
			t.Fatal("size limit never reached")
		}
	}
	wantErr(t, err, []error{ErrAgentDocument}, "max 16384")
	enc := mustSign(t, d, root)
	if len(enc) > MaxAgentDocumentSize || len(enc)+1+64+32+8 <= MaxAgentDocumentSize {
		t.Fatalf("full document is %d bytes; want just under %d", len(enc), MaxAgentDocumentSize)
	}
	if _, err := ParseAgentDocument(enc); err != nil {
		t.Fatalf("largest document refused: %v", err)
	}

	over := d.Clone()
	over.Revoked = append(over.Revoked, RevokedKey{Fragment: strings.Repeat("z", 64), Key: bytes.Repeat([]byte{0xff}, 32)})
	wantErr(t, over.Validate(), []error{ErrAgentDocument}, "max 16384")
}

func TestAgentDocumentRevoke(t *testing.T) {
	tests := []struct {
		name    string
		key     string // see agentKey
		targets []error
		msg     string
	}{
		{"listed device", "phone", nil, ""},
		{"already revoked", "old-tablet", []error{ErrKeyNotListed}, "already revoked at 2026-03-01T13:00:00Z as #old-tablet"},
		{"unknown key", "stranger", []error{ErrKeyNotListed}, DIDKey(pub(testAgentKey(9)))},
		{"short key", "short", []error{ErrKeyNotListed}, "31-byte key"},
		{"root key", "root", []error{ErrAgentDocument}, "root key cannot be revoked"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, root, devices := sampleAgent(t)
			before := d.appendBody(nil)
			key := agentKey(tc.key, root, devices)
			when := t0.Add(2 * time.Hour)
			err := d.Revoke(key, when)
			if tc.targets != nil {
				wantErr(t, err, tc.targets, tc.msg)
				if !bytes.Equal(d.appendBody(nil), before) {
					t.Error("refused Revoke changed the document")
				}
				return
			}
			mustNoErr(t, err)
			if _, ok := d.Device(key); ok {
				t.Error("revoked key is still listed")
			}
			at := uint64(when.UnixMicro())
			if err := d.Authorized(key, at-1); err != nil {
				t.Errorf("entry stamped before the revocation refused: %v", err)
			}
			wantErr(t, d.Authorized(key, at), []error{ErrKeyRevoked})
			mustNoErr(t, d.Validate())
			if _, err := ParseAgentDocument(mustSign(t, d, root)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestAgentDocumentRevokedLimit(t *testing.T) {
	root := testAgentKey(1)
	d := NewAgentDocument(pub(root), t0)
	keys := sortedPubs(MaxAgentRevoked + 1)
	for i, k := range keys {
		mustNoErr(t, d.AddDevice(fmt.Sprintf("d%d", i), k, t0))
		if i < MaxAgentRevoked {
			mustNoErr(t, d.Revoke(k, t0))
		}
	}
	err := d.Revoke(keys[MaxAgentRevoked], t0)
	wantErr(t, err, []error{ErrAgentDocument}, "256 revoked keys, max 256")
	if _, ok := d.Device(keys[MaxAgentRevoked]); !ok {
		t.Error("refused Revoke removed the device")
	}
	if _, err := ParseAgentDocument(mustSign(t, d, root)); err != nil {
		t.Fatal(err)
	}
}

func TestAgentDocumentCheckSuccessor(t *testing.T) {
	held, _, devices := sampleAgent(t) // version 1
	for range 4 {
		held = held.Next(t0)
	}
	tablet := pub(devices["old-tablet"])
	laptop := pub(devices["laptop"])
	tests := []struct {
		name    string
		next    func() *AgentDocument
		targets []error
		msg     string
	}{
		{"next version", func() *AgentDocument { return held.Next(t0) }, nil, ""},
		{"skipped versions", func() *AgentDocument { n := held.Next(t0); n.Version += 10; return n }, nil, ""},
		{"new revocation", func() *AgentDocument {
			n := held.Next(t0)
			mustNoErr(t, n.Revoke(laptop, t0))
			return n
		}, nil, ""},
		{"revocation moved earlier", func() *AgentDocument {
			n := held.Next(t0)
			n.Revoked[0].RevokedAt--
			return n
		}, nil, ""},
		{"replay of an older version", func() *AgentDocument { n := held.Clone(); n.Version = 3; return n },
			[]error{ErrStaleDocument}, "replayed or old agent document: version 3, held version 5"},
		{"same document again", func() *AgentDocument { return held.Clone() },
			[]error{ErrStaleDocument}, "version 5, held version 5"},
		{"different document with the same version", func() *AgentDocument {
			n := held.Clone()
			mustNoErr(t, n.Revoke(laptop, t0))
			return n
		}, []error{ErrStaleDocument}, "conflicting"},
		{"another agent", func() *AgentDocument { o := NewAgentDocument(pub(testAgentKey(9)), t0); o.Version = 6; return o },
			[]error{ErrOtherAgent}, DIDKey(pub(testAgentKey(9)))},
		{"un-revoked", func() *AgentDocument {
			n := held.Next(t0)
			n.Revoked = nil
			return n
		}, []error{ErrAgentDocument}, "un-revokes " + held.DID() + "#old-tablet"},
		{"un-revoked and listed again", func() *AgentDocument {
			n := held.Next(t0)
			n.Revoked = nil
			mustNoErr(t, n.AddDevice("tablet", tablet, t0))
			return n
		}, []error{ErrAgentDocument}, "un-revokes"},
		{"revocation moved later", func() *AgentDocument {
			n := held.Next(t0)
			n.Revoked[0].RevokedAt++
			return n
		}, []error{ErrAgentDocument}, "moves the revocation"},
		{"invalid successor", func() *AgentDocument {
			n := held.Next(t0)
			n.Devices[0], n.Devices[1] = n.Devices[1], n.Devices[0]
			return n
		}, []error{ErrAgentDocument}, "not sorted"},
		{"nil", func() *AgentDocument { return nil }, []error{ErrAgentDocument}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := held.CheckSuccessor(tc.next())
			if tc.targets == nil {
				mustNoErr(t, err)
				return
			}
			wantErr(t, err, tc.targets, tc.msg)
		})
	}
}

func TestAgentDocumentCloneAndNext(t *testing.T) {
	d, _, _ := sampleAgent(t)
	before := d.appendBody(nil)

	c := d.Clone()
	sameDocument(t, c, d)
	c.Root[0] ^= 1
	c.Devices[0].Key[0] ^= 1
	c.Devices[0].Fragment = "changed"
	c.Revoked[0].Key[0] ^= 1
	if !bytes.Equal(d.appendBody(nil), before) {
		t.Fatal("changing the clone changed the original")
	}

	later := t0.Add(48 * time.Hour)
	n := d.Next(later)
	if n.Version != d.Version+1 || n.Issued != uint64(later.UnixMicro()) {
		t.Errorf("Next: version %d issued %d, want %d and %d", n.Version, n.Issued, d.Version+1, later.UnixMicro())
	}
	mustNoErr(t, d.CheckSuccessor(n))
	if !bytes.Equal(d.appendBody(nil), before) {
		t.Fatal("Next changed the original")
	}
	if got := NewAgentDocument(d.Root, time.Unix(-5, 0)).Issued; got != 0 {
		t.Errorf("time before 1970 became %d, want 0", got)
	}
}

func TestAgentDocumentAccessors(t *testing.T) {
	d, root, devices := sampleAgent(t)
	if got, want := d.DID(), DIDKey(pub(root)); got != want {
		t.Errorf("DID() = %s, want %s", got, want)
	}
	active := d.ActiveKeys()
	if len(active) != 4 || !bytes.Equal(active[0], pub(root)) {
		t.Fatalf("ActiveKeys() = %d keys, first %x; want root and 3 devices", len(active), active[0])
	}
	for _, name := range []string{"laptop", "phone", "server-1"} {
		if !slices.ContainsFunc(active, func(k ed25519.PublicKey) bool { return bytes.Equal(k, pub(devices[name])) }) {
			t.Errorf("ActiveKeys() misses %s", name)
		}
	}
	if slices.ContainsFunc(active, func(k ed25519.PublicKey) bool { return bytes.Equal(k, pub(devices["old-tablet"])) }) {
		t.Error("ActiveKeys() includes the revoked key")
	}
	dev, ok := d.Device(pub(devices["laptop"]))
	if !ok || dev.Fragment != "laptop" {
		t.Fatalf("Device(laptop) = %+v, %v", dev, ok)
	}
	before := d.appendBody(nil)
	for _, k := range append(active, dev.Key) {
		k[0] ^= 1
	}
	if !bytes.Equal(d.appendBody(nil), before) {
		t.Error("changing returned keys changed the document")
	}
	if _, ok := d.Device(pub(devices["old-tablet"])); ok {
		t.Error("Device returned a revoked key")
	}
}

func TestNewAgentDocumentPanicsOnBadRoot(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewAgentDocument accepted a 31-byte root")
		}
	}()
	NewAgentDocument(make([]byte, 31), t0)
}
