package cmd

import (
	"context"
	"strings"
	"testing"
)

// TestDel: del removes this device's value of a key, refuses a key that
// other keys start with unless --prefix is given, and list and get no
// longer show what it deleted, in a plain vault and in the agent's private
// vault (whose --prefix takes whole path segments).
func TestDel(t *testing.T) {
	ctx := context.Background()
	home := newDeviceHome(t)
	must := func(args ...string) string {
		t.Helper()
		out, errOut, code := run(t, ctx, append(args, "--home", home)...)
		if code != 0 {
			t.Fatalf("%s: exit %d, %s", strings.Join(args, " "), code, errOut)
		}
		return out
	}
	created, _, _ := run(t, ctx, "vault", "create", "--home", home)
	ns := strings.TrimSpace(created)
	for _, k := range []string{"k/a", "k/b", "kb"} {
		must("put", ns, k, "value of "+k)
	}
	if _, errOut, code := run(t, ctx, "del", ns, "k", "--home", home); code != 1 || !strings.Contains(errOut, "prefix option") {
		t.Fatalf("del of a key other keys start with: exit %d, %q", code, errOut)
	}
	if out := must("del", ns, "k/a"); !strings.Contains(out, "deleted k/a (1 value") {
		t.Fatalf("del k/a: %q", out)
	}
	if _, errOut, code := run(t, ctx, "get", ns, "k/a", "--home", home); code != 1 || !strings.Contains(errOut, "no entry") {
		t.Fatalf("get of a deleted key: exit %d, %q", code, errOut)
	}
	must("del", ns, "k/", "--prefix")
	if out := must("list", ns); strings.Contains(out, "k/") || !strings.Contains(out, "kb") {
		t.Fatalf("list after deleting k/: %q", out)
	}
	must("put", ns, "k/a", "again")
	if out := must("get", ns, "k/a"); strings.TrimSpace(out) != "again" {
		t.Fatalf("get of a key written after its deletion: %q", out)
	}

	must("agent", "init", "--name", "laptop")
	for _, p := range []string{"notes", "notes/a", "notes/b", "todo"} {
		must("put", "agent", p, "private "+p)
	}
	if _, errOut, code := run(t, ctx, "del", "agent", "notes", "--home", home); code != 1 || !strings.Contains(errOut, "prefix option") {
		t.Fatalf("del of a path with values under it: exit %d, %q", code, errOut)
	}
	if out := must("del", "agent", "notes/", "--prefix"); !strings.Contains(out, "3 value") {
		t.Fatalf("del notes/ --prefix: %q", out)
	}
	if out := must("list", "agent"); strings.Contains(out, "notes") || !strings.Contains(out, "todo") {
		t.Fatalf("list agent after deleting notes/: %q", out)
	}
}
