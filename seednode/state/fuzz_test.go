package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
)

// changeChunk builds a change chunk with the given dependencies and actor
// (and an opaque rest of the body), as Automerge frames one.
func changeChunk(deps [][32]byte, actor, rest []byte) []byte {
	body := binary.AppendUvarint(nil, uint64(len(deps)))
	for _, d := range deps {
		body = append(body, d[:]...)
	}
	body = binary.AppendUvarint(body, uint64(len(actor)))
	body = append(append(body, actor...), rest...)
	hashed := binary.AppendUvarint([]byte{chunkTypeChange}, uint64(len(body)))
	hashed = append(hashed, body...)
	sum := sha256.Sum256(hashed)
	return append(append(append([]byte(nil), chunkMagic...), sum[:4]...), hashed...)
}

func TestParseChange(t *testing.T) {
	actor := bytes.Repeat([]byte{7}, 40)
	dep := [32]byte{1, 2, 3}
	good := changeChunk([][32]byte{dep}, actor, []byte("ops"))
	h, err := parseChange(good)
	if err != nil || h.hash != sha256.Sum256(good[8:]) || len(h.deps) != 1 || h.deps[0] != dep || !bytes.Equal(h.actor, actor) {
		t.Fatalf("parse: %+v, %v", h, err)
	}
	var author [32]byte
	copy(author[:], actor)
	if _, err := checkChange(good, h.hash, author); err != nil {
		t.Fatalf("check: %v", err)
	}
	if _, err := checkChange(good, [32]byte{9}, author); err == nil {
		t.Fatal("a change stored under another hash was accepted")
	}
	if _, err := checkChange(good, h.hash, [32]byte{8}); err == nil {
		t.Fatal("a change by another device's actor was accepted")
	}
	bad := map[string][]byte{
		"short":     good[:9],
		"magic":     append([]byte{0}, good[1:]...),
		"checksum":  append(append([]byte(nil), good[:4]...), append([]byte{0, 0, 0, 0}, good[8:]...)...),
		"type":      append(append(append([]byte(nil), good[:8]...), 2), good[9:]...),
		"trailing":  append(append([]byte(nil), good...), 0),
		"truncated": good[:len(good)-1],
		"no actor":  changeChunk(nil, nil, nil),
	}
	for name, b := range bad {
		if _, err := parseChange(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseChange(f *testing.F) {
	f.Add(changeChunk([][32]byte{{1}}, bytes.Repeat([]byte{7}, 40), []byte("ops")))
	f.Add(changeChunk(nil, []byte{1}, nil))
	f.Add([]byte{0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := parseChange(data)
		if err != nil {
			return
		}
		if h.hash != sha256.Sum256(data[8:]) || len(h.actor) == 0 || !bytes.Contains(data, h.actor) {
			t.Fatalf("accepted an inconsistent chunk: %+v", h)
		}
	})
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(encodeEntry([]byte("x")))
	f.Add([]byte{2, 1})
	f.Fuzz(func(t *testing.T, value []byte) {
		data, err := decodeEntry(value)
		if err == nil && !bytes.Equal(encodeEntry(data), value) {
			t.Fatalf("decode(%x) = %x does not encode back", value, data)
		}
	})
}

func FuzzChangePath(f *testing.F) {
	f.Add("profile", ChangePath("profile", [32]byte{1}))
	f.Add("a/b", "state/a/b/~c/zz")
	f.Fuzz(func(t *testing.T, doc, path string) {
		if CheckName(doc) != nil {
			return
		}
		h, err := ParseChangePath(doc, path)
		if err == nil && ChangePath(doc, h) != path {
			t.Fatalf("%q parsed to %x, which is %q", path, h, ChangePath(doc, h))
		}
	})
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"profile", "conversations/2026-01-01", "a.b_c-d"} {
		if err := CheckName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a//b", "/a", "a/", "~c", "a/~s", "..", "a b", "é", string(make([]byte, 300))} {
		if CheckName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzStandardSchemas: a hostile document (numbers as float64, as
// Automerge gives them) ends in a verdict from each standard schema, with
// every mismatch naming a JSON pointer, never in a panic.
func FuzzStandardSchemas(f *testing.F) {
	f.Add([]byte(`{"messages":[{"from":"ada","at":"2026-05-01T10:00:00Z"}],"ui":{"theme":5,"lang":"en-GB"}}`))
	f.Add([]byte(`{"tools":{"a b":{"enabled":"x"}},"skills":{"s":{"tools":[1]}},"links":{"~/x":{}}}`))
	f.Add([]byte(`{"notifications":{"quiet_hours":{"from":"25:00","x":1}},"visits":1.5}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		var v any
		if json.Unmarshal(doc, &v) != nil {
			return
		}
		for _, s := range StandardSchemas {
			sch, err := SchemaFor(strings.Replace(s.Pattern, "*", "x", 1))
			if err != nil {
				t.Fatal(err)
			}
			ms, err := sch.mismatches(v)
			if err != nil {
				t.Fatalf("%s: %v", s.File, err)
			}
			for _, p := range ms {
				if p.pointer != "" && p.pointer[0] != '/' || p.what == "" || fieldName(p.pointer) == "" {
					t.Fatalf("%s: mismatch %+v", s.File, p)
				}
			}
		}
	})
}

// FuzzSnapshotHeads: any bytes a listed device stored as a snapshot read
// as heads or an error, never a panic.
func FuzzSnapshotHeads(f *testing.F) {
	f.Add(append([]byte{0x85, 0x6f, 0x4a, 0x83, 1, 2, 3, 4, 0, 5, 1, 1, 9, 1}, make([]byte, 32)...))
	f.Add([]byte{0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		heads, err := snapshotHeads(data)
		if err == nil && len(heads)*32 > len(data) {
			t.Fatalf("%d heads from %d bytes", len(heads), len(data))
		}
	})
}
