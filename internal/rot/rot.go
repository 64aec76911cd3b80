// Package rot damages stored files the way rot on disk would, for tests of
// Seedfleet's integrity checks: one byte flipped inside a stored value,
// found by a marker the test wrote into its values.
package rot

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// Flip flips a byte of the first file matching glob that holds marker, in
// the middle occurrence of marker in that file, and returns the file.
// Entries are stored in item-hash order, so values a test wrote with one
// marker lie in one run of the file in no particular order: the middle one
// by position is far from the run's ends, where a block may hold another
// vault's entries too.
func Flip(glob string, marker []byte) (string, error) {
	files, err := filepath.Glob(glob)
	if err != nil {
		return "", err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		if i := middleIndex(b, marker); i >= 0 {
			b[i+len(marker)/2] ^= 0x40
			return f, os.WriteFile(f, b, 0o600)
		}
	}
	return "", fmt.Errorf("no file matching %s holds %q", glob, marker)
}

// middleIndex is the offset of the middle occurrence of sub in b (-1: none).
func middleIndex(b, sub []byte) int {
	var at []int
	for off := 0; ; {
		i := bytes.Index(b[off:], sub)
		if i < 0 {
			break
		}
		at = append(at, off+i)
		off += i + len(sub)
	}
	if len(at) == 0 {
		return -1
	}
	return at[len(at)/2]
}
