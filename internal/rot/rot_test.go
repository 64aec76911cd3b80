package rot

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestFlipDamagesTheMiddleOccurrence(t *testing.T) {
	dir := t.TempDir()
	data := []byte("head m-1 m-2 m-3 m-4 m-5 tail")
	if err := os.WriteFile(filepath.Join(dir, "a.sst"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Flip(filepath.Join(dir, "*.sst"), []byte("m-"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(f)
	var changed []int
	for i := range got {
		if got[i] != data[i] {
			changed = append(changed, i)
		}
	}
	if want := bytes.Index(data, []byte("m-3")) + 1; len(changed) != 1 || changed[0] != want {
		t.Fatalf("changed bytes %v of %q, want only byte %d (in the middle occurrence)", changed, got, want)
	}
	if _, err := Flip(filepath.Join(dir, "*.sst"), []byte("absent")); err == nil {
		t.Fatal("no error for a marker no file holds")
	}
}
