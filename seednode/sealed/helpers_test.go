package sealed

import (
	"errors"
	"math/rand/v2"
	"testing"
)

var (
	testNS        = [32]byte{0: 'n', 1: 's', 31: 1}
	testKey       = ContentKey{0: 'c', 1: 'k', 31: 1}
	testStoredKey = []byte("p0123456789abcdef")
)

const testEpoch uint32 = 7

// keysOf returns a Keys that knows only the given epoch.
func keysOf(epoch uint32, k ContentKey) Keys {
	return func(e uint32) (ContentKey, bool) { return k, e == epoch }
}

// detRand is a deterministic random source, for reproducible sealed data.
func detRand(seed byte) *rand.ChaCha8 {
	return rand.NewChaCha8([32]byte{0: seed, 1: 's', 2: 'e', 3: 'a', 4: 'l'})
}

// decodeSentinels are the errors a decoder may fail with.
var decodeSentinels = []error{ErrDecrypt, ErrNoKey, ErrMalformed, ErrNotForMe}

// checkSentinel fails unless err wraps want (or, if want is nil, some
// decoding sentinel).
func checkSentinel(t testing.TB, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, want error wrapping %v", want)
	}
	if want != nil {
		if !errors.Is(err, want) {
			t.Fatalf("error %q does not wrap %q", err, want)
		}
		return
	}
	for _, s := range decodeSentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error %q wraps no sentinel", err)
}

// flipped returns a copy of b with bit bit of byte i inverted.
func flipped(b []byte, i, bit int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 1 << bit
	return c
}

func mustKey[K ~[32]byte](t testing.TB, newKey func() (K, error)) K {
	t.Helper()
	k, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
