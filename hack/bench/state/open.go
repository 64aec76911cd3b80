//go:build cgo

package main

import (
	"bytes"
	"fmt"
	"log"
	"path/filepath"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/seedfleet/seedfleet/hack/benchutil"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/sealed"
	"github.com/seedfleet/seedfleet/seednode/state"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

const openDoc = "journal"

// countLabel names a count as the BENCH names do: 100k, or the number.
func countLabel(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// benchOpen builds a document from -changes changes on one device (which
// writes its snapshot and compacts every 256, as any device does), then
// times opening it afresh and weighs what it takes in the vault.
func benchOpen(root string) {
	n := *changes
	label := countLabel(n)
	dir := filepath.Join(root, "open")
	a := newAgent(dir, 1)
	defer func() { a.close() }()
	d, err := state.Open(a.homes[0], a.ns, openDoc)
	if err != nil {
		log.Fatal(err)
	}
	stopProfile := benchutil.StartProfile(*profile, "devices-build")
	start := time.Now()
	build(d, n)
	if err := d.Flush(); err != nil {
		log.Fatal(err)
	}
	buildSecs := time.Since(start).Seconds()
	stopProfile()
	want, err := d.JSON(nil)
	if err != nil {
		log.Fatal(err)
	}
	saved, err := d.Save()
	if err != nil {
		log.Fatal(err)
	}
	stored := weigh(a.homes[0], a.ns, openDoc)

	// Reopen the home so that nothing of the document is held in memory.
	a.homes[0].Close()
	if a.homes[0], err = client.Open(filepath.Join(dir, "device-0")); err != nil {
		log.Fatal(err)
	}
	runs := 5
	if *smoke {
		runs = 2
	}
	var opens, loads []float64
	defer benchutil.StartProfile(*profile, "devices-open")()
	for range runs {
		opens = append(opens, timeOpen(a.homes[0], a.ns, want))
		// Baseline: Automerge loading its own save() of the same document.
		t := time.Now()
		if _, err := automerge.Load(saved); err != nil {
			log.Fatal(err)
		}
		loads = append(loads, float64(time.Since(t).Microseconds())/1000)
	}
	fmt.Printf("# open: one device, %d changes (appends, map sets, counter increments, text inserts), JSON %d bytes\n", n, len(want))
	benchutil.RunsLine("state_open_"+label+"_changes_ms", opens, "ms", 1)
	fmt.Println("# target: state_open_100k_changes_ms <= 1000")
	benchutil.Bench("state_open_"+label+"_changes_ms", benchutil.Round(benchutil.Median(opens), 1), "ms")
	benchutil.Bench("state_open_baseline_automerge_load_ms", benchutil.Round(benchutil.Median(loads), 1), "ms")
	benchutil.Bench("state_build_"+label+"_changes_seconds", benchutil.Round(buildSecs, 1), "s")
	stored.report(len(saved))
}

// build makes n changes to d: a mix of list appends, map sets, counter
// increments and text inserts, as an agent's journal would take them.
func build(d *state.Document, n int) {
	if err := d.Change(func(tx *state.Tx) error {
		return tx.Set(nil, map[string]any{"log": []any{}, "keys": map[string]any{}, "note": ""})
	}); err != nil {
		log.Fatal(err)
	}
	last := time.Now()
	start := last
	for i := 1; i < n; i++ {
		if err := d.Change(func(tx *state.Tx) error { return edit(tx, i) }); err != nil {
			log.Fatalf("change %d: %v", i, err)
		}
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			rate := float64(i) / last.Sub(start).Seconds()
			progress("open: built %d of %d changes (%.0f/s, %.0f s to go)", i, n, rate, float64(n-i)/rate)
		}
	}
}

func edit(tx *state.Tx, i int) error {
	switch i % 4 {
	case 0:
		return tx.Append(state.Path{"log"}, map[string]any{"n": i, "text": fmt.Sprintf("entry %d", i)})
	case 1:
		return tx.Set(state.Path{"keys", fmt.Sprintf("k%03d", i%1000)}, i)
	case 2:
		return tx.Increment(state.Path{"count"}, 1)
	default:
		end, err := tx.TextLen(state.Path{"note"})
		if err != nil {
			return err
		}
		return tx.EditText(state.Path{"note"}, (i*7919)%(end+1), 0, "ab")
	}
}

// timeOpen opens the document and reads it as JSON, in ms.
func timeOpen(h *client.Home, ns vault.NamespaceID, want []byte) float64 {
	t := time.Now()
	d, err := state.Open(h, ns, openDoc)
	if err != nil {
		log.Fatal(err)
	}
	got, err := d.JSON(nil)
	if err != nil {
		log.Fatal(err)
	}
	ms := float64(time.Since(t).Microseconds()) / 1000
	if p := d.Problems(); len(p) > 0 || !bytes.Equal(got, want) {
		log.Fatalf("the reopened document differs (problems %v)", p)
	}
	return ms
}

// storage is what a document's entries take in a vault: each signed entry
// as encoded (stored key, author, value hash, size, timestamp, signature,
// consent) plus its value's ciphertext, inline or blob. Pebble's own
// overhead, indexes and blob outboards are not counted.
type storage struct {
	bytes, valueBytes         int64
	snapshots, changes, tombs int
}

// weigh sums the storage of document name's entries in h's store.
func weigh(h *client.Home, ns vault.NamespaceID, name string) storage {
	kr, err := h.Keyring(ns)
	if err != nil {
		log.Fatal(err)
	}
	prefix, err := sealed.StoredPrefix(kr.Names(), state.ChangePrefix(name))
	if err != nil {
		log.Fatal(err)
	}
	snapKey, err := sealed.StoredKey(kr.Names(), state.SnapshotPath(name))
	if err != nil {
		log.Fatal(err)
	}
	var s storage
	err = h.Store.ForEach(ns, func(e *vault.SignedEntry) error {
		isSnap := bytes.Equal(e.Key, snapKey)
		if !isSnap && !bytes.HasPrefix(e.Key, prefix) {
			return nil
		}
		s.bytes += int64(len(e.AppendBinary(nil))) + int64(e.Size)
		s.valueBytes += int64(e.Size)
		switch {
		case e.IsTombstone():
			s.tombs++
		case isSnap:
			s.snapshots++
		default:
			s.changes++
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	return s
}

func (s storage) report(saveBytes int) {
	fmt.Printf("# storage: %d snapshot(s), %d change entries, %d tombstone(s); each signed entry as encoded plus its value's ciphertext\n",
		s.snapshots, s.changes, s.tombs)
	fmt.Println("# target: state_storage_ratio_vs_save <= 1.5")
	benchutil.Bench("state_storage_ratio_vs_save", benchutil.Round(float64(s.bytes)/float64(saveBytes), 3), "ratio")
	benchutil.Bench("state_storage_bytes", float64(s.bytes), "bytes")
	benchutil.Bench("state_storage_value_bytes", float64(s.valueBytes), "bytes")
	benchutil.Bench("state_save_bytes", float64(saveBytes), "bytes")
}
