//go:build cgo

package interop

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/state"
)

// TestAutomergeJS: a document written through the Go SDK opens in
// @automerge/automerge (npm, pinned) with the same JSON; a change made in
// JS while Go made one of its own merges into the Go document, and other
// devices read the merge from the vault.
func TestAutomergeJS(t *testing.T) {
	if testing.Short() {
		t.Skip("installs @automerge/automerge from npm")
	}
	nodeBin := requireTool(t, "node")
	modules := npmModules(t)

	h, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	a, err := h.InitAgent("laptop")
	if err != nil {
		t.Fatal(err)
	}
	d, err := state.Open(h, a.Namespace, "profile")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Change(func(tx *state.Tx) error {
		return tx.Set(nil, map[string]any{"name": "Ada", "bio": "writes engines", "tags": []any{"go"},
			"prefs": map[string]any{"theme": "dark", "size": 1.5, "on": true, "none": nil}})
	}); err != nil {
		t.Fatal(err)
	}
	if err := d.Change(func(tx *state.Tx) error { return tx.Increment(state.Path{"visits"}, 3) }); err != nil {
		t.Fatal(err)
	}
	saved, err := d.Save()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.automerge"), filepath.Join(dir, "out.automerge")
	if err := os.WriteFile(in, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	// Node resolves packages from the script's directory upwards: run a
	// copy of the script beside the cached modules.
	src, err := os.ReadFile(filepath.Join("js", "automerge-doc.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(filepath.Dir(modules), "automerge-doc-"+strconv.Itoa(os.Getpid())+".mjs")
	if err := os.WriteFile(script, src, 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(script)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stdout, err := exec.CommandContext(ctx, nodeBin, script, in, out).Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderrOf(err))
	}
	var js struct {
		JSON any `json:"json"`
	}
	if err := json.Unmarshal(stdout, &js); err != nil {
		t.Fatalf("node printed %q: %v", stdout, err)
	}
	goJSON := jsonValue(t, d, nil)
	if !reflect.DeepEqual(js.JSON, goJSON) {
		t.Fatalf("JS reads %v\nGo reads %v", js.JSON, goJSON)
	}

	// Concurrently with JS, Go appends too; then the JS save merges in.
	if err := d.Change(func(tx *state.Tx) error { return tx.Append(state.Path{"tags"}, "from-go") }); err != nil {
		t.Fatal(err)
	}
	fromJS, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Import(fromJS); err != nil {
		t.Fatal(err)
	}
	reopened, err := state.Open(h, a.Namespace, "profile")
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range []*state.Document{d, reopened} {
		got := jsonValue(t, doc, nil).(map[string]any)
		tags, _ := got["tags"].([]any)
		if len(tags) != 3 || got["bio"] != "js: writes engines" || got["visits"] != 13.0 ||
			!reflect.DeepEqual(got["js"], map[string]any{"ok": true, "n": 2.0}) {
			t.Fatalf("after the JS change merged: %v", got)
		}
	}
}

func jsonValue(t *testing.T, d *state.Document, p state.Path) any {
	t.Helper()
	raw, err := d.JSON(p)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
