package sealed

import (
	"bytes"
	"strings"
	"testing"
)

// One name in two directories must not get the same tag (the seed would see
// which files are called alike), and the deepest allowed path must fit a
// vault key.
func TestStoredKeyChainsParentTags(t *testing.T) {
	nk, err := NewNameKey()
	if err != nil {
		t.Fatal(err)
	}
	x, _ := StoredKey(nk, "x/f")
	y, _ := StoredKey(nk, "y/f")
	if bytes.Equal(x[1+TagLen:], y[1+TagLen:]) {
		t.Fatal("the same name under two directories has the same tag")
	}
	deep := strings.Repeat("s/", maxSegments-1) + "s"
	k, err := StoredKey(nk, deep)
	if err != nil {
		t.Fatal(err)
	}
	if len(k) > 1024 {
		t.Fatalf("stored key of %d segments is %d bytes, over the vault key limit", maxSegments, len(k))
	}
	if _, err := StoredKey(nk, deep+"/s"); err == nil {
		t.Fatal("a path one segment too deep was accepted")
	}
}
