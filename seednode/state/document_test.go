//go:build cgo

package state

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/seedfleet/seedfleet/internal/agenttest"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/node"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

func agentDevices(t testing.TB, names ...string) ([]*client.Home, vault.NamespaceID) {
	t.Helper()
	return agenttest.Devices(t, names...)
}

// startSeed runs a seed hosting ns on loopback; it returns its address
// and data directory.
func startSeed(t *testing.T, ns vault.NamespaceID) (string, string) {
	t.Helper()
	n, dir := startSeedNode(t, ns)
	return n.Addrs()[0].String(), dir
}

func startSeedNode(t *testing.T, ns vault.NamespaceID) (*node.Node, string) {
	t.Helper()
	return agenttest.Seed(t, ns)
}

func syncWith(t *testing.T, h *client.Home, ns vault.NamespaceID, seed string) {
	t.Helper()
	agenttest.Sync(t, h, ns, seed)
}

func mustOpen(t testing.TB, h *client.Home, ns vault.NamespaceID, name string) *Document {
	t.Helper()
	d, err := Open(h, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	if p := d.Problems(); len(p) > 0 {
		t.Fatalf("open %s: %v", name, p)
	}
	return d
}

// mustChange makes a change and waits for the snapshot it may have started
// (so a test knows what the vault holds after it); TestChangesDuringASnapshot
// does not wait.
func mustChange(t testing.TB, d *Document, fn func(*Tx) error) {
	t.Helper()
	if err := d.Change(fn); err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
}

func jsonOf(t *testing.T, d *Document, p Path) map[string]any {
	t.Helper()
	raw, err := d.JSON(p)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestChangeGetReopen(t *testing.T) {
	homes, ns := agentDevices(t, "laptop")
	h := homes[0]
	d := mustOpen(t, h, ns, "profile")
	mustChange(t, d, func(tx *Tx) error {
		if err := tx.Set(Path{"name"}, "Ada"); err != nil {
			return err
		}
		if err := tx.Set(ParsePath("ui.theme"), "dark"); err != nil {
			return err
		}
		if err := tx.Append(Path{"tags"}, map[string]any{"t": 1}); err != nil {
			return err
		}
		if err := tx.EditText(Path{"bio"}, 0, 0, "hello"); err != nil {
			return err
		}
		return tx.Increment(Path{"visits"}, 2)
	})
	mustChange(t, d, func(tx *Tx) error {
		if err := tx.EditText(Path{"bio"}, 5, 0, " world"); err != nil {
			return err
		}
		if err := tx.Increment(Path{"visits"}, 3); err != nil {
			return err
		}
		return tx.MergePatch(nil, json.RawMessage(`{"ui":{"theme":null,"lang":"en"},"age":36.5}`))
	})
	want := `{"age":36.5,"bio":"hello world","name":"Ada","tags":[{"t":1}],"ui":{"lang":"en"},"visits":5}`
	if got, _ := d.JSON(nil); string(got) != want {
		t.Fatalf("document %s, want %s", got, want)
	}
	if got, _ := d.JSON(ParsePath("tags.0.t")); string(got) != "1" {
		t.Fatalf("tags.0.t = %s", got)
	}
	again := mustOpen(t, h, ns, "profile")
	if got, _ := again.JSON(nil); string(got) != want {
		t.Fatalf("reopened: %s, want %s", got, want)
	}
	var v struct {
		Name   string `json:"name"`
		Visits int    `json:"visits"`
	}
	if err := again.Get(nil, &v); err != nil || v.Name != "Ada" || v.Visits != 5 {
		t.Fatalf("get into a struct: %+v, %v", v, err)
	}
}

// A failed transaction leaves nothing behind, in memory or in the vault,
// and the next one works.
func TestFailedChangeRollsBack(t *testing.T) {
	homes, ns := agentDevices(t, "laptop")
	h := homes[0]
	d := mustOpen(t, h, ns, "prefs")
	mustChange(t, d, func(tx *Tx) error { return tx.Set(Path{"a"}, 1) })
	boom := errors.New("boom")
	if err := d.Change(func(tx *Tx) error {
		if err := tx.Set(Path{"b"}, 2); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("change: %v", err)
	}
	if err := d.Change(func(tx *Tx) error { return tx.Increment(Path{"a"}, 1) }); err == nil {
		t.Fatal("incrementing a number that is not a counter was accepted")
	}
	mustChange(t, d, func(tx *Tx) error { return tx.Set(Path{"c"}, 3) })
	for _, doc := range []*Document{d, mustOpen(t, h, ns, "prefs")} {
		if got, _ := doc.JSON(nil); string(got) != `{"a":1,"c":3}` {
			t.Fatalf("after a failed change: %s", got)
		}
	}
	vals, _ := h.ListPrivate(ns, ChangePrefix("prefs"), 0)
	if len(vals) != 2 {
		t.Fatalf("%d change entries stored, want 2", len(vals))
	}
}

// Malformed entries from a listed device (garbage, a change stored under
// another hash or passed off as another device's, an unknown format, a
// snapshot that does not load) are skipped with a reason; the document keeps
// every good change.
func TestMalformedEntriesAreSkipped(t *testing.T) {
	homes, ns := agentDevices(t, "laptop", "phone")
	laptop, phone := homes[0], homes[1]
	d := mustOpen(t, laptop, ns, "notes")
	mustChange(t, d, func(tx *Tx) error { return tx.Set(Path{"title"}, "kept") })
	saved, _ := d.Save()
	vals, _ := laptop.ListPrivate(ns, ChangePrefix("notes"), 0)
	good := vals[0].Value
	goodHash, _ := ParseChangePath("notes", vals[0].Path)

	// The phone gets the vault as it is and stores bad entries of its own.
	items, _ := laptop.Store.List(ns, nil, 0)
	if _, err := phone.Store.Insert(items, 0, true); err != nil {
		t.Fatal(err)
	}
	put := func(path string, v []byte) {
		t.Helper()
		if _, err := phone.PutPrivate(ns, path, v); err != nil {
			t.Fatal(err)
		}
	}
	put(ChangePath("notes", [32]byte{1}), encodeEntry([]byte("not a change")))
	put(ChangePath("notes", [32]byte{2}), good)                    // the laptop's change, under another hash
	put(ChangePath("notes", goodHash), good)                       // the laptop's change, stored by the phone
	put(ChangePath("notes", [32]byte{3}), append([]byte{9}, 1, 2)) // a format from the future
	put(SnapshotPath("notes"), encodeEntry(saved[:len(saved)/2]))  // a truncated snapshot
	put("state/notes/~c/zz", encodeEntry([]byte{1}))               // not a hash

	opened, err := Open(laptop, ns, "notes")
	if err != nil {
		t.Fatal(err)
	}
	if err := opened.Refresh(); err != nil {
		t.Fatal(err)
	}
	// The laptop has not synced yet: it sees only its own entries.
	if p := opened.Problems(); len(p) != 0 {
		t.Fatalf("laptop: %v", p)
	}
	onPhone, err := Open(phone, ns, "notes")
	if err != nil {
		t.Fatal(err)
	}
	problems := onPhone.Problems()
	if len(problems) != 6 {
		t.Fatalf("%d problems, want 6: %v", len(problems), problems)
	}
	for _, p := range problems {
		if !errors.Is(p.Err, ErrMalformed) || p.Author != phone.Author() {
			t.Errorf("problem %v: want ErrMalformed by the phone", p)
		}
	}
	if got, _ := onPhone.JSON(nil); string(got) != `{"title":"kept"}` {
		t.Fatalf("document with bad entries: %s", got)
	}
	// The phone's own changes still work and merge.
	mustChange(t, onPhone, func(tx *Tx) error { return tx.Set(Path{"by"}, "phone") })
	if got, _ := mustOpenAllowing(t, phone, ns, "notes").JSON(nil); string(got) != `{"by":"phone","title":"kept"}` {
		t.Fatalf("after the phone's change: %s", got)
	}
}

// mustOpenAllowing opens a document whatever entries it skips.
func mustOpenAllowing(t *testing.T, h *client.Home, ns vault.NamespaceID, name string) *Document {
	t.Helper()
	d, err := Open(h, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Snapshots cover the changes before them: a document opened from its
// snapshot alone reads the same.
func TestSnapshotCoversChanges(t *testing.T) {
	homes, ns := agentDevices(t, "laptop", "phone")
	d := mustOpen(t, homes[0], ns, "log")
	d.SnapshotEvery = 5
	for i := range 12 {
		mustChange(t, d, func(tx *Tx) error { return tx.Append(Path{"lines"}, i) })
	}
	snaps, _ := homes[0].GetPrivate(ns, SnapshotPath("log"))
	if len(snaps) != 1 {
		t.Fatalf("%d snapshots, want 1 (the newest of this device)", len(snaps))
	}
	// Each snapshot deleted the changes it covers: two are left.
	if changes, err := homes[0].ListPrivate(ns, ChangePrefix("log"), 0); err != nil || len(changes) != 2 {
		t.Fatalf("%d changes left, want 2 (%v)", len(changes), err)
	}
	// Only the snapshot reaches the phone: it holds the first 10 lines.
	snapItems, _ := homes[0].Store.Get(ns, snaps[0].Entry.Key)
	items, _ := homes[0].Store.List(ns, nil, 0)
	var system []vault.Item
	for _, it := range items {
		if vault.IsSystemKey(it.Entry.Key) {
			system = append(system, it)
		}
	}
	if _, err := homes[1].Store.Insert(append(system, snapItems...), 0, true); err != nil {
		t.Fatal(err)
	}
	got := jsonOf(t, mustOpen(t, homes[1], ns, "log"), nil)
	if lines, _ := got["lines"].([]any); len(lines) != 10 {
		t.Fatalf("from the snapshot: %v, want 10 lines", got)
	}
}

// Changes go on while a snapshot runs in the background, and none is lost:
// the tombstone of each compaction covers only changes its snapshot holds.
func TestChangesDuringASnapshot(t *testing.T) {
	homes, ns := agentDevices(t, "laptop", "phone")
	d := mustOpen(t, homes[0], ns, "log")
	d.SnapshotEvery = 4
	const n = 300
	for i := range n {
		if err := d.Change(func(tx *Tx) error { return tx.Append(Path{"lines"}, noiseLine(i)) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	snaps, _ := homes[0].GetPrivate(ns, SnapshotPath("log"))
	changes, _ := homes[0].ListPrivate(ns, ChangePrefix("log"), 0)
	if len(snaps) != 1 || len(changes) >= n-4 {
		t.Fatalf("%d snapshots and %d of %d changes left: no compaction ran", len(snaps), len(changes), n)
	}
	want, wantHeads := docState(t, d)
	assertSameDoc(t, "reopened", mustOpen(t, homes[0], ns, "log"), want, wantHeads)
	if lines, _ := jsonOf(t, d, nil)["lines"].([]any); len(lines) != n {
		t.Fatalf("%d lines, want %d", len(lines), n)
	}
}

// A background snapshot that fails (here the device's blob store, which a
// snapshot over 1 KiB needs, is closed) keeps every change, is reported by
// Flush, and is not tried again by every following change.
func TestFailedSnapshotIsReportedOnce(t *testing.T) {
	homes, ns := agentDevices(t, "laptop")
	d := mustOpen(t, homes[0], ns, "journal")
	d.SnapshotEvery = 12 // twelve lines save to over 1 KiB: a blob
	if err := homes[0].Blobs.Close(); err != nil {
		t.Fatal(err)
	}
	change := func(i int) {
		t.Helper()
		if err := d.Change(func(tx *Tx) error { return tx.Append(Path{"lines"}, noiseLine(i)) }); err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
	}
	for i := range 12 {
		change(i)
	}
	if err := d.Flush(); err == nil || !strings.Contains(err.Error(), "snapshot") {
		t.Fatalf("Flush after a failed snapshot: %v, want the snapshot's error", err)
	}
	for i := 12; i < 16; i++ {
		change(i)
	}
	if err := d.Flush(); err != nil {
		t.Fatalf("a snapshot was tried again at once: %v", err)
	}
	if changes, err := homes[0].ListPrivate(ns, ChangePrefix("journal"), 0); err != nil || len(changes) != 16 {
		t.Fatalf("%d changes stored (%v), want all 16", len(changes), err)
	}
}

// A device that opens the document anew for each change (the CLI) still
// compacts: its own changes are counted from the vault at open.
func TestOpenCountsOwnChanges(t *testing.T) {
	homes, ns := agentDevices(t, "laptop")
	for i := range 6 {
		d := mustOpen(t, homes[0], ns, "log")
		d.SnapshotEvery = 4
		mustChange(t, d, func(tx *Tx) error { return tx.Append(Path{"lines"}, i) })
	}
	changes, _ := homes[0].ListPrivate(ns, ChangePrefix("log"), 0)
	if len(changes) != 2 {
		t.Fatalf("%d changes left after 6 changes through fresh handles, want 2 (the fourth compacted)", len(changes))
	}
}

// A device's snapshot is marked read when it is written: the next snapshot
// or refresh does not load the whole document back from it.
func TestOwnSnapshotIsNotReadBack(t *testing.T) {
	homes, ns := agentDevices(t, "laptop")
	d := mustOpen(t, homes[0], ns, "log")
	d.SnapshotEvery = 3
	for i := range 7 {
		mustChange(t, d, func(tx *Tx) error { return tx.Append(Path{"lines"}, i) })
	}
	snaps, err := homes[0].GetPrivate(ns, SnapshotPath("log"))
	if err != nil || len(snaps) != 1 {
		t.Fatalf("%d snapshots (%v), want 1", len(snaps), err)
	}
	d.mu.Lock()
	read := d.read[snaps[0].Entry.Hash]
	d.mu.Unlock()
	if !read {
		t.Fatal("the device's own snapshot is not marked read: the next snapshot loads it back")
	}
	if lines, _ := jsonOf(t, mustOpen(t, homes[0], ns, "log"), nil)["lines"].([]any); len(lines) != 7 {
		t.Fatalf("reopened: %d lines, want 7", len(lines))
	}
}

// A document opened from a snapshot (the snapshot becomes the document)
// takes changes as this device: they are stored, read back on a reopen and
// read by another device, with nothing skipped.
func TestChangeAfterOpenFromSnapshot(t *testing.T) {
	homes, ns := agentDevices(t, "laptop", "phone")
	seed, _ := startSeed(t, ns)
	d := mustOpen(t, homes[0], ns, "log")
	for i := range 3 {
		mustChange(t, d, func(tx *Tx) error { return tx.Append(Path{"lines"}, i) })
	}
	if err := d.Snapshot(); err != nil {
		t.Fatal(err)
	}
	again := mustOpen(t, homes[0], ns, "log")
	mustChange(t, again, func(tx *Tx) error { return tx.Append(Path{"lines"}, 3) })
	want, wantHeads := docState(t, again)
	assertSameDoc(t, "reopened after a change", mustOpen(t, homes[0], ns, "log"), want, wantHeads)
	syncWith(t, homes[0], ns, seed)
	syncWith(t, homes[1], ns, seed)
	phone := mustOpen(t, homes[1], ns, "log")
	assertSameDoc(t, "the phone", phone, want, wantHeads)
	if lines, _ := jsonOf(t, phone, nil)["lines"].([]any); len(lines) != 4 {
		t.Fatalf("the phone's document: %s", want)
	}
}
