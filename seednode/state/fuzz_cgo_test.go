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
