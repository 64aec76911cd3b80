package memlimit

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFromCgroup(t *testing.T) {
	for _, tc := range []struct {
		name, file, content string
		limit               int64
		ok, err             bool
	}{
		{"v2 limit", "memory.max", "1073741824\n", 1 << 30, true, false},
		{"v2 none", "memory.max", "max\n", 0, false, false},
		{"v1 limit", "memory/memory.limit_in_bytes", "536870912\n", 512 << 20, true, false},
		{"v1 none", "memory/memory.limit_in_bytes", "9223372036854771712\n", 0, false, false},
		{"garbage", "memory.max", "lots\n", 0, false, true},
		{"negative", "memory.max", "-1\n", 0, false, true},
		{"no file", "other", "1", 0, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, tc.file, tc.content)
			limit, ok, err := FromCgroup(dir)
			if limit != tc.limit || ok != tc.ok || (err != nil) != tc.err {
				t.Fatalf("FromCgroup = %d, %v, %v; want %d, %v, error %v", limit, ok, err, tc.limit, tc.ok, tc.err)
			}
		})
	}
}

func TestApply(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	dir := t.TempDir()
	write(t, dir, "memory.max", "1000000000\n")
	t.Setenv("GOMEMLIMIT", "")
	set, _, err := Apply(dir)
	if err != nil || set != 900000000 {
		t.Fatalf("Apply = %d, %v; want 900000000", set, err)
	}
	if got := debug.SetMemoryLimit(-1); got != 900000000 {
		t.Fatalf("the runtime's limit is %d, want 900000000", got)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOMEMLIMIT", "2GiB")
	if set, why, err := Apply(dir); err != nil || set != 0 || why == "" {
		t.Fatalf("with GOMEMLIMIT set, Apply = %d, %q, %v; want nothing set", set, why, err)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("with GOMEMLIMIT set the runtime's limit became %d", got)
	}
}
