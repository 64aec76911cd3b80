package vault

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/zeebo/blake3"
)

// fixedKey returns a deterministic Ed25519 key (Ed25519 signatures are
// deterministic too, so entries signed with these keys are golden-stable).
func fixedKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

// entryFixture signs entries with fixed namespace and author keys.
type entryFixture struct {
	nsKey, authorKey ed25519.PrivateKey
	ns               NamespaceID
	author           AuthorID
}

func newEntryFixture() *entryFixture {
	f := &entryFixture{nsKey: fixedKey(1), authorKey: fixedKey(2)}
	f.ns = NamespaceID(f.nsKey.Public().(ed25519.PublicKey))
	f.author = AuthorID(f.authorKey.Public().(ed25519.PublicKey))
	return f
}

func (f *entryFixture) entry(key string, value string, ts uint64) Entry {
	return Entry{Namespace: f.ns, Key: []byte(key), Author: f.author, Hash: HashOf([]byte(value)), Size: uint64(len(value)), Timestamp: ts}
}

func (f *entryFixture) capSigned(t testing.TB, e Entry, notAfter uint64) SignedEntry {
	t.Helper()
	se, err := Sign(e, f.authorKey, NewCapability(f.nsKey, f.author, notAfter), nil)
	if err != nil {
		t.Fatal(err)
	}
	return se
}

func (f *entryFixture) nsSigned(t testing.TB, e Entry) SignedEntry {
	t.Helper()
	se, err := Sign(e, f.authorKey, Consent{Kind: ConsentNamespaceSig}, f.nsKey)
	if err != nil {
		t.Fatal(err)
	}
	return se
}

func marshal(t testing.TB, se *SignedEntry) []byte {
	t.Helper()
	b, err := se.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sameSigned(a, b *SignedEntry) bool {
	return bytes.Equal(a.Key, b.Key) && a.Namespace == b.Namespace && a.Author == b.Author && a.Hash == b.Hash &&
		a.Size == b.Size && a.Timestamp == b.Timestamp && a.AuthorSig == b.AuthorSig && a.Consent == b.Consent
}

func TestSignedEntryRoundTrip(t *testing.T) {
	f := newEntryFixture()
	long := strings.Repeat("k", MaxKeyLen)
	cases := []struct {
		name string
		se   SignedEntry
	}{
		{"capability", f.capSigned(t, f.entry("docs/a.txt", "hello", 1_700_000_000_000_000), 0)},
		{"capability with expiry", f.capSigned(t, f.entry("docs/a.txt", "hello", 5), 1<<62)},
		{"namespace signature", f.nsSigned(t, f.entry("docs/b.txt", "world", 1_700_000_000_000_001))},
		{"binary key", f.capSigned(t, f.entry("\x00\xff\x00", "", 0), 0)},
		{"longest key", f.nsSigned(t, f.entry(long, "x", ^uint64(0)))},
		{"huge size", f.capSigned(t, Entry{Namespace: f.ns, Key: []byte("k"), Author: f.author, Size: ^uint64(0), Timestamp: 1}, 0)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := marshal(t, &c.se)
			want := entryHeaderLen + len(c.se.Key) + sigLen + 1 + sigLen
			if c.se.Consent.Kind == ConsentCapability {
				want += 8
			}
			if len(b) != want {
				t.Fatalf("encoding is %d bytes, want %d", len(b), want)
			}
			got, err := UnmarshalSignedEntry(b)
			if err != nil {
				t.Fatal(err)
			}
			if !sameSigned(&got, &c.se) {
				t.Fatalf("round trip changed the entry:\n got %+v\nwant %+v", got, c.se)
			}
			if again := got.AppendBinary([]byte("prefix")); !bytes.Equal(again[6:], b) || string(again[:6]) != "prefix" {
				t.Fatal("AppendBinary does not append the same encoding")
			}
			// The decoded key must not alias the input buffer.
			b[entryHeaderLen] ^= 0xff
			if got.Key[0] == b[entryHeaderLen] {
				t.Fatal("decoded key aliases the input")
			}
		})
	}
}

// TestCanonicalLayout pins the documented layout: version 1, namespace,
// author, hash, size (u64 BE), timestamp (u64 BE), key length (u16 BE), key,
// then author signature, consent kind, [notAfter u64 BE], consent signature.
func TestCanonicalLayout(t *testing.T) {
	var e Entry
	for i := range e.Namespace {
		e.Namespace[i] = 0xA0 + byte(i%16)
		e.Author[i] = 0xB0 + byte(i%16)
		e.Hash[i] = 0xC0 + byte(i%16)
	}
	e.Size = 0x0102030405060708
	e.Timestamp = 0x1112131415161718
	e.Key = []byte("key/\x00\xff")

	var want []byte
	want = append(want, 1)
	want = append(want, e.Namespace[:]...)
	want = append(want, e.Author[:]...)
	want = append(want, e.Hash[:]...)
	want = append(want, 1, 2, 3, 4, 5, 6, 7, 8)
	want = append(want, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18)
	want = append(want, 0, 6)
	want = append(want, e.Key...)
	if got := e.AppendCanonical(nil); !bytes.Equal(got, want) {
		t.Fatalf("canonical encoding changed:\n got %x\nwant %x", got, want)
	}
	if EncodingVersion != 1 || entryHeaderLen != 115 {
		t.Fatalf("EncodingVersion %d, header %d: the format changed", EncodingVersion, entryHeaderLen)
	}

	se := SignedEntry{Entry: e}
	for i := range se.AuthorSig {
		se.AuthorSig[i] = 0xD0 + byte(i%16)
		se.Consent.Sig[i] = 0xE0 + byte(i%16)
	}
	t.Run("capability", func(t *testing.T) {
		se := se
		se.Consent.Kind = ConsentCapability
		se.Consent.NotAfter = 0x2122232425262728
		w := append(bytes.Clone(want), se.AuthorSig[:]...)
		w = append(w, 2, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28)
		w = append(w, se.Consent.Sig[:]...)
		if got := marshal(t, &se); !bytes.Equal(got, w) {
			t.Fatalf("stored encoding changed:\n got %x\nwant %x", got, w)
		}
	})
	t.Run("namespace signature", func(t *testing.T) {
		se := se
		se.Consent.Kind = ConsentNamespaceSig
		se.Consent.NotAfter = 0x2122232425262728 // not part of this kind's encoding
		w := append(bytes.Clone(want), se.AuthorSig[:]...)
		w = append(w, 1)
		w = append(w, se.Consent.Sig[:]...)
		if got := marshal(t, &se); !bytes.Equal(got, w) {
			t.Fatalf("stored encoding changed:\n got %x\nwant %x", got, w)
		}
	})
}

// Golden values for fixed keys: any change to the signing domain, the
// capability format, ItemHash or Fingerprint breaks interoperability with
// existing vaults and must come with a new encoding version.
const (
	goldenCapEntry = "01" +
		"8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c" +
		"8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394" +
		"ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f" +
		"0000000000000005" + "00060a24181e4000" + "000a" + "646f63732f612e747874"
)

func TestGoldenEntry(t *testing.T) {
	f := newEntryFixture()
	e := f.entry("docs/a.txt", "hello", 1_700_000_000_000_000)
	if got := hex.EncodeToString(e.AppendCanonical(nil)); got != goldenCapEntry {
		t.Fatalf("canonical encoding of the golden entry changed:\n got %s\nwant %s", got, goldenCapEntry)
	}
	se := f.capSigned(t, e, 0)
	ns := f.nsSigned(t, e)
	golden := []struct{ name, got, want string }{
		{"author signature", hex.EncodeToString(se.AuthorSig[:]), goldenAuthorSig},
		{"capability signature", hex.EncodeToString(se.Consent.Sig[:]), goldenCapSig},
		{"namespace signature", hex.EncodeToString(ns.Consent.Sig[:]), goldenNsSig},
		{"item hash", hex.EncodeToString(func() []byte { h := e.ItemHash(); return h[:] }()), goldenItemHash},
		{"fingerprint", hex.EncodeToString(func() []byte { h := e.Fingerprint(); return h[:] }()), goldenFingerprint},
	}
	for _, g := range golden {
		if g.got != g.want {
			t.Errorf("%s changed:\n got %s\nwant %s", g.name, g.got, g.want)
		}
	}
	// ItemHash and Fingerprint, recomputed from their definitions.
	ih := blake3.New()
	_, _ = ih.Write([]byte{0, byte(len(e.Key))})
	_, _ = ih.Write(e.Key)
	_, _ = ih.Write(e.Author[:])
	if got, want := e.ItemHash(), Hash(ih.Sum(nil)); got != want {
		t.Errorf("ItemHash %x, want BLAKE3(u16 len || key || author) = %x", got, want)
	}
	if got, want := e.Fingerprint(), Hash(blake3.Sum256(e.AppendCanonical(nil))); got != want {
		t.Errorf("Fingerprint %x, want BLAKE3(canonical) = %x", got, want)
	}
	if ns.Fingerprint() != se.Fingerprint() || ns.ItemHash() != se.ItemHash() {
		t.Error("fingerprint and item hash must not depend on the consent")
	}
	if ns.AuthorSig != se.AuthorSig {
		t.Error("the author signature must not depend on the consent kind")
	}
}

func TestUnmarshalSignedEntryRefuses(t *testing.T) {
	f := newEntryFixture()
	for _, kind := range []ConsentKind{ConsentNamespaceSig, ConsentCapability} {
		var se SignedEntry
		if kind == ConsentCapability {
			se = f.capSigned(t, f.entry("docs/a.txt", "hello", 42), 100)
		} else {
			se = f.nsSigned(t, f.entry("docs/a.txt", "hello", 42))
		}
		valid := marshal(t, &se)
		t.Run(fmt.Sprintf("kind%d/truncated", kind), func(t *testing.T) {
			for n := 0; n < len(valid); n++ {
				if _, err := UnmarshalSignedEntry(valid[:n]); !errors.Is(err, ErrMalformed) {
					t.Fatalf("truncated to %d of %d bytes: err %v, want ErrMalformed", n, len(valid), err)
				}
			}
		})
		t.Run(fmt.Sprintf("kind%d/trailing byte", kind), func(t *testing.T) {
			for _, extra := range [][]byte{{0}, {1}, make([]byte, 8)} {
				if _, err := UnmarshalSignedEntry(append(bytes.Clone(valid), extra...)); !errors.Is(err, ErrMalformed) {
					t.Fatalf("%d trailing bytes: err %v, want ErrMalformed", len(extra), err)
				}
			}
		})
		t.Run(fmt.Sprintf("kind%d/version", kind), func(t *testing.T) {
			for _, v := range []byte{0, 2, 0xff} {
				b := bytes.Clone(valid)
				b[0] = v
				if _, err := UnmarshalSignedEntry(b); !errors.Is(err, ErrMalformed) {
					t.Fatalf("version %d: err %v, want ErrMalformed", v, err)
				}
			}
		})
		t.Run(fmt.Sprintf("kind%d/consent kind", kind), func(t *testing.T) {
			for _, k := range []byte{0, 3, 0xff} {
				b := bytes.Clone(valid)
				b[entryHeaderLen+len(se.Key)+sigLen] = k
				if _, err := UnmarshalSignedEntry(b); !errors.Is(err, ErrMalformed) {
					t.Fatalf("consent kind %d: err %v, want ErrMalformed", k, err)
				}
			}
		})
		t.Run(fmt.Sprintf("kind%d/other kind's length", kind), func(t *testing.T) {
			// Flipping the kind makes the remaining length wrong by 8 bytes.
			b := bytes.Clone(valid)
			b[entryHeaderLen+len(se.Key)+sigLen] = byte(3 - kind)
			if _, err := UnmarshalSignedEntry(b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("kind flipped: err %v, want ErrMalformed", err)
			}
		})
	}

	// Key lengths outside 1..MaxKeyLen, with the bytes actually present.
	rawWithKeyLen := func(kl int) []byte {
		e := f.entry("x", "v", 1)
		b := e.AppendCanonical(nil)[:entryHeaderLen]
		binary.BigEndian.PutUint16(b[entryHeaderLen-2:], uint16(kl))
		b = append(b, bytes.Repeat([]byte{'k'}, kl)...)
		b = append(b, make([]byte, sigLen)...)
		b = append(b, byte(ConsentNamespaceSig))
		return append(b, make([]byte, sigLen)...)
	}
	keyCases := []struct {
		kl      int
		wantErr error
	}{
		{0, ErrMalformed},
		{MaxKeyLen + 1, ErrKeyTooLong},
		{0xffff, ErrKeyTooLong},
		{1, nil},
		{MaxKeyLen, nil},
	}
	for _, c := range keyCases {
		t.Run(fmt.Sprintf("key length %d", c.kl), func(t *testing.T) {
			se, err := UnmarshalSignedEntry(rawWithKeyLen(c.kl))
			if c.wantErr == nil {
				if err != nil || len(se.Key) != c.kl {
					t.Fatalf("key of %d bytes: err %v, key %d bytes", c.kl, err, len(se.Key))
				}
				return
			}
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("key of %d bytes: err %v, want %v", c.kl, err, c.wantErr)
			}
		})
	}
}

func TestSignRefuses(t *testing.T) {
	f := newEntryFixture()
	other := fixedKey(9)
	cases := []struct {
		name    string
		e       Entry
		author  ed25519.PrivateKey
		consent Consent
		nsKey   ed25519.PrivateKey
		wantErr error // nil: any error
	}{
		{"mismatched author key", f.entry("k", "v", 1), other, NewCapability(f.nsKey, f.author, 0), nil, nil},
		{"namespace key as author key", f.entry("k", "v", 1), f.nsKey, Consent{Kind: ConsentNamespaceSig}, f.nsKey, nil},
		{"namespace consent without namespace key", f.entry("k", "v", 1), f.authorKey, Consent{Kind: ConsentNamespaceSig}, nil, nil},
		{"namespace consent with another namespace key", f.entry("k", "v", 1), f.authorKey, Consent{Kind: ConsentNamespaceSig}, other, nil},
		{"empty key", f.entry("", "v", 1), f.authorKey, NewCapability(f.nsKey, f.author, 0), nil, ErrMalformed},
		{"key too long", f.entry(strings.Repeat("k", MaxKeyLen+1), "v", 1), f.authorKey, NewCapability(f.nsKey, f.author, 0), nil, ErrKeyTooLong},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Sign(c.e, c.author, c.consent, c.nsKey)
			if err == nil {
				t.Fatal("Sign accepted it")
			}
			if c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Fatalf("err %v, want %v", err, c.wantErr)
			}
		})
	}
}

func TestIDStrings(t *testing.T) {
	f := newEntryFixture()
	ns, err := ParseNamespaceID(strings.ToUpper(f.ns.String()) + " ")
	if err != nil || ns != f.ns || len(f.ns.String()) != 52 || f.ns.Short() != f.ns.String()[:10] {
		t.Fatalf("namespace ID round trip: %v %v", ns, err)
	}
	a, err := ParseAuthorID(f.author.String())
	if err != nil || a != f.author {
		t.Fatalf("author ID round trip: %v", err)
	}
	h := HashOf([]byte("x"))
	if hh, err := ParseHash(h.String()); err != nil || hh != h {
		t.Fatalf("hash round trip: %v", err)
	}
	for _, bad := range []string{"", "abc", f.ns.String()[:51], f.ns.String() + "a", strings.Repeat("1", 52)} {
		if _, err := ParseNamespaceID(bad); err == nil {
			t.Errorf("ParseNamespaceID(%q) accepted", bad)
		}
	}
}

func TestNewer(t *testing.T) {
	lo, hi := Hash{1}, Hash{2}
	cases := []struct {
		name     string
		e, old   Entry
		newer    bool
		converse bool
	}{
		{"later timestamp", Entry{Timestamp: 2, Hash: lo}, Entry{Timestamp: 1, Hash: hi}, true, false},
		{"earlier timestamp", Entry{Timestamp: 1, Hash: hi}, Entry{Timestamp: 2, Hash: lo}, false, true},
		{"tie, larger hash", Entry{Timestamp: 5, Hash: hi}, Entry{Timestamp: 5, Hash: lo}, true, false},
		{"identical", Entry{Timestamp: 5, Hash: hi}, Entry{Timestamp: 5, Hash: hi}, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.e.Newer(&c.old); got != c.newer {
				t.Fatalf("Newer = %v", got)
			}
			if got := c.old.Newer(&c.e); got != c.converse {
				t.Fatalf("converse Newer = %v", got)
			}
		})
	}
}

var verifyNow = time.Unix(1_700_000_000, 0)

func fixedClock() time.Time { return verifyNow }

func TestVerifier(t *testing.T) {
	f := newEntryFixture()
	ts := uint64(verifyNow.UnixMicro()) - 1_000_000
	base := f.entry("docs/a.txt", "hello", ts)
	capEntry := f.capSigned(t, base, 0)
	nsEntry := f.nsSigned(t, base)

	t.Run("valid capability entry", func(t *testing.T) {
		if err := NewVerifier(fixedClock).Verify(&capEntry, Limits{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("valid namespace-signed entry", func(t *testing.T) {
		if err := NewVerifier(fixedClock).Verify(&nsEntry, Limits{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("valid with the real clock", func(t *testing.T) {
		e := f.capSigned(t, f.entry("k", "v", uint64(time.Now().UnixMicro())), 0)
		if err := NewVerifier(nil).Verify(&e, Limits{}); err != nil {
			t.Fatal(err)
		}
	})

	other := fixedKey(7)
	tampers := []struct {
		name  string
		kinds []ConsentKind
		fn    func(se *SignedEntry)
	}{
		{"key", nil, func(se *SignedEntry) { se.Key = append(bytes.Clone(se.Key), '!') }},
		{"key byte", nil, func(se *SignedEntry) { se.Key = bytes.Clone(se.Key); se.Key[0] ^= 1 }},
		{"hash", nil, func(se *SignedEntry) { se.Hash[31] ^= 1 }},
		{"size", nil, func(se *SignedEntry) { se.Size++ }},
		{"timestamp", nil, func(se *SignedEntry) { se.Timestamp-- }},
		{"author", nil, func(se *SignedEntry) { se.Author = AuthorID(other.Public().(ed25519.PublicKey)) }},
		{"namespace", nil, func(se *SignedEntry) { se.Namespace = NamespaceID(other.Public().(ed25519.PublicKey)) }},
		{"author sig", nil, func(se *SignedEntry) { se.AuthorSig[0] ^= 1 }},
		{"author sig, last byte", nil, func(se *SignedEntry) { se.AuthorSig[sigLen-1] ^= 0x10 }},
		{"capability sig", []ConsentKind{ConsentCapability}, func(se *SignedEntry) { se.Consent.Sig[5] ^= 1 }},
		{"capability notAfter", []ConsentKind{ConsentCapability}, func(se *SignedEntry) { se.Consent.NotAfter = ts + 1 }},
		{"namespace sig", []ConsentKind{ConsentNamespaceSig}, func(se *SignedEntry) { se.Consent.Sig[5] ^= 1 }},
		{"capability presented as namespace sig", []ConsentKind{ConsentCapability}, func(se *SignedEntry) { se.Consent.Kind = ConsentNamespaceSig }},
		{"namespace sig presented as capability", []ConsentKind{ConsentNamespaceSig}, func(se *SignedEntry) { se.Consent.Kind = ConsentCapability }},
	}
	for _, kind := range []ConsentKind{ConsentCapability, ConsentNamespaceSig} {
		orig := capEntry
		if kind == ConsentNamespaceSig {
			orig = nsEntry
		}
		for _, warm := range []bool{false, true} {
			for _, tc := range tampers {
				if tc.kinds != nil && tc.kinds[0] != kind {
					continue
				}
				name := fmt.Sprintf("kind%d/warm=%v/tampered %s", kind, warm, tc.name)
				t.Run(name, func(t *testing.T) {
					v := NewVerifier(fixedClock)
					if warm { // a cached capability must not mask tampering
						if err := v.Verify(&orig, Limits{}); err != nil {
							t.Fatal(err)
						}
					}
					se := orig
					tc.fn(&se)
					if err := v.Verify(&se, Limits{}); !errors.Is(err, ErrBadSignature) {
						t.Fatalf("err %v, want ErrBadSignature", err)
					}
					// The untampered entry still verifies afterwards.
					if err := v.Verify(&orig, Limits{}); err != nil {
						t.Fatalf("original after tampered: %v", err)
					}
				})
			}
		}
	}

	t.Run("capability for another author", func(t *testing.T) {
		otherAuthor := AuthorID(other.Public().(ed25519.PublicKey))
		se, err := Sign(base, f.authorKey, NewCapability(f.nsKey, otherAuthor, 0), nil)
		if err != nil {
			t.Fatal(err)
		}
		v := NewVerifier(fixedClock)
		// Warm the cache with the other author's genuine capability first.
		oe := base
		oe.Author = otherAuthor
		ose, err := Sign(oe, other, NewCapability(f.nsKey, otherAuthor, 0), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(&ose, Limits{}); err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(&se, Limits{}); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("err %v, want ErrBadSignature", err)
		}
	})
	t.Run("capability from another namespace", func(t *testing.T) {
		se, err := Sign(base, f.authorKey, NewCapability(other, f.author, 0), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := NewVerifier(fixedClock).Verify(&se, Limits{}); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("err %v, want ErrBadSignature", err)
		}
	})
	t.Run("unknown consent kind", func(t *testing.T) {
		se := capEntry
		se.Consent.Kind = 4
		if err := NewVerifier(fixedClock).Verify(&se, Limits{}); !errors.Is(err, ErrMalformed) {
			t.Fatalf("err %v, want ErrMalformed", err)
		}
	})

	expiry := []struct {
		name     string
		notAfter uint64
		wantErr  error
	}{
		{"no expiry", 0, nil},
		{"expires at the timestamp", ts, nil},
		{"expires later", ts + 1, nil},
		{"expired one µs before", ts - 1, ErrCapExpired},
		{"expired long before", 1, ErrCapExpired},
	}
	for _, c := range expiry {
		t.Run("capability "+c.name, func(t *testing.T) {
			se := f.capSigned(t, base, c.notAfter)
			err := NewVerifier(fixedClock).Verify(&se, Limits{})
			if !errors.Is(err, c.wantErr) || (c.wantErr == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, c.wantErr)
			}
		})
	}

	nowUS := uint64(verifyNow.UnixMicro())
	future := []struct {
		name    string
		ts      uint64
		lim     Limits
		wantErr error
	}{
		{"now", nowUS, Limits{}, nil},
		{"at default skew", nowUS + uint64(DefaultLimits.MaxClockSkew/time.Microsecond), Limits{}, nil},
		{"past default skew", nowUS + uint64(DefaultLimits.MaxClockSkew/time.Microsecond) + 1, Limits{}, ErrFutureEntry},
		{"at custom skew", nowUS + 60_000_000, Limits{MaxClockSkew: time.Minute}, nil},
		{"past custom skew", nowUS + 60_000_001, Limits{MaxClockSkew: time.Minute}, ErrFutureEntry},
		{"one hour ahead", nowUS + 3600_000_000, Limits{}, ErrFutureEntry},
		{"max timestamp", ^uint64(0), Limits{}, ErrFutureEntry},
	}
	for _, c := range future {
		t.Run("timestamp "+c.name, func(t *testing.T) {
			for _, se := range []SignedEntry{f.capSigned(t, f.entry("k", "v", c.ts), 0), f.nsSigned(t, f.entry("k", "v", c.ts))} {
				err := NewVerifier(fixedClock).Verify(&se, c.lim)
				if !errors.Is(err, c.wantErr) || (c.wantErr == nil) != (err == nil) {
					t.Fatalf("kind %d: err %v, want %v", se.Consent.Kind, err, c.wantErr)
				}
			}
		})
	}

	keyLimits := []struct {
		name    string
		keyLen  int
		lim     Limits
		wantErr error
	}{
		{"at vault limit", 8, Limits{MaxKeyLen: 8}, nil},
		{"over vault limit", 9, Limits{MaxKeyLen: 8}, ErrKeyTooLong},
		{"absolute limit", MaxKeyLen, Limits{}, nil},
		{"limit above absolute is clamped", MaxKeyLen, Limits{MaxKeyLen: 4 * MaxKeyLen}, nil},
	}
	for _, c := range keyLimits {
		t.Run("key "+c.name, func(t *testing.T) {
			se := f.capSigned(t, f.entry(strings.Repeat("k", c.keyLen), "v", ts), 0)
			err := NewVerifier(fixedClock).Verify(&se, c.lim)
			if !errors.Is(err, c.wantErr) || (c.wantErr == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, c.wantErr)
			}
		})
	}
	t.Run("key over absolute limit", func(t *testing.T) {
		se := capEntry
		se.Key = bytes.Repeat([]byte{'k'}, MaxKeyLen+1)
		if err := NewVerifier(fixedClock).Verify(&se, Limits{MaxKeyLen: 4 * MaxKeyLen}); !errors.Is(err, ErrKeyTooLong) {
			t.Fatalf("err %v, want ErrKeyTooLong", err)
		}
	})
}

// manyEntries signs n entries by one author of f, with a capability, or
// namespace-signed when nsSig.
func manyEntries(t testing.TB, f *entryFixture, n int, nsSig bool, prefix string) []SignedEntry {
	t.Helper()
	ts := uint64(verifyNow.UnixMicro()) - 1_000_000
	consent := NewCapability(f.nsKey, f.author, 0)
	out := make([]SignedEntry, n)
	for i := range out {
		e := f.entry(fmt.Sprintf("%s/%04d", prefix, i), fmt.Sprint("v", i), ts+uint64(i))
		var err error
		if nsSig {
			out[i], err = Sign(e, f.authorKey, Consent{Kind: ConsentNamespaceSig}, f.nsKey)
		} else {
			out[i], err = Sign(e, f.authorKey, consent, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestVerifierChecksCapabilityOnce(t *testing.T) {
	f := newEntryFixture()
	const n = 100
	allNil := func(t *testing.T, errs []error) {
		t.Helper()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("entry %d: %v", i, err)
			}
		}
	}
	t.Run("one by one", func(t *testing.T) {
		v := NewVerifier(fixedClock)
		for _, se := range manyEntries(t, f, n, false, "a") {
			if err := v.Verify(&se, Limits{}); err != nil {
				t.Fatal(err)
			}
		}
		if got := v.SignatureChecks.Load(); got != n+1 {
			t.Fatalf("%d signature checks for %d entries of one author, want %d", got, n, n+1)
		}
	})
	t.Run("one batch", func(t *testing.T) {
		v := NewVerifier(fixedClock)
		allNil(t, v.VerifyBatch(manyEntries(t, f, n, false, "a"), Limits{}))
		if got := v.SignatureChecks.Load(); got != n+1 {
			t.Fatalf("%d signature checks for a batch of %d entries of one author, want %d", got, n, n+1)
		}
		// A second batch from the same author needs no capability check.
		allNil(t, v.VerifyBatch(manyEntries(t, f, n, false, "b"), Limits{}))
		if got := v.SignatureChecks.Load(); got != 2*n+1 {
			t.Fatalf("%d signature checks after a second batch, want %d", got, 2*n+1)
		}
	})
	t.Run("two authors in one batch", func(t *testing.T) {
		g := &entryFixture{nsKey: f.nsKey, authorKey: fixedKey(3), ns: f.ns}
		g.author = AuthorID(g.authorKey.Public().(ed25519.PublicKey))
		v := NewVerifier(fixedClock)
		batch := append(manyEntries(t, f, n/2, false, "a"), manyEntries(t, g, n/2, false, "b")...)
		allNil(t, v.VerifyBatch(batch, Limits{}))
		if got := v.SignatureChecks.Load(); got != n+2 {
			t.Fatalf("%d signature checks, want %d", got, n+2)
		}
	})
	t.Run("namespace-signed entries are checked twice each", func(t *testing.T) {
		v := NewVerifier(fixedClock)
		allNil(t, v.VerifyBatch(manyEntries(t, f, n, true, "a"), Limits{}))
		if got := v.SignatureChecks.Load(); got != 2*n {
			t.Fatalf("%d signature checks, want %d", got, 2*n)
		}
	})
	t.Run("a forged capability in the batch does not taint the genuine one", func(t *testing.T) {
		v := NewVerifier(fixedClock)
		batch := manyEntries(t, f, 10, false, "a")
		bad := 4
		batch[bad].Consent.Sig[0] ^= 1
		errs := v.VerifyBatch(batch, Limits{})
		for i, err := range errs {
			if (i == bad) != errors.Is(err, ErrBadSignature) || (i != bad && err != nil) {
				t.Fatalf("entry %d: %v", i, err)
			}
		}
	})
	t.Run("entries sharing a forged capability all fail", func(t *testing.T) {
		v := NewVerifier(fixedClock)
		batch := manyEntries(t, f, 10, false, "a")
		forged := NewCapability(fixedKey(8), f.author, 0)
		for i := range batch {
			batch[i].Consent = forged
		}
		for i, err := range v.VerifyBatch(batch, Limits{}) {
			if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("entry %d: err %v, want ErrBadSignature", i, err)
			}
		}
	})
}

func TestVerifyBatchFlagsExactlyTheBadEntry(t *testing.T) {
	f := newEntryFixture()
	const n = 300
	rng := rand.New(rand.NewPCG(3, 4))
	corrupt := []struct {
		name string
		fn   func(se *SignedEntry)
		want error
	}{
		{"author sig", func(se *SignedEntry) { se.AuthorSig[7] ^= 0x80 }, ErrBadSignature},
		{"capability sig", func(se *SignedEntry) { se.Consent.Sig[7] ^= 0x80 }, ErrBadSignature},
		{"size", func(se *SignedEntry) { se.Size += 1000 }, ErrBadSignature},
		{"future", func(se *SignedEntry) { se.Timestamp = ^uint64(0) }, ErrFutureEntry},
	}
	positions := []int{0, 127, 128, 200, n - 1, rng.IntN(n)}
	for _, c := range corrupt {
		for _, pos := range positions {
			t.Run(fmt.Sprintf("%s at %d", c.name, pos), func(t *testing.T) {
				batch := manyEntries(t, f, n, pos%2 == 1, "k")
				c.fn(&batch[pos])
				errs := NewVerifier(fixedClock).VerifyBatch(batch, Limits{})
				if len(errs) != n {
					t.Fatalf("%d results for %d entries", len(errs), n)
				}
				for i, err := range errs {
					if i == pos {
						if !errors.Is(err, c.want) {
							t.Fatalf("bad entry %d: err %v, want %v", i, err, c.want)
						}
					} else if err != nil {
						t.Fatalf("good entry %d flagged: %v", i, err)
					}
				}
			})
		}
	}
}

// The signatures were checked against an independent Ed25519 implementation
// (Python cryptography) over entryDomain||canonical and capDomain||ns||author||notAfter.
const (
	goldenAuthorSig   = "62bc697cc6693dd581747c898108cd340164992b9983ed6f1ba71277a4f1d35d407ad5e95e3f3a9c5a6a461dda1a6554bf184c4c09d0fe412172a2527532b00f"
	goldenCapSig      = "efc6056141b55231a2ef1c1287267722b0e643691b36f2125bd4cb2283cfbb0afa9c3dc0c1e78f7211aedd6a8c2db332aa41c55d8d04ca095ac277c8c9df1200"
	goldenNsSig       = "36be45f626006a9b0ffbcefbc6fe9de5a859dfc01a7ccf550143906c69229ca6cd5f9742273f0c1a9f87c89bc6269a78a89dd09f72c70a58d441882ee5e1780e"
	goldenItemHash    = "08a97fb0194d2fbc8f8cebf3d458b5adcc9a7e50c916c488d8cfa428096cd5c8"
	goldenFingerprint = "91f4782dd6b4a19a551145b4c96ea2f8611828a514bb01141713846694833961"
)

// TestRangeFingerprintIsTheKeyedHash: the session's reused hasher gives
// every fingerprint as a fresh keyed BLAKE3 of the aggregate does (what
// peers of earlier versions compute), the second and later ones included.
func TestRangeFingerprintIsTheKeyedHash(t *testing.T) {
	salt := []byte("0123456789abcdef")
	f := newFPHasher(salt)
	key := blake3.Sum256(append([]byte("seedfleet/vault/range-fingerprint/v1\x00"), salt...))
	for i := range 5 {
		a := Aggregate{Count: uint64(i * 7)}
		a.Sum[0] = uint64(i) << 40
		h, _ := blake3.NewKeyed(key[:])
		var buf [aggLen]byte
		_, _ = h.Write(a.appendTo(buf[:0]))
		var want wireFP
		copy(want[:], h.Sum(nil))
		if got := f.wire(&a); got != want {
			t.Fatalf("fingerprint %d: %x, want %x", i, got, want)
		}
	}
}
