package sealed

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func TestValueRoundTrip(t *testing.T) {
	k := mustKey(t, NewContentKey)
	for _, size := range []int{0, 1, 31, 1024, 100 << 10} {
		plaintext := make([]byte, size)
		rand.Read(plaintext)
		sealed, err := SealValue(k, testEpoch, testNS, testStoredKey, plaintext)
		if err != nil {
			t.Fatal(err)
		}
		if len(sealed) != size+ValueOverhead {
			t.Errorf("size %d: sealed to %d bytes, want %d", size, len(sealed), size+ValueOverhead)
		}
		if epoch, err := SealedEpoch(sealed); err != nil || epoch != testEpoch {
			t.Errorf("size %d: SealedEpoch = %d, %v; want %d", size, epoch, err, testEpoch)
		}
		got, epoch, err := OpenValue(keysOf(testEpoch, k), testNS, testStoredKey, sealed)
		if err != nil || epoch != testEpoch || !bytes.Equal(got, plaintext) {
			t.Errorf("size %d: OpenValue = %d bytes, epoch %d, %v", size, len(got), epoch, err)
		}
	}
}

func TestSealValueRandomNonce(t *testing.T) {
	a, _ := SealValue(testKey, testEpoch, testNS, testStoredKey, []byte("same"))
	b, _ := SealValue(testKey, testEpoch, testNS, testStoredKey, []byte("same"))
	if bytes.Equal(a, b) {
		t.Fatal("sealing twice gave the same bytes")
	}
}

func TestOpenValueRejects(t *testing.T) {
	sealed, err := SealValue(testKey, testEpoch, testNS, testStoredKey, []byte("secret value"))
	if err != nil {
		t.Fatal(err)
	}
	otherKey := mustKey(t, NewContentKey)
	withEpoch := func(epoch uint32) []byte {
		c := append([]byte(nil), sealed...)
		c[1], c[2], c[3], c[4] = byte(epoch>>24), byte(epoch>>16), byte(epoch>>8), byte(epoch)
		return c
	}
	envelope, _ := SealEnvelope(testDevicePub, testNS, EnvelopePayload{})
	allKeys := func(uint32) (ContentKey, bool) { return testKey, true }
	tests := []struct {
		name      string
		keys      Keys
		ns        [32]byte
		storedKey []byte
		sealed    []byte
		want      error
	}{
		{"wrong key", keysOf(testEpoch, otherKey), testNS, testStoredKey, sealed, ErrDecrypt},
		{"other vault", keysOf(testEpoch, testKey), [32]byte{}, testStoredKey, sealed, ErrDecrypt},
		{"other stored key", keysOf(testEpoch, testKey), testNS, []byte("p0123456789abcdeF"), sealed, ErrDecrypt},
		{"stored key prefix", keysOf(testEpoch, testKey), testNS, testStoredKey[:5], sealed, ErrDecrypt},
		{"no stored key", keysOf(testEpoch, testKey), testNS, nil, sealed, ErrDecrypt},
		{"moved to another epoch", allKeys, testNS, testStoredKey, withEpoch(testEpoch + 1), ErrDecrypt},
		{"epoch without key", keysOf(testEpoch, testKey), testNS, testStoredKey, withEpoch(testEpoch + 1), ErrNoKey},
		{"nil keys", nil, testNS, testStoredKey, sealed, ErrNoKey},
		{"empty", allKeys, testNS, testStoredKey, nil, ErrMalformed},
		{"shorter than overhead", allKeys, testNS, testStoredKey, sealed[:ValueOverhead-1], ErrMalformed},
		{"truncated", allKeys, testNS, testStoredKey, sealed[:len(sealed)-1], ErrDecrypt},
		{"extended", allKeys, testNS, testStoredKey, append(append([]byte(nil), sealed...), 0), ErrDecrypt},
		{"unknown version", allKeys, testNS, testStoredKey, append([]byte{9}, sealed[1:]...), ErrMalformed},
		{"an envelope", allKeys, testNS, testStoredKey, envelope, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := OpenValue(tt.keys, tt.ns, tt.storedKey, tt.sealed)
			checkSentinel(t, err, tt.want)
			if got != nil {
				t.Errorf("returned %d bytes of plaintext with the error", len(got))
			}
		})
	}
}

func TestValueBitFlips(t *testing.T) {
	sealed, err := SealValue(testKey, testEpoch, testNS, testStoredKey, []byte("a value worth tampering with"))
	if err != nil {
		t.Fatal(err)
	}
	keys := keysOf(testEpoch, testKey)
	for i := range sealed {
		want := ErrDecrypt
		switch {
		case i == 0:
			want = ErrMalformed
		case i < 5:
			want = ErrNoKey // keys knows testEpoch only
		}
		for bit := range 8 {
			_, _, err := OpenValue(keys, testNS, testStoredKey, flipped(sealed, i, bit))
			if err == nil || !errors.Is(err, want) {
				t.Fatalf("byte %d bit %d: error %v, want %v", i, bit, err, want)
			}
		}
	}
}

func BenchmarkSealValue1KiB(b *testing.B) {
	plaintext := make([]byte, 1024)
	b.SetBytes(int64(len(plaintext)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SealValue(testKey, testEpoch, testNS, testStoredKey, plaintext); err != nil {
			b.Fatal(err)
		}
	}
}
