//go:build cgo

package state

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// TestOfflineEditsConverge: three devices edit one document while offline
// (maps, a list, text, a counter), sync through a seed in different orders,
// and end with equal heads and equal JSON that keeps every edit; the seed's
// data directory holds no field name or value.
func TestOfflineEditsConverge(t *testing.T) {
	homes, ns := agentDevices(t, "laptop", "phone", "tablet")
	seed, seedDir := startSeed(t, ns)
	laptop := mustOpen(t, homes[0], ns, "profile")
	mustChange(t, laptop, func(tx *Tx) error {
		return tx.Set(nil, map[string]any{"nickname": "zebra-owl", "bio": "quiet harbour", "tags": []any{"first"}, "settings": map[string]any{}})
	})
	for _, h := range homes {
		syncWith(t, h, ns, seed)
	}
	docs := []*Document{laptop, mustOpen(t, homes[1], ns, "profile"), mustOpen(t, homes[2], ns, "profile")}
	edits := []func(*Tx) error{
		func(tx *Tx) error { // laptop
			return firstErr(tx.Set(Path{"nickname"}, "marble-fox"), tx.Append(Path{"tags"}, "lapis"),
				tx.EditText(Path{"bio"}, 0, 0, "a "), tx.Increment(Path{"visits"}, 1))
		},
		func(tx *Tx) error { // phone
			end, err := tx.TextLen(Path{"bio"})
			return firstErr(err, tx.Set(ParsePath("settings.palette"), "umber-glow"), tx.Append(Path{"tags"}, "ochre"),
				tx.EditText(Path{"bio"}, end, 0, " at dawn"), tx.Increment(Path{"visits"}, 2))
		},
		func(tx *Tx) error { // tablet
			return firstErr(tx.MergePatch(nil, map[string]any{"settings": map[string]any{"locale": "kestrel"}}),
				tx.Append(Path{"tags"}, "sienna"), tx.Increment(Path{"visits"}, 4))
		},
	}
	// Each device edits twice, offline; the counter is made by all three at
	// once the first time (concurrent creations: one wins), so the second
	// round's increments are what must all count.
	for round := range 2 {
		for i, d := range docs {
			if round == 1 && i == 2 {
				mustChange(t, d, func(tx *Tx) error { return tx.Increment(Path{"visits"}, 4) })
				continue
			}
			mustChange(t, d, edits[i])
		}
		for _, order := range [][]int{{1, 0, 2}, {2, 1, 0}} {
			for _, i := range order {
				syncWith(t, homes[i], ns, seed)
			}
		}
		for _, d := range docs {
			if err := d.Refresh(); err != nil {
				t.Fatal(err)
			}
		}
	}
	var first string
	var firstHeads []string
	for i, d := range docs {
		if err := d.Refresh(); err != nil {
			t.Fatal(err)
		}
		if p := d.Problems(); len(p) > 0 || d.Waiting() > 0 {
			t.Fatalf("device %d: problems %v, %d waiting", i, p, d.Waiting())
		}
		raw, _ := d.JSON(nil)
		heads, _ := d.Heads()
		if i == 0 {
			first, firstHeads = string(raw), heads
			continue
		}
		if string(raw) != first || !slices.Equal(heads, firstHeads) {
			t.Fatalf("device %d differs:\n%s %v\nvs\n%s %v", i, raw, heads, first, firstHeads)
		}
	}
	got := jsonOf(t, docs[0], nil)
	tags, _ := got["tags"].([]any)
	if len(tags) != 6 || tags[0] != "first" {
		t.Fatalf("tags %v: want first and two of each device's", tags)
	}
	if bio := got["bio"]; bio != "a a quiet harbour at dawn at dawn" {
		t.Fatalf("bio %q: want both devices' text edits", bio)
	}
	settings, _ := got["settings"].(map[string]any)
	if settings["palette"] != "umber-glow" || settings["locale"] != "kestrel" {
		t.Fatalf("settings %v: want both devices' keys", settings)
	}
	// The counter made concurrently by all three holds one creator's value,
	// and the second round's increments (1+2+4) all count.
	if v, _ := got["visits"].(float64); !slices.Contains([]float64{8, 9, 11}, v) {
		t.Fatalf("visits %v: want 1, 2 or 4 plus 7", got["visits"])
	}
	// A fresh open reads the same document.
	again := mustOpen(t, homes[1], ns, "profile")
	if raw, _ := again.JSON(nil); string(raw) != first {
		t.Fatalf("reopened: %s, want %s", raw, first)
	}
	assertSeedBlind(t, seedDir, "nickname", "marble-fox", "zebra-owl", "harbour", "umber-glow", "palette", "kestrel", "lapis", "ochre", "sienna", "visits", "profile")
}

// assertSeedBlind fails if any file under dir contains one of words.
func assertSeedBlind(t *testing.T, dir string, words ...string) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, w := range words {
			if bytes.Contains(raw, []byte(w)) {
				t.Errorf("the seed's %s contains %q", strings.TrimPrefix(path, dir), w)
			}
		}
		return nil
	})
	if err != nil || files == 0 {
		t.Fatalf("walk the seed's data: %v (%d files)", err, files)
	}
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// TestLiveChangeArrives: a device watching a document in a live session
// sees another device's change merged.
func TestLiveChangeArrives(t *testing.T) {
	homes, ns := agentDevices(t, "laptop", "phone")
	seed, _ := startSeed(t, ns)
	laptop := mustOpen(t, homes[0], ns, "prefs")
	mustChange(t, laptop, func(tx *Tx) error { return tx.Set(Path{"theme"}, "light") })
	syncWith(t, homes[0], ns, seed)
	syncWith(t, homes[1], ns, seed)
	phone := mustOpen(t, homes[1], ns, "prefs")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() { _, _ = homes[1].Sync(ctx, ns, seed, client.SyncOptions{Live: true}) }()
	seen := make(chan string, 16)
	go func() {
		_ = phone.Watch(ctx, func() {
			raw, _ := phone.JSON(Path{"theme"})
			seen <- string(raw)
		})
	}()
	// The live session may still be connecting: keep writing until one arrives.
	for i := 0; ; i++ {
		mustChange(t, laptop, func(tx *Tx) error { return tx.Set(Path{"theme"}, "dark") })
		syncWith(t, homes[0], ns, seed)
		select {
		case v := <-seen:
			if v != `"dark"` {
				t.Fatalf("the watcher saw theme %s", v)
			}
			return
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
			t.Fatal("no change reached the live watcher")
		}
	}
}

// TestLiveSessionBringsACompactedDocument: a device that goes live only
// after another compacted (its snapshot, a blob, covers changes that are
// deleted) gets the snapshot's blob in the live session and its watcher
// ends with the whole document.
func TestLiveSessionBringsACompactedDocument(t *testing.T) {
	homes, ns := agentDevices(t, "laptop", "phone")
	seed, _ := startSeed(t, ns)
	syncWith(t, homes[0], ns, seed)
	syncWith(t, homes[1], ns, seed) // the phone knows the agent, not the journal
	laptop := mustOpen(t, homes[0], ns, "journal")
	laptop.SnapshotEvery = 8
	for i := range 10 {
		line := noiseLine(i)
		mustChange(t, laptop, func(tx *Tx) error { return tx.Append(Path{"lines"}, line) })
	}
	syncWith(t, homes[0], ns, seed)
	want, wantHeads := docState(t, laptop)
	phone := mustOpen(t, homes[1], ns, "journal")
	watchLiveUntil(t, homes[1], phone, ns, seed, want)
	assertSameDoc(t, "the phone", phone, want, wantHeads)
	if n := phone.AwaitingBlobs(); n != 0 || len(phone.Problems()) > 0 {
		t.Fatalf("the whole document, with %d entries awaiting blobs and problems %v", n, phone.Problems())
	}
}

// watchLiveUntil syncs d's vault live with seed and watches d until its
// JSON is want, or fails after a minute saying what d still waits for.
func watchLiveUntil(t *testing.T, h *client.Home, d *Document, ns vault.NamespaceID, seed, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seen := make(chan string, 64)
	go func() {
		_ = d.Watch(ctx, func() {
			raw, _ := d.JSON(nil)
			seen <- string(raw)
		})
	}()
	go func() { _, _ = h.Sync(ctx, ns, seed, client.SyncOptions{Live: true}) }()
	for {
		select {
		case got := <-seen:
			if got == want {
				return
			}
		case <-ctx.Done():
			d.mu.Lock()
			held := len(d.held)
			d.mu.Unlock()
			t.Fatalf("the live watcher never saw the whole document (%d snapshots held, %d entries await their blob, problems %v)", held, d.AwaitingBlobs(), d.Problems())
		}
	}
}

// noiseLine is a line of text that does not compress (Automerge's save()
// does): a snapshot of a few dozen of them is over 1 KiB, so a blob.
func noiseLine(i int) string {
	r := rand.New(rand.NewPCG(uint64(i), 99))
	b := make([]byte, 96)
	for j := range b {
		b[j] = byte(r.Uint32())
	}
	return fmt.Sprintf("line %d: %s", i, base64.StdEncoding.EncodeToString(b))
}

// TestServingDeviceFetchesASnapshot: a device that serves gets the blob of
// a snapshot another device syncs to it directly, and reads the whole
// document.
func TestServingDeviceFetchesASnapshot(t *testing.T) {
	homes, ns := agentDevices(t, "laptop", "phone")
	seed, _ := startSeed(t, ns)
	syncWith(t, homes[0], ns, seed)
	syncWith(t, homes[1], ns, seed)
	addr, _ := serve(t, homes[0], ns)
	phone := mustOpen(t, homes[1], ns, "journal")
	phone.SnapshotEvery = 8
	for i := range 10 {
		line := noiseLine(i)
		mustChange(t, phone, func(tx *Tx) error { return tx.Append(Path{"lines"}, line) })
	}
	want, wantHeads := docState(t, phone)
	syncWith(t, homes[1], ns, addr)
	laptop := mustOpen(t, homes[0], ns, "journal")
	if n := laptop.AwaitingBlobs(); n != 0 {
		t.Fatalf("%d entries wait for their blob on the serving device", n)
	}
	assertSameDoc(t, "the serving laptop", laptop, want, wantHeads)
}

// TestStateCompaction: a device that writes its snapshot deletes its own
// change entries the snapshot covers with one tombstone; a device that
// synced before the compaction and one that syncs only after it end with
// the same document, and a change made after the compaction survives and
// syncs.
func TestStateCompaction(t *testing.T) {
	homes, ns := agentDevices(t, "laptop", "phone", "tablet")
	seed, _ := startSeed(t, ns)
	laptop := mustOpen(t, homes[0], ns, "journal")
	laptop.SnapshotEvery = 32
	// Lines long enough that the snapshot is over 1 KiB: a blob, which
	// the other devices must fetch (the changes it covers are deleted).
	appendLines := func(d *Document, from, to int) {
		for i := from; i < to; i++ {
			line := noiseLine(i)
			mustChange(t, d, func(tx *Tx) error { return tx.Append(Path{"lines"}, line) })
		}
	}
	appendLines(laptop, 0, 20)
	syncWith(t, homes[0], ns, seed)
	syncWith(t, homes[1], ns, seed) // the phone syncs before the compaction
	phone := mustOpen(t, homes[1], ns, "journal")
	mustChange(t, phone, func(tx *Tx) error { return tx.Set(Path{"owner"}, "phone") })
	syncWith(t, homes[1], ns, seed)
	syncWith(t, homes[0], ns, seed)
	if err := laptop.Refresh(); err != nil {
		t.Fatal(err)
	}
	if n := ownEntries(t, laptop); n != 20 {
		t.Fatalf("before the compaction the laptop holds %d entries of its own, want 20", n)
	}
	appendLines(laptop, 20, 34) // the 32nd change writes the snapshot and compacts
	if n := ownEntries(t, laptop); n != 4 {
		t.Fatalf("after the compaction the laptop holds %d entries of its own, want 4 (snapshot, tombstone, 2 changes)", n)
	}
	want, wantHeads := docState(t, laptop)
	if lines, _ := jsonOf(t, laptop, nil)["lines"].([]any); len(lines) != 34 {
		t.Fatalf("the laptop's document: %s", want)
	}
	// Opening from the snapshots and remaining changes reads the same.
	assertSameDoc(t, "the laptop reopened", mustOpen(t, homes[0], ns, "journal"), want, wantHeads)
	for _, i := range []int{0, 1, 2} {
		syncWith(t, homes[i], ns, seed)
	}
	if err := phone.Refresh(); err != nil {
		t.Fatal(err)
	}
	assertSameDoc(t, "the phone, synced before and after", phone, want, wantHeads)
	assertSameDoc(t, "the phone reopened", mustOpen(t, homes[1], ns, "journal"), want, wantHeads)
	if n := ownEntriesOf(t, homes[1], laptop); n != 4 {
		t.Fatalf("the phone holds %d of the laptop's entries, want 4", n)
	}
	tablet := mustOpen(t, homes[2], ns, "journal") // synced only after the compaction
	assertSameDoc(t, "the tablet", tablet, want, wantHeads)
	// A change after the compaction is dated after the tombstone, survives
	// and syncs.
	mustChange(t, laptop, func(tx *Tx) error { return tx.Set(Path{"after"}, "compaction") })
	if n := ownEntries(t, laptop); n != 5 {
		t.Fatalf("after a new change the laptop holds %d entries of its own, want 5", n)
	}
	want, wantHeads = docState(t, laptop)
	syncWith(t, homes[0], ns, seed)
	for i, d := range []*Document{phone, tablet} {
		syncWith(t, homes[i+1], ns, seed)
		if err := d.Refresh(); err != nil {
			t.Fatal(err)
		}
		assertSameDoc(t, "a device after the new change", d, want, wantHeads)
	}
	if got := jsonOf(t, tablet, nil); got["after"] != "compaction" || got["owner"] != "phone" {
		t.Fatalf("the tablet: %v", got)
	}
}

// ownEntries counts the entries (values and tombstones) of d's device for
// d's document in its own store.
func ownEntries(t *testing.T, d *Document) int {
	t.Helper()
	return ownEntriesOf(t, d.h, d)
}

// ownEntriesOf counts the entries of d's device for d's document in h's store.
func ownEntriesOf(t *testing.T, h *client.Home, d *Document) int {
	t.Helper()
	n := 0
	err := h.Store.ForEach(d.ns, func(e *vault.SignedEntry) error {
		if e.Author == d.h.Author() && (bytes.Equal(e.Key, d.snapshotKey) || bytes.HasPrefix(e.Key, d.changePrefix)) {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func docState(t *testing.T, d *Document) (string, []string) {
	t.Helper()
	raw, err := d.JSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	heads, err := d.Heads()
	if err != nil {
		t.Fatal(err)
	}
	return string(raw), heads
}

func assertSameDoc(t *testing.T, what string, d *Document, want string, wantHeads []string) {
	t.Helper()
	if p := d.Problems(); len(p) > 0 || d.Waiting() > 0 {
		t.Fatalf("%s: problems %v, %d waiting", what, p, d.Waiting())
	}
	raw, heads := docState(t, d)
	if raw != want || !slices.Equal(heads, wantHeads) {
		t.Fatalf("%s:\n%s %v\nwant\n%s %v", what, raw, heads, want, wantHeads)
	}
}

// TestStateCompactionKeepsOtherHandles: a snapshot written by one handle
// of a device covers a change another handle of the device stored, which
// the first had not read, and the compaction keeps the document whole.
func TestStateCompactionKeepsOtherHandles(t *testing.T) {
	homes, ns := agentDevices(t, "laptop")
	a := mustOpen(t, homes[0], ns, "notes")
	mustChange(t, a, func(tx *Tx) error { return tx.Set(Path{"a"}, 1) })
	b := mustOpen(t, homes[0], ns, "notes")
	mustChange(t, b, func(tx *Tx) error { return tx.Set(Path{"b"}, 2) })
	if err := a.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if n := ownEntries(t, a); n != 2 {
		t.Fatalf("after the snapshot the device holds %d entries of the document, want 2 (snapshot, tombstone)", n)
	}
	got := jsonOf(t, mustOpen(t, homes[0], ns, "notes"), nil)
	if got["a"] != float64(1) || got["b"] != float64(2) {
		t.Fatalf("reopened after the compaction: %v", got)
	}
}

// A snapshot a live feed brings, holding changes the document lacks, is
// held back while those changes are on their way, and dropped unmerged
// once they arrive as change entries.
func TestFeedSnapshotWaitsForItsChanges(t *testing.T) {
	homes, ns := agentDevices(t, "laptop", "phone")
	laptop := mustOpen(t, homes[0], ns, "log")
	laptop.SnapshotEvery = -1
	for i := range 3 {
		mustChange(t, laptop, func(tx *Tx) error { return tx.Append(Path{"lines"}, i) })
	}
	copyItems := func(items []vault.Item) {
		t.Helper()
		if _, err := homes[1].Store.Insert(items, 0, true); err != nil {
			t.Fatal(err)
		}
	}
	all, _ := homes[0].Store.List(ns, nil, 0)
	copyItems(all)
	phone := mustOpen(t, homes[1], ns, "log")
	before, _ := homes[0].Store.List(ns, nil, 0)
	for i := 3; i < 6; i++ {
		mustChange(t, laptop, func(tx *Tx) error { return tx.Append(Path{"lines"}, i) })
	}
	after, _ := homes[0].Store.List(ns, nil, 0)
	var newChanges []vault.Item
	for _, it := range after {
		if !slices.ContainsFunc(before, func(b vault.Item) bool { return b.Entry.Hash == it.Entry.Hash }) {
			newChanges = append(newChanges, it)
		}
	}
	if err := laptop.Snapshot(); err != nil {
		t.Fatal(err)
	}
	snaps, _ := homes[0].GetPrivate(ns, SnapshotPath("log"))
	if len(snaps) != 1 || snaps[0].Blob {
		t.Fatalf("%d snapshots (want one, inline)", len(snaps))
	}
	snapItems, _ := homes[0].Store.Get(ns, snaps[0].Entry.Key)
	copyItems(snapItems)
	if err := phone.applyItems(snapItems); err != nil {
		t.Fatal(err)
	}
	if n := len(phone.held); n != 1 {
		t.Fatalf("%d snapshots held, want the one whose changes are on their way", n)
	}
	if lines, _ := jsonOf(t, phone, nil)["lines"].([]any); len(lines) != 3 {
		t.Fatalf("%d lines before the changes arrive, want 3 (the snapshot is held)", len(lines))
	}
	copyItems(newChanges)
	if err := phone.applyItems(newChanges); err != nil {
		t.Fatal(err)
	}
	if n := len(phone.held); n != 0 {
		t.Fatalf("%d snapshots still held once their changes arrived", n)
	}
	want, wantHeads := docState(t, laptop)
	assertSameDoc(t, "the phone", phone, want, wantHeads)
}

// A held snapshot whose changes never come (the other device compacted
// them before this one synced) is merged after snapshotGrace: a live
// watcher of a document that had its first changes ends with all of it.
func TestHeldSnapshotMergesWhenItsChangesAreGone(t *testing.T) {
	homes, ns := agentDevices(t, "laptop", "phone")
	seed, _ := startSeed(t, ns)
	laptop := mustOpen(t, homes[0], ns, "journal")
	laptop.SnapshotEvery = 8
	for i := range 3 {
		mustChange(t, laptop, func(tx *Tx) error { return tx.Append(Path{"lines"}, noiseLine(i)) })
	}
	syncWith(t, homes[0], ns, seed)
	syncWith(t, homes[1], ns, seed)
	phone := mustOpen(t, homes[1], ns, "journal")
	for i := 3; i < 10; i++ { // the 8th change compacts the first 8
		mustChange(t, laptop, func(tx *Tx) error { return tx.Append(Path{"lines"}, noiseLine(i)) })
	}
	syncWith(t, homes[0], ns, seed)
	want, wantHeads := docState(t, laptop)
	watchLiveUntil(t, homes[1], phone, ns, seed, want)
	assertSameDoc(t, "the phone", phone, want, wantHeads)
}
