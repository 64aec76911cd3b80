//go:build cgo

package state

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/seednode/client"
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
