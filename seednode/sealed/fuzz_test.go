package sealed

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io"
	"testing"
)

// fuzzKeys knows testKey for every epoch but 0, so fuzzed epochs reach the
// cipher and epoch 0 exercises ErrNoKey.
func fuzzKeys(epoch uint32) (ContentKey, bool) { return testKey, epoch != 0 }

var fuzzOtherKey = ContentKey{0: 'o'}

// valueSeeds are sealed values made deterministically, so the stored corpus
// and these seeds agree run after run.
func valueSeeds(tb testing.TB) [][]byte {
	var seeds [][]byte
	for i, pt := range []string{"", "v", "a longer value, to give the fuzzer some ciphertext to work on"} {
		sealed, err := sealValue(detRand(byte(i)), testKey, testEpoch, testNS, testStoredKey, []byte(pt))
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, sealed)
	}
	return seeds
}

func FuzzOpenValue(f *testing.F) {
	for _, s := range valueSeeds(f) {
		f.Add(s)
		f.Add(s[:len(s)-1])
	}
	f.Add([]byte{})
	f.Add([]byte{valueVersion})
	f.Fuzz(func(t *testing.T, data []byte) { checkOpenValue(t, data) })
}

// checkOpenValue opens data and reports whether it was accepted, failing t
// if an error wraps no sentinel or accepted data was not sealed with testKey.
func checkOpenValue(t *testing.T, data []byte) bool {
	pt, epoch, err := OpenValue(fuzzKeys, testNS, testStoredKey, data)
	if err != nil {
		checkSentinel(t, err, nil)
		if pt != nil {
			t.Fatalf("returned plaintext with error %v", err)
		}
		return false
	}
	// Accepted: data must be exactly what sealing pt again with the same
	// nonce gives, and no other key may open it.
	resealed, err := sealValue(bytes.NewReader(data[5:valueHeaderLen]), testKey, epoch, testNS, testStoredKey, pt)
	if err != nil || !bytes.Equal(resealed, data) {
		t.Fatalf("accepted %x, which is not a value sealed with the key (%v)", data, err)
	}
	if _, _, err := OpenValue(keysOf(epoch, fuzzOtherKey), testNS, testStoredKey, data); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("another key: %v, want %v", err, ErrDecrypt)
	}
	return true
}

// envelopeSeeds are envelopes to testDevice made deterministically.
func envelopeSeeds(tb testing.TB) [][]byte {
	var seeds [][]byte
	for i := range 3 {
		sealed, err := sealEnvelope(detRand(byte(i)), testDevicePub, testNS, testPayload)
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, sealed)
	}
	return seeds
}

func FuzzOpenEnvelope(f *testing.F) {
	seeds := envelopeSeeds(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Add([]byte{envelopeVersion})
	f.Fuzz(func(t *testing.T, data []byte) { checkOpenEnvelope(t, seeds, data) })
}

// checkOpenEnvelope opens data as testDevice and reports whether it was
// accepted, failing t if an error wraps no sentinel or data is not one of
// the valid envelopes: forging one is infeasible.
func checkOpenEnvelope(t *testing.T, valid [][]byte, data []byte) bool {
	p, err := OpenEnvelope(testDevice, testNS, data)
	if err != nil {
		checkSentinel(t, err, nil)
		return false
	}
	known := false
	for _, v := range valid {
		known = known || bytes.Equal(v, data)
	}
	if !known || p != testPayload {
		t.Fatalf("accepted %x as %+v", data, p)
	}
	if _, err := OpenEnvelope(fuzzStranger, testNS, data); !errors.Is(err, ErrNotForMe) {
		t.Fatalf("another device: %v, want %v", err, ErrNotForMe)
	}
	return true
}

var fuzzStranger = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))

// sealStreamDet seals plaintext with a deterministic nonce prefix.
func sealStreamDet(tb testing.TB, random io.Reader, epoch uint32, plaintext []byte) []byte {
	var out bytes.Buffer
	w, err := newStreamSealer(random, &out, testKey, epoch, testNS, testStoredKey)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := w.Write(plaintext); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}

func streamSeeds(tb testing.TB) [][]byte {
	var seeds [][]byte
	for i, pt := range []string{"", "s", "a stream long enough to flip a few bits in, but still one segment"} {
		seeds = append(seeds, sealStreamDet(tb, detRand(byte(i)), testEpoch, []byte(pt)))
	}
	return seeds
}

func FuzzStreamOpener(f *testing.F) {
	for _, s := range streamSeeds(f) {
		f.Add(s)
		f.Add(s[:len(s)-1])
		f.Add(append(s, 0))
	}
	// No multi-segment seed: minimizing a 64 KiB input stalls the fuzzer for
	// its whole run. The stream tests cover segment boundaries.
	f.Add([]byte{streamVersion})
	f.Fuzz(func(t *testing.T, data []byte) { checkOpenStream(t, data) })
}

// checkOpenStream opens and reads data and reports whether it was accepted,
// failing t if an error wraps no sentinel or accepted data was not sealed
// with testKey.
func checkOpenStream(t *testing.T, data []byte) bool {
	pt, epoch, err := openStreamEpoch(fuzzKeys, data)
	if err != nil {
		checkSentinel(t, err, nil)
		return false
	}
	// Accepted: data must be exactly what sealing pt again with the same
	// nonce prefix gives, and no other key may open it.
	resealed := sealStreamDet(t, bytes.NewReader(data[5:streamHeaderLen]), epoch, pt)
	if !bytes.Equal(resealed, data) {
		t.Fatalf("accepted %x, which is not a stream sealed with the key", data)
	}
	if _, _, err := openStreamEpoch(keysOf(epoch, fuzzOtherKey), data); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("another key: %v, want %v", err, ErrDecrypt)
	}
	return true
}

// TestFuzzSeedsOpen makes sure the fuzz targets' checks of accepted input
// run: their valid seeds must open.
func TestFuzzSeedsOpen(t *testing.T) {
	for i, s := range valueSeeds(t) {
		if !checkOpenValue(t, s) {
			t.Errorf("value seed %d rejected", i)
		}
	}
	envelopes := envelopeSeeds(t)
	for i, s := range envelopes {
		if !checkOpenEnvelope(t, envelopes, s) {
			t.Errorf("envelope seed %d rejected", i)
		}
	}
	for i, s := range streamSeeds(t) {
		if !checkOpenStream(t, s) {
			t.Errorf("stream seed %d rejected", i)
		}
	}
}

func openStreamEpoch(keys Keys, data []byte) ([]byte, uint32, error) {
	r, epoch, err := NewStreamOpener(bytes.NewReader(data), keys, testNS, testStoredKey)
	if err != nil {
		return nil, 0, err
	}
	pt, err := io.ReadAll(r)
	return pt, epoch, err
}
