//go:build cgo

package main

import (
	"fmt"
	"log"
	"path/filepath"
	"time"

	"github.com/seedfleet/seedfleet/hack/benchutil"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/state"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

func docName(k int) string { return fmt.Sprintf("notes/%04d", k) }

// benchDocs: an agent with -docs documents synced on two devices through a
// seed; one device changes one document and syncs; what the other device's
// sync that brings it over costs on the wire.
func benchDocs(root string) {
	n := *docs
	label := countLabel(n)
	a := newAgent(filepath.Join(root, "docs"), 2)
	defer a.close()
	seed := startSeed(filepath.Join(root, "docs-seed"), a.ns)
	defer seed.stop()
	writer, reader := a.homes[0], a.homes[1]
	start := time.Now()
	for k := range n {
		d := open(writer, a.ns, docName(k))
		commit(d, func(tx *state.Tx) error {
			return tx.Set(nil, map[string]any{"title": fmt.Sprintf("note %d", k), "done": false, "tags": []any{"a"}})
		})
		commit(d, func(tx *state.Tx) error { return tx.EditText(state.Path{"title"}, 0, 0, "a ") })
		commit(d, func(tx *state.Tx) error { return tx.Append(state.Path{"tags"}, "b") })
		if k%200 == 199 {
			progress("docs: wrote %d of %d documents", k+1, n)
		}
	}
	a.syncAll(seed.addr)
	entries := 0
	if err := reader.Store.ForEach(a.ns, func(*vault.SignedEntry) error { entries++; return nil }); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("# docs: %d documents of three changes each written in %.1f s and synced to both devices; the vault holds %d entries\n",
		n, time.Since(start).Seconds(), entries)

	// Baseline: the same sync when nothing changed.
	idle := syncOnce(reader, a.ns, seed.addr)
	target := docName(n / 2)
	commit(open(writer, a.ns, target), func(tx *state.Tx) error { return tx.Set(state.Path{"done"}, true) })
	syncOnce(writer, a.ns, seed.addr)
	st := syncOnce(reader, a.ns, seed.addr)
	d := open(reader, a.ns, target)
	var done bool
	if err := d.Get(state.Path{"done"}, &done); err != nil || !done || st.Stored != 1 {
		log.Fatalf("the change did not come over: done=%v (%v), %d entries stored", done, err, st.Stored)
	}
	name := "state_" + label + "_docs_one_changed"
	fmt.Println("# target: state_1k_docs_one_changed_bytes <= 16384, state_1k_docs_one_changed_roundtrips <= 3")
	benchutil.Bench(name+"_bytes", float64(st.BytesSent+st.BytesReceived), "bytes")
	benchutil.Bench(name+"_roundtrips", float64(st.RoundTrips), "roundtrips")
	benchutil.Bench(name+"_bytes_sent", float64(st.BytesSent), "bytes")
	benchutil.Bench(name+"_bytes_received", float64(st.BytesReceived), "bytes")
	benchutil.Bench("state_"+label+"_docs_baseline_unchanged_bytes", float64(idle.BytesSent+idle.BytesReceived), "bytes")
	benchutil.Bench("state_"+label+"_docs_baseline_unchanged_roundtrips", float64(idle.RoundTrips), "roundtrips")
}

func open(h *client.Home, ns vault.NamespaceID, name string) *state.Document {
	d, err := state.Open(h, ns, name)
	if err != nil {
		log.Fatal(err)
	}
	return d
}

func commit(d *state.Document, fn func(*state.Tx) error) {
	if err := d.Change(fn); err != nil {
		log.Fatalf("%s: %v", d.Name(), err)
	}
	if err := d.Flush(); err != nil {
		log.Fatalf("%s: %v", d.Name(), err)
	}
}
