package sealed

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestStoredKey(t *testing.T) {
	nk := mustKey(t, NewNameKey)
	a, err := StoredKey(nk, "photos/2024/beach.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 1+3*TagLen || a[0] != 'p' {
		t.Fatalf("stored key %x: want 'p' and 3 tags", a)
	}
	again, _ := StoredKey(nk, "photos/2024/beach.jpg")
	if !bytes.Equal(a, again) {
		t.Error("StoredKey is not deterministic")
	}
	other, _ := StoredKey(mustKey(t, NewNameKey), "photos/2024/beach.jpg")
	if bytes.Equal(a[1:1+TagLen], other[1:1+TagLen]) {
		t.Error("different name keys gave the same tag")
	}
	if bytes.Contains(a, []byte("photos")) || bytes.Contains(a, []byte("beach")) {
		t.Error("stored key contains the name")
	}

	// Distinct paths, including ones that differ only in where '/' is.
	seen := map[string]string{}
	for _, p := range []string{"ab", "a/b", "abc", "a/bc", "ab/c", "a/b/c", "b/a", "A/b", "a/b/c/d"} {
		k, err := StoredKey(nk, p)
		if err != nil {
			t.Fatalf("%q: %v", p, err)
		}
		if q, dup := seen[string(k)]; dup {
			t.Errorf("%q and %q have the same stored key", p, q)
		}
		seen[string(k)] = p
	}
}

func TestStoredPrefix(t *testing.T) {
	nk := mustKey(t, NewNameKey)
	tests := []struct {
		path, prefix string
		under        bool
	}{
		{"a/b/c", "", true},
		{"a/b/c", "a/", true},
		{"a/b/c", "a/b/", true},
		{"a/b/c/d", "a/b/", true},
		{"a/bc", "a/b/", false},
		{"a/b", "a/bc/", false},
		{"x/b/c", "a/b/", false},
		{"b/a", "a/", false},
	}
	for _, tt := range tests {
		key, err := StoredKey(nk, tt.path)
		if err != nil {
			t.Fatal(err)
		}
		prefix, err := StoredPrefix(nk, tt.prefix)
		if err != nil {
			t.Fatal(err)
		}
		if got := bytes.HasPrefix(key, prefix); got != tt.under {
			t.Errorf("StoredKey(%q) has prefix StoredPrefix(%q): %v, want %v", tt.path, tt.prefix, got, tt.under)
		}
	}
	dir, _ := StoredKey(nk, "a/b")
	if p, _ := StoredPrefix(nk, "a/b/"); !bytes.Equal(p, dir) {
		t.Errorf(`StoredPrefix("a/b/") = %x, want StoredKey("a/b") = %x`, p, dir)
	}
	if p, _ := StoredPrefix(nk, ""); string(p) != "p" {
		t.Errorf(`StoredPrefix("") = %q, want "p"`, p)
	}
}

func TestStoredKeyLimits(t *testing.T) {
	nk := NameKey{}
	long := strings.Repeat("x", maxSegmentLen)
	deep := strings.Repeat("d/", maxSegments-1) + "d"
	tests := []struct {
		path string
		ok   bool
	}{
		{"a", true},
		{long, true},
		{long + "/" + long, true},
		{deep, true},
		{"", false},
		{"/", false},
		{"/a", false},
		{"a/", false},
		{"a//b", false},
		{long + "x", false},
		{"a/" + long + "x", false},
		{deep + "/d", false},
	}
	for _, tt := range tests {
		key, err := StoredKey(nk, tt.path)
		if tt.ok {
			if err != nil {
				t.Errorf("StoredKey(%.20q): %v", tt.path, err)
			} else if want := 1 + TagLen*(strings.Count(tt.path, "/")+1); len(key) != want {
				t.Errorf("StoredKey(%.20q) is %d bytes, want %d", tt.path, len(key), want)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidPath) {
			t.Errorf("StoredKey(%.20q) = %x, %v; want %v", tt.path, key, err, ErrInvalidPath)
		}
	}
}

func TestStoredPrefixInvalid(t *testing.T) {
	for _, prefix := range []string{"a", "a/b", "/", "//", "a//", "/a/", strings.Repeat("d/", maxSegments+1)} {
		p, err := StoredPrefix(NameKey{}, prefix)
		if !errors.Is(err, ErrInvalidPath) {
			t.Errorf("StoredPrefix(%.20q) = %x, %v; want %v", prefix, p, err, ErrInvalidPath)
		}
	}
	_, err := StoredPrefix(NameKey{}, "a/b")
	if err == nil || !strings.Contains(err.Error(), "whole path segments") {
		t.Errorf(`StoredPrefix("a/b") error %q does not explain that listing works by whole segments`, err)
	}
}
