//go:build cgo

package state

import (
	"testing"

	"github.com/automerge/automerge-go"
)

// FuzzHostileAutomerge: bytes a listed device stored as a snapshot or a
// change never panic the process, and the document stays readable.
func FuzzHostileAutomerge(f *testing.F) {
	doc := automerge.New()
	_ = doc.RootMap().Set("k", automerge.NewText("v"))
	h, _ := doc.Commit("c")
	c, _ := doc.Change(h)
	f.Add(doc.Save())
	f.Add(c.Save())
	f.Add([]byte{0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := &Document{doc: automerge.New(), read: nil, known: map[[32]byte]bool{}, pending: map[[32]byte]*pendingChange{}}
		_ = guarded(func() error { return d.mergeSnapshot(data) })
		if hdr, err := parseChange(data); err == nil {
			d.pending[hdr.hash] = &pendingChange{hdr: hdr, data: data}
			_ = guarded(func() error { d.applyPending(); return nil })
		}
		if _, err := d.JSON(nil); err != nil {
			t.Fatalf("the document is unreadable after hostile bytes: %v", err)
		}
	})
}

func guarded(fn func() error) (err error) {
	defer guard(&err)
	return fn()
}

// TestSnapshotHeads: the heads read from a saved document's header are the
// document's heads, for an empty document, one device's changes and a merge
// of two devices' concurrent changes; a cut-off save is refused.
func TestSnapshotHeads(t *testing.T) {
	a, b := automerge.New(), automerge.New()
	docs := []*automerge.Doc{automerge.New()}
	_ = a.RootMap().Set("x", 1)
	_, _ = a.Commit("a1")
	docs = append(docs, a)
	_ = b.RootMap().Set("y", 2)
	_, _ = b.Commit("b1")
	m, err := a.Fork()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Merge(b); err != nil {
		t.Fatal(err)
	}
	docs = append(docs, m)
	for i, doc := range docs {
		saved := doc.Save()
		got, err := snapshotHeads(saved)
		if err != nil {
			t.Fatalf("doc %d: %v", i, err)
		}
		want := doc.Heads()
		if len(got) != len(want) {
			t.Fatalf("doc %d: %d heads, want %d", i, len(got), len(want))
		}
		for j := range want {
			if got[j] != [32]byte(want[j]) {
				t.Fatalf("doc %d: head %d is %x, want %s", i, j, got[j], want[j])
			}
		}
		if i > 0 {
			if _, err := snapshotHeads(saved[:20]); err == nil {
				t.Fatalf("doc %d: a cut-off save read", i)
			}
		}
	}
	if len(docs[2].Heads()) != 2 {
		t.Fatalf("the merge has %d heads, want 2", len(docs[2].Heads()))
	}
}
