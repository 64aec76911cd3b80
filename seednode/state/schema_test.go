//go:build cgo

package state

import (
	"encoding/json"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/automerge/automerge-go"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// The embedded schema files are JSON Schemas of draft 2020-12 (compiling
// checks each against the draft's metaschema), and every file is a
// standard document's.
func TestSchemaFilesAreValid(t *testing.T) {
	files, err := fs.Glob(schemaFiles, "schemas/*.json")
	if err != nil || len(files) != len(StandardSchemas) {
		t.Fatalf("schema files %v (%v), want one per standard document %v", files, err, StandardSchemas)
	}
	for _, s := range StandardSchemas {
		text, err := SchemaFile(s.File)
		if err != nil {
			t.Fatal(err)
		}
		var head struct {
			Schema string `json:"$schema"`
			ID     string `json:"$id"`
		}
		if err := json.Unmarshal(text, &head); err != nil || head.Schema != "https://json-schema.org/draft/2020-12/schema" || head.ID == "" {
			t.Errorf("%s: $schema %q, $id %q (%v): want draft 2020-12 and an $id", s.File, head.Schema, head.ID, err)
		}
		if _, err := CompileSchema(s.Pattern, text); err != nil {
			t.Errorf("%s: %v", s.File, err)
		}
		if sch, err := SchemaFor(strings.Replace(s.Pattern, "*", "c1", 1)); err != nil || sch == nil || sch.Pattern() != s.Pattern {
			t.Errorf("the schema of %s: %v, %v", s.Pattern, sch, err)
		}
	}
	// A schema that is not one is refused, naming what is wrong.
	for _, bad := range []string{`{"type": "objekt"}`, `{"properties": []}`, `not json`, `{"$ref": "other.json"}`} {
		if _, err := CompileSchema("x", []byte(bad)); err == nil {
			t.Errorf("schema %s compiled", bad)
		}
	}
}

// change is one write of the README's examples (or a bad one).
type change struct {
	doc string
	fn  func(tx *Tx) error
}

func set(doc, path, value string) change {
	return change{doc, func(tx *Tx) error { return tx.Set(ParsePath(path), json.RawMessage(value)) }}
}

func appendTo(doc, path, value string) change {
	return change{doc, func(tx *Tx) error { return tx.Append(ParsePath(path), json.RawMessage(value)) }}
}

func patch(doc, value string) change {
	return change{doc, func(tx *Tx) error { return tx.MergePatch(nil, json.RawMessage(value)) }}
}

func del(doc, path string) change {
	return change{doc, func(tx *Tx) error { return tx.Delete(ParsePath(path)) }}
}

// Each standard schema accepts what the README's examples write, and
// fields apps add of their own.
func TestStandardSchemasAcceptExamples(t *testing.T) {
	homes, ns := agentDevices(t, "laptop")
	good := []change{
		set("profile", "name", `"Ada"`),
		set("profile", "nickname", `"ada"`),
		{"profile", func(tx *Tx) error { return tx.Increment(Path{"visits"}, 2) }},
		{"profile", func(tx *Tx) error { return tx.EditText(Path{"bio"}, 0, 0, "Hello, ") }},
		del("profile", "nickname"),
		set("profile", "app.example.badge", `{"level": 3}`), // an app's own member
		set("preferences", "ui.theme", `"dark"`),
		patch("preferences", `{"ui":{"lang":"en","font":null}}`),
		patch("preferences", `{"notifications":{"enabled":true,"quiet_hours":{"from":"22:00","to":"07:30"}}}`),
		set("preferences", "editor", `{"tabs": 4}`), // an app's own group
		appendTo("conversations/c1", "messages", `{"from":"ada","text":"hi"}`),
		appendTo("conversations/c1", "messages", `{"from":"bot","text":"hello","at":"2026-05-01T10:00:00Z","model":"x"}`),
		set("conversations/c1", "messages.1.text", `"hello, Ada"`),
		set("conversations/2026-05-01", ".", `{"title":"May Day","messages":[{"from":"ada","attachments":[{"hash":"`+strings.Repeat("ab", 32)+`","size":3}]}]}`),
		set("tools", "tools.search", `{"description":"web search","enabled":true,"input_schema":{"type":"object"}}`),
		set("tools", "skills.summarize", `{"instructions":"Keep it short.","tools":["search"]}`),
		set("tools", "tools.search.config.region", `"eu"`),
	}
	for i, c := range good {
		d := mustOpen(t, homes[0], ns, c.doc)
		if err := d.Change(c.fn); err != nil {
			t.Errorf("example %d on %s: %v", i, c.doc, err)
		}
	}
	got := jsonOf(t, mustOpen(t, homes[0], ns, "profile"), nil)
	if got["name"] != "Ada" || got["visits"] != float64(2) || got["bio"] != "Hello, " {
		t.Fatalf("profile %v", got)
	}
	// Checked where they wrote, the writes left documents that match as
	// a whole.
	for _, name := range []string{"profile", "preferences", "conversations/c1", "conversations/2026-05-01", "tools"} {
		assertWholeMatch(t, mustOpen(t, homes[0], ns, name))
	}
}

// assertWholeMatch fails unless the whole document matches its schema.
func assertWholeMatch(t *testing.T, d *Document) {
	t.Helper()
	sch, err := SchemaFor(d.Name())
	if err != nil || sch == nil {
		t.Fatalf("the schema of %s: %v", d.Name(), err)
	}
	if found, err := validateDoc(d.doc, sch); err != nil || len(found) > 0 {
		t.Errorf("%s as a whole: %v, %v", d.Name(), found, err)
	}
}

// wholeMismatches applies fn to a copy of d and validates the whole result.
func wholeMismatches(t *testing.T, d *Document, fn func(*Tx) error) []mismatch {
	t.Helper()
	heads := d.doc.Heads()
	fork, err := d.doc.Fork(heads...)
	if err != nil {
		t.Fatal(err)
	}
	if err := fn(&Tx{doc: fork}); err != nil {
		t.Fatal(err)
	}
	sch, _ := SchemaFor(d.Name())
	found, err := validateDoc(fork, sch)
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// Each standard schema refuses a bad value, naming the field and what it
// expected; nothing is stored.
func TestStandardSchemasRefuse(t *testing.T) {
	homes, ns := agentDevices(t, "laptop")
	setup := []change{
		appendTo("conversations/c1", "messages", `{"from":"ada","text":"hi"}`),
		set("tools", "tools.search", `{"enabled":true}`),
		set("preferences", "ui.theme", `"dark"`),
	}
	for _, c := range setup {
		mustChange(t, mustOpen(t, homes[0], ns, c.doc), c.fn)
	}
	for _, tc := range []struct {
		change
		field, want string
	}{
		{set("profile", "visits", `"many"`), "visits", "want integer"},
		{set("profile", "name", `{"first":"Ada"}`), "name", "want string"},
		{set("profile", "links.home", `7`), "links.home", "want string"},
		{set("preferences", "ui.theme", `5`), "ui.theme", "want string"},
		{patch("preferences", `{"ui":{"lang":"english!"}}`), "ui.lang", "does not match pattern"},
		{set("preferences", "autosave", `true`), "autosave", "want object"},
		{set("preferences", "notifications.quiet_hours.since", `"22:00"`), "notifications.quiet_hours", "additional properties 'since' not allowed"},
		{appendTo("conversations/c1", "messages", `{"text":"who?"}`), "messages.1", "missing property 'from'"},
		{appendTo("conversations/c1", "messages", `{"from":"ada","at":"yesterday"}`), "messages.1.at", "date-time"},
		{del("conversations/c1", "messages.0.from"), "messages.0", "missing property 'from'"},
		{set("conversations/c1", "messages", `"none"`), "messages", "want array"},
		{set("conversations/c1", ".", `{"messages":[{"from":""}]}`), "messages.0.from", "minLength"},
		{set("tools", "tools.search.enabled", `"yes"`), "tools.search.enabled", "want boolean"},
		{set("tools", "tools.bad name", `{}`), "tools.bad name", "property name"},
		{set("tools", "skills.s.tools", `["ok", 5]`), "skills.s.tools.1", "want string"},
	} {
		d := mustOpen(t, homes[0], ns, tc.doc)
		// Validating the whole result finds the same field (the validator
		// places a bad property name nowhere in particular).
		whole := wholeMismatches(t, d, tc.fn)
		if !slices.ContainsFunc(whole, func(m mismatch) bool { return fieldName(m.pointer) == tc.field || tc.want == "property name" }) {
			t.Errorf("%s: the whole document's mismatches %v do not name %s", tc.doc, whole, tc.field)
		}
		err := d.Change(tc.fn)
		var ie *InvalidError
		if !errors.As(err, &ie) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want an InvalidError", tc.doc, err)
			continue
		}
		if fieldName(ie.Pointer) != tc.field || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "at "+tc.field+":") {
			t.Errorf("%s: %q (field %s), want the field %s and %q", tc.doc, err, ie.Pointer, tc.field, tc.want)
		}
	}
}

// storeState is every entry of the vault and the document's JSON and heads.
func storeState(t *testing.T, h *client.Home, ns vault.NamespaceID, d *Document) string {
	t.Helper()
	var keys []string
	err := h.Store.ForEach(ns, func(e *vault.SignedEntry) error {
		keys = append(keys, string(e.Key)+string(e.Hash[:]))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	raw, heads := docState(t, d)
	return strings.Join(keys, "|") + raw + strings.Join(heads, ",")
}

// A refused write leaves the document and the vault as they were (no
// entry stored), and the next good write works and is stored.
func TestRefusedWriteStoresNothing(t *testing.T) {
	homes, ns := agentDevices(t, "laptop")
	h := homes[0]
	d := mustOpen(t, h, ns, "conversations/c1")
	mustChange(t, d, func(tx *Tx) error { return tx.Append(Path{"messages"}, map[string]any{"from": "ada", "text": "hi"}) })
	before := storeState(t, h, ns, d)
	for _, bad := range []func(tx *Tx) error{
		func(tx *Tx) error { return tx.Append(Path{"messages"}, map[string]any{"text": "no sender"}) },
		func(tx *Tx) error { // a good op and a bad one: the whole transaction goes
			return firstErr(tx.Set(Path{"title"}, "kept out"), tx.Set(ParsePath("messages.0.from"), 42))
		},
	} {
		if err := d.Change(bad); !errors.Is(err, ErrInvalid) {
			t.Fatalf("bad write: %v", err)
		}
		if after := storeState(t, h, ns, d); after != before {
			t.Fatal("a refused write changed the document or the vault")
		}
	}
	if after := storeState(t, h, ns, mustOpen(t, h, ns, "conversations/c1")); after != before {
		t.Fatal("reopened after a refused write: the document differs")
	}
	mustChange(t, d, func(tx *Tx) error { return tx.Append(Path{"messages"}, map[string]any{"from": "bot", "text": "yes"}) })
	if got, _ := mustOpen(t, h, ns, "conversations/c1").JSON(ParsePath("messages.1.from")); string(got) != `"bot"` {
		t.Fatalf("the write after a refused one: %s", got)
	}
}

// An app registers a schema for its own documents; the standard ones keep
// theirs, and a document without a schema takes anything.
func TestAppSchema(t *testing.T) {
	homes, ns := agentDevices(t, "laptop")
	journal := []byte(`{
		"type": "object",
		"required": ["owner"],
		"properties": {"owner": {"type": "string"}, "entries": {"type": "array", "items": {"type": "object", "required": ["day"], "properties": {"day": {"type": "string", "format": "date"}}}}}
	}`)
	if err := RegisterSchema("example.journal/*", journal); err != nil {
		t.Fatal(err)
	}
	for _, pattern := range []string{"profile", "conversations/*", "conversations/c9"} {
		if err := RegisterSchema(pattern, []byte(`{}`)); err == nil {
			t.Errorf("an app replaced the schema of the standard %s", pattern)
		}
	}
	if err := RegisterSchema("example.bad", []byte(`{"type": 3}`)); err == nil {
		t.Error("an invalid schema was registered")
	}
	d := mustOpen(t, homes[0], ns, "example.journal/2026")
	if err := d.Change(func(tx *Tx) error { return tx.Set(Path{"title"}, "no owner") }); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "missing property 'owner'") {
		t.Fatalf("a journal without owner: %v", err)
	}
	mustChange(t, d, func(tx *Tx) error {
		return firstErr(tx.Set(Path{"owner"}, "ada"), tx.Append(Path{"entries"}, map[string]any{"day": "2026-05-01"}))
	})
	if err := d.Change(func(tx *Tx) error { return tx.Append(Path{"entries"}, map[string]any{"day": "May 2"}) }); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "entries.1.day") {
		t.Fatalf("a bad day: %v", err)
	}
	if err := d.Change(func(tx *Tx) error { return tx.Delete(Path{"owner"}) }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("deleting the required owner: %v", err)
	}
	// Another document of no schema takes anything.
	mustChange(t, mustOpen(t, homes[0], ns, "example.journal"), func(tx *Tx) error { return tx.Set(Path{"owner"}, 5) })
}

// A document another writer made invalid (an older app, a JS app, written
// before a schema) still opens and reads; writes are refused only for
// problems they add, whether checked where they wrote or as a whole.
func TestInvalidDocumentsStillReadAndTakeGoodWrites(t *testing.T) {
	homes, ns := agentDevices(t, "laptop")
	h := homes[0]
	// A JS app's profile with a name that is a number, imported as is.
	js := automerge.New()
	if err := js.RootMap().Set("name", int64(7)); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Commit("js"); err != nil {
		t.Fatal(err)
	}
	p := mustOpen(t, h, ns, "profile")
	if err := p.Import(js.Save()); err != nil {
		t.Fatal(err)
	}
	if got := jsonOf(t, mustOpen(t, h, ns, "profile"), nil); got["name"] != float64(7) {
		t.Fatalf("the imported profile reads %v", got)
	}
	mustChange(t, p, func(tx *Tx) error { return tx.Set(Path{"bio"}, "kept") })
	if err := p.Change(func(tx *Tx) error { return tx.Set(Path{"visits"}, "x") }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a bad write to an invalid document: %v", err)
	}
	mustChange(t, p, func(tx *Tx) error { return tx.Set(Path{"name"}, "Ada") }) // a write may fix it

	// A schema checked as a whole (allOf at the root): a document written
	// before the schema was registered, with a problem, still takes good
	// writes and refuses bad ones.
	d := mustOpen(t, h, ns, "example.ledger")
	mustChange(t, d, func(tx *Tx) error { return tx.Set(nil, map[string]any{"currency": 5}) })
	if err := RegisterSchema("example.ledger", []byte(`{"allOf": [{"properties": {"currency": {"type": "string"}, "total": {"type": "integer"}}}]}`)); err != nil {
		t.Fatal(err)
	}
	mustChange(t, d, func(tx *Tx) error { return tx.Increment(Path{"total"}, 3) })
	if err := d.Change(func(tx *Tx) error { return tx.Set(Path{"total"}, "three") }); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "at total:") {
		t.Fatalf("a bad write checked as a whole: %v", err)
	}
	if got := jsonOf(t, d, nil); got["total"] != float64(3) || got["currency"] != float64(5) {
		t.Fatalf("ledger %v", got)
	}
}

func TestOutermost(t *testing.T) {
	got := outermost([]Path{{"a", "b"}, {"a"}, {"c", "1"}, {"a"}, {"c", "1"}, {"c", "10"}})
	want := []Path{{"a"}, {"c", "1"}, {"c", "10"}}
	if len(got) != len(want) {
		t.Fatalf("%v, want %v", got, want)
	}
	for i := range got {
		if !slices.Equal(got[i], want[i]) {
			t.Fatalf("%v, want %v", got, want)
		}
	}
}
