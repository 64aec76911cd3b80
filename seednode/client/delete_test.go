package client

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/seedfleet/seedfleet/seednode/sealed"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

func privatePaths(t *testing.T, h *Home, ns vault.NamespaceID, prefix string) []string {
	t.Helper()
	vals, err := h.ListPrivate(ns, prefix, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range vals {
		if v.Err != nil {
			t.Fatal(v.Err)
		}
		out = append(out, v.Path)
	}
	slices.Sort(out)
	return out
}

func TestDeletePrivate(t *testing.T) {
	h, ns := newAgent(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 10000)
	for path, v := range map[string][]byte{"notes": []byte("d"), "notes/a": []byte("a"), "notes/b": big, "notes2": []byte("n"), "other/c": []byte("c")} {
		if _, err := h.PutPrivate(ns, path, v); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := h.Store.Stats(ns)
	if _, err := h.DeletePrivate(ns, "notes", false); !errors.Is(err, ErrDeletesMore) {
		t.Fatalf("deleting a path with values under it: %v, want ErrDeletesMore", err)
	}
	for _, bad := range []struct {
		path   string
		prefix bool
	}{{"notes/", false}, {"", true}, {"", false}, {"not", true}} {
		if _, err := h.DeletePrivate(ns, bad.path, bad.prefix); !errors.Is(err, sealed.ErrInvalidPath) {
			t.Fatalf("DeletePrivate(%q, %v): %v, want ErrInvalidPath", bad.path, bad.prefix, err)
		}
	}
	if d, err := h.DeletePrivate(ns, "notes/a", false); err != nil || d.Deleted != 1 || !d.Tombstone.IsTombstone() {
		t.Fatalf("delete notes/a: %+v, %v", d, err)
	}
	if vals, err := h.GetPrivate(ns, "notes/a"); err != nil || len(vals) != 0 {
		t.Fatalf("get of a deleted path: %+v, %v", vals, err)
	}
	if got := privatePaths(t, h, ns, "notes/"); !slices.Equal(got, []string{"notes/b"}) {
		t.Fatalf("list notes/ after deleting notes/a: %v", got)
	}
	if d, err := h.DeletePrivate(ns, "notes/", true); err != nil || d.Deleted != 2 {
		t.Fatalf("delete notes/ as a prefix: %+v, %v (want notes and notes/b deleted)", d, err)
	}
	if got := privatePaths(t, h, ns, ""); !slices.Equal(got, []string{"notes2", "other/c"}) {
		t.Fatalf("list after deleting notes/: %v", got)
	}
	after, _ := h.Store.Stats(ns)
	if after.Bytes >= before.Bytes-uint64(len(big)) {
		t.Fatalf("referenced bytes %d after deleting a %d-byte value, %d before", after.Bytes, len(big), before.Bytes)
	}
	// Writing a deleted path again (in the same microsecond, even) is kept.
	if _, err := h.PutPrivate(ns, "notes/a", []byte("again")); err != nil {
		t.Fatal(err)
	}
	if vals, err := h.GetPrivate(ns, "notes/a"); err != nil || len(vals) != 1 || string(vals[0].Value) != "again" {
		t.Fatalf("get of a path written after its deletion: %+v, %v", vals, err)
	}
	if rep, err := h.Store.VerifyVault(ns); err != nil || rep.Problem != "" {
		t.Fatalf("VerifyVault: %+v, %v", rep, err)
	}
}

// TestDeletePrivateBefore: a dated prefix tombstone deletes this device's
// values under the prefix dated before it and keeps the newer ones; a later
// write under it is dated after it.
func TestDeletePrivateBefore(t *testing.T) {
	h, ns := newAgent(t)
	old, err := h.PutPrivate(ns, "log/1", []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	newer, err := h.PutPrivate(ns, "log/2", []byte("two"))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"log", ""} {
		if _, err := h.DeletePrivateBefore(ns, bad, newer.Entry.Timestamp); !errors.Is(err, sealed.ErrInvalidPath) {
			t.Fatalf("DeletePrivateBefore(%q): %v, want ErrInvalidPath", bad, err)
		}
	}
	if _, err := h.DeletePrivateBefore(ns, "log/", 0); !errors.Is(err, sealed.ErrInvalidPath) {
		t.Fatalf("DeletePrivateBefore at 0: %v, want ErrInvalidPath", err)
	}
	d, err := h.DeletePrivateBefore(ns, "log/", old.Entry.Timestamp+1)
	if err != nil || d.Deleted != 1 || d.Tombstone.Entry.Timestamp != old.Entry.Timestamp+1 {
		t.Fatalf("delete before log/2: %+v, %v", d, err)
	}
	if got := privatePaths(t, h, ns, "log/"); !slices.Equal(got, []string{"log/2"}) {
		t.Fatalf("list log/ after deleting what is older than log/2: %v", got)
	}
	// An older tombstone than the one stored deletes nothing more.
	if d, err := h.DeletePrivateBefore(ns, "log/", old.Entry.Timestamp); err != nil || d.Deleted != 0 {
		t.Fatalf("an older tombstone: %+v, %v", d, err)
	}
	again, err := h.PutPrivate(ns, "log/1", []byte("again"))
	if err != nil || again.Entry.Timestamp <= d.Tombstone.Entry.Timestamp {
		t.Fatalf("writing log/1 again: %+v, %v", again.Entry, err)
	}
	if got := privatePaths(t, h, ns, "log/"); !slices.Equal(got, []string{"log/1", "log/2"}) {
		t.Fatalf("list log/ after writing log/1 again: %v", got)
	}
}

func TestDeletePlain(t *testing.T) {
	h := openHome(t)
	ns, err := h.CreateVault()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "ab", "b"} {
		if _, err := h.Put(ns, []byte(k), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Delete(ns, []byte("a"), false); !errors.Is(err, ErrDeletesMore) {
		t.Fatalf("deleting a key other keys start with: %v, want ErrDeletesMore", err)
	}
	if d, err := h.Delete(ns, []byte("ab"), false); err != nil || d.Deleted != 1 {
		t.Fatalf("delete ab: %+v, %v", d, err)
	}
	if d, err := h.Delete(ns, []byte("a"), true); err != nil || d.Deleted != 1 {
		t.Fatalf("delete a as a prefix: %+v, %v", d, err)
	}
	items, err := h.Store.List(ns, nil, 0)
	if err != nil || len(items) != 1 || string(items[0].Entry.Key) != "b" {
		t.Fatalf("list after the deletions: %v, %v", items, err)
	}
	if _, err := h.Put(ns, []byte("ab"), []byte("again")); err != nil {
		t.Fatal(err)
	}
	if items, _ := h.Store.Get(ns, []byte("ab")); len(items) != 1 {
		t.Fatal("a key written after its deletion is not kept")
	}
	other := openHome(t)
	if _, err := other.Delete(ns, []byte("b"), false); !errors.Is(err, ErrNoWriteAccess) {
		t.Fatalf("a device without the vault's key deleted: %v", err)
	}
}
