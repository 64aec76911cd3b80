package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/internal/rot"
)

// fill writes n entries into ns, in batches, each value tagged with marker
// (inline values are stored as they are, so the tag finds them on disk).
func fill(t *testing.T, st *Store, w *writer, n int, marker string) {
	t.Helper()
	ts := nowMicros()
	for i := 0; i < n; {
		var batch []Item
		for ; i < n && len(batch) < 100; i++ {
			batch = append(batch, w.item(t, fmt.Sprintf("k/%05d", i), fmt.Sprintf("%s-%05d-%s", marker, i, bytes.Repeat([]byte("v"), 300)), ts))
		}
		insert(t, st, batch...)
	}
}

func openAt(t *testing.T, dir string, opts StoreOptions) *Store {
	t.Helper()
	st, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestStoreRefusesAStoreThatLostItsFiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	w := newWriter(t, newNamespaceKey(rng), rng)
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"manifest marker deleted", func(t *testing.T, dir string) {
			ms, _ := filepath.Glob(filepath.Join(dir, "marker.manifest.*"))
			if len(ms) == 0 {
				t.Fatal("no manifest marker to delete")
			}
			for _, m := range ms {
				if err := os.Remove(m); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"store directory replaced by an empty one", func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "vaults")
			st, err := Open(dir, StoreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			fill(t, st, w, 500, "held")
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, dir)

			_, err = Open(dir, StoreOptions{})
			if !errors.Is(err, ErrStoreMismatch) {
				t.Fatalf("Open of a store that lost its files: got %v, want ErrStoreMismatch", err)
			}
			if !bytes.Contains([]byte(err.Error()), []byte("--rebuild-store")) {
				t.Errorf("the error does not say what to do: %v", err)
			}

			st = openAt(t, dir, StoreOptions{Rebuild: true})
			d, ok := st.PendingRebuild()
			if !ok || d.Reason == "" {
				t.Fatalf("a rebuilt store has no pending rebuild (%v, %v)", d, ok)
			}
			if s := mustStats(t, st, w.ns); s.Entries != 0 {
				t.Fatalf("rebuilt store holds %d entries, want an empty store", s.Entries)
			}
			aside, _ := filepath.Glob(dir + ".damaged-*")
			if len(aside) != 1 {
				t.Fatalf("the replaced store was not kept aside: %v", aside)
			}
			if err := st.ClearPendingRebuild(); err != nil {
				t.Fatal(err)
			}
			st.Close()
			st = openAt(t, dir, StoreOptions{})
			if _, ok := st.PendingRebuild(); ok {
				t.Fatal("the pending rebuild survived ClearPendingRebuild")
			}
		})
	}
}

func TestStoreWithoutIDIsAdoptedAndVerified(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	w := newWriter(t, newNamespaceKey(rng), rng)
	dir := filepath.Join(t.TempDir(), "vaults")
	st := openAt(t, dir, StoreOptions{})
	fill(t, st, w, 50, "x")
	if st.NeedsVerify() {
		t.Fatal("a new store asks for verification")
	}
	// What a store written before store IDs looks like.
	if err := st.db.Delete([]byte{kindStoreID}, nil); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := os.Remove(dir + ".id"); err != nil {
		t.Fatal(err)
	}
	st = openAt(t, dir, StoreOptions{})
	if !st.NeedsVerify() {
		t.Fatal("a store without an ID is not verified before it is trusted")
	}
	if _, err := os.Stat(dir + ".id"); err != nil {
		t.Fatalf("the adopted store's ID was not recorded: %v", err)
	}
	if s := mustStats(t, st, w.ns); s.Entries != 50 {
		t.Fatalf("adopted store holds %d entries, want 50", s.Entries)
	}
}

func TestVerifyVaultFindsLostEntriesAndRederives(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	w := newWriter(t, newNamespaceKey(rng), rng)
	st := testStore(t, StoreOptions{})
	fill(t, st, w, 300, "x")
	rep, err := st.VerifyVault(w.ns)
	if err != nil || rep.Problem != "" || rep.Entries != 300 {
		t.Fatalf("a sound vault: %+v, %v", rep, err)
	}
	before := mustStats(t, st, w.ns)

	// Lose entries the way a store restarted from a WAL does: the entries
	// go, the sums written later stay.
	lost := 0
	err = st.scan(w.ns, Root, func(ih, _ *Hash, _ []byte) error {
		if lost < 120 {
			lost++
			return st.db.Delete(entryKey(w.ns, ih), nil)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := mustStats(t, st, w.ns); s != before {
		t.Fatal("the test did not leave stale sums")
	}
	rep, err = st.VerifyVault(w.ns)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Problem == "" || rep.Entries != 180 {
		t.Fatalf("VerifyVault missed the lost entries: %+v", rep)
	}
	if err := st.Rederive(w.ns); err != nil {
		t.Fatal(err)
	}
	if rep, err := st.VerifyVault(w.ns); err != nil || rep.Problem != "" {
		t.Fatalf("after Rederive: %+v, %v", rep, err)
	}
	checkAggregates(t, st, w.ns)
	if s := mustStats(t, st, w.ns); s.Entries != 180 || s.Fingerprint == before.Fingerprint {
		t.Fatalf("after Rederive the stats still lie: %+v", s)
	}
	items, err := st.List(w.ns, nil, 0)
	if err != nil || len(items) != 180 {
		t.Fatalf("after Rederive List gives %d items, %v; want 180", len(items), err)
	}

	// A replica that still has everything fills it again: the rederived
	// sums make the missing ranges differ.
	full := testStore(t, StoreOptions{})
	fill(t, full, w, 300, "x")
	syncStores(t, st, full, w.ns)
	if s, want := mustStats(t, st, w.ns), mustStats(t, full, w.ns); s.Entries != 300 || s != want {
		t.Fatalf("after a sync with an intact replica: %+v, want %+v", s, want)
	}
}

// syncStores runs one reconciliation between a and b over real hosts.
func syncStores(t *testing.T, a, b *Store, ns NamespaceID) {
	t.Helper()
	ha, hb := testHost(t), testHost(t)
	sa := newTestService(t, ha, a, WithPolicy(NewHostedSet(ns)))
	sb := newTestService(t, hb, b, WithPolicy(NewHostedSet(ns)))
	t.Cleanup(func() { sa.Close(); sb.Close() })
	connect(t, ha, hb)
	if _, err := sa.Sync(context.Background(), hb.ID(), ns, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
}

// flipIn flips a byte of a file under dir matching glob inside a value
// tagged marker (rot.Flip), and reports whether one held it.
func flipIn(t *testing.T, dir, glob string, marker []byte) bool {
	t.Helper()
	_, err := rot.Flip(filepath.Join(dir, glob), marker)
	return err == nil
}

func TestDamagedTableQuarantinesOnlyItsVault(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	wa := newWriter(t, newNamespaceKey(rng), rng)
	wb := newWriter(t, newNamespaceKey(rng), rng)
	dir := filepath.Join(t.TempDir(), "vaults")
	st := openAt(t, dir, StoreOptions{})
	fill(t, st, wa, 2000, "vault-a")
	fill(t, st, wb, 2000, "vault-b")
	wantB := mustStats(t, st, wb.ns)
	if err := st.db.Flush(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if !flipIn(t, dir, "*.sst", []byte("vault-a-")) {
		t.Fatal("no table holds vault a's entries")
	}

	var reported atomic.Int32
	st = openAt(t, dir, StoreOptions{OnCorruption: func() { reported.Add(1) }})
	_, err := st.VerifyVault(wa.ns) // reads every entry: hits the damaged block
	if err == nil {
		t.Fatal("a damaged table read without an error")
	}
	if !errors.Is(err, ErrDamaged) && !isCorruption(err) {
		t.Fatalf("the error does not say the data is damaged: %v", err)
	}
	if st.Corruptions() == 0 {
		t.Fatal("the damage was not counted")
	}
	if rep, err := st.VerifyVault(wb.ns); err != nil || rep.Problem != "" {
		t.Fatalf("the other vault suffers: %+v, %v", rep, err)
	}

	if err := st.Quarantine(wa.ns, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Insert([]Item{wa.item(t, "new", "v", nowMicros())}, 0, true); !errors.Is(err, ErrQuarantined) {
		t.Fatalf("insert into a quarantined vault: %v, want ErrQuarantined", err)
	}
	if err := st.Repair(context.Background(), wa.ns); err != nil {
		t.Fatal(err)
	}
	if d, ok := st.Damage(wa.ns); !ok || d.State != Rebuilding {
		t.Fatalf("after Repair: %+v, %v; want Rebuilding", d, ok)
	}
	if rep, err := st.VerifyVault(wa.ns); err != nil || rep.Entries != 0 {
		t.Fatalf("the repaired vault still reads damaged data: %+v, %v", rep, err)
	}
	// Compactions no longer trip over the damaged block.
	if err := st.db.Compact(context.Background(), []byte{0}, []byte{0xff}, true); err != nil {
		t.Fatalf("compaction after the repair: %v", err)
	}
	if got := mustStats(t, st, wb.ns); got != wantB {
		t.Fatalf("the other vault changed: %+v, want %+v", got, wantB)
	}
	fill(t, st, wa, 10, "again")
	if err := st.Healed(wa.ns); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st = openAt(t, dir, StoreOptions{})
	if _, ok := st.Damage(wa.ns); ok {
		t.Fatal("the healed vault is still damaged after a restart")
	}
	if s := mustStats(t, st, wa.ns); s.Entries != 10 {
		t.Fatalf("vault a holds %d entries after its rebuild, want 10", s.Entries)
	}
}

func TestDamageRecordSurvivesRestart(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	w := newWriter(t, newNamespaceKey(rng), rng)
	dir := filepath.Join(t.TempDir(), "vaults")
	st := openAt(t, dir, StoreOptions{})
	fill(t, st, w, 10, "x")
	if err := st.Quarantine(w.ns, "found damaged"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st = openAt(t, dir, StoreOptions{})
	if d, ok := st.Damage(w.ns); !ok || d.State != Quarantined || d.Reason != "found damaged" {
		t.Fatalf("after a restart: %+v, %v", d, ok)
	}
}

func TestWALDamagedBeforeItsEndIsDamageNotATornWrite(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	w := newWriter(t, newNamespaceKey(rng), rng)
	dir := filepath.Join(t.TempDir(), "vaults")
	st := openAt(t, dir, StoreOptions{})
	fill(t, st, w, 1000, "wal")
	// What a crash leaves (Close would flush the log into tables): a copy
	// of the open store, whose entries live in its WAL only.
	crashed := filepath.Join(t.TempDir(), "vaults")
	copyFile(t, dir+".id", crashed+".id")
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	st.Close()
	dir = crashed
	if !flipIn(t, dir, "*.log", []byte("wal-00300-")) {
		t.Fatal("no WAL holds the entries")
	}
	st = openAt(t, dir, StoreOptions{})
	d, ok := st.PendingRebuild()
	if !ok {
		t.Fatalf("a WAL damaged mid-log was taken for a torn write: the store holds %d entries, no rebuild pending",
			mustStats(t, st, w.ns).Entries)
	}
	if d.Reason == "" {
		t.Fatal("no reason given")
	}
	if aside, _ := filepath.Glob(dir + ".damaged-wal-*"); len(aside) != 1 {
		t.Fatalf("the damaged WAL was not kept aside: %v", aside)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func isCorruption(err error) bool {
	return err != nil && bytes.Contains([]byte(err.Error()), []byte("corrupt"))
}

// FuzzDamageRecord: a damage record read from disk decodes or is refused as
// damaged, never panics, and what decodes encodes back the same.
func FuzzDamageRecord(f *testing.F) {
	f.Add(Damage{State: Quarantined, Reason: "checksum", Since: time.UnixMicro(1)}.marshal())
	f.Add(Damage{State: Rebuilding}.marshal())
	f.Add([]byte{})
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := unmarshalDamage(b)
		if err != nil {
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("refused without ErrDamaged: %v", err)
			}
			return
		}
		if !bytes.Equal(d.marshal(), b) {
			t.Fatalf("%x decodes to %+v, which encodes to %x", b, d, d.marshal())
		}
	})
}

func TestStoreIDFileMustHoldAnID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vaults")
	openAt(t, dir, StoreOptions{}).Close()
	if err := os.WriteFile(dir+".id", []byte("not an id\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, StoreOptions{}); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), dir+".id") {
		t.Fatalf("a damaged ID file: %v, want an error naming it", err)
	}
}

// TestPeerTellsWhatBlobsItLacks: a serving node that lacks blobs of the
// vault says how many in the session, so the syncing device stays to serve
// them; one that lacks none says nothing.
func TestPeerTellsWhatBlobsItLacks(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	w := newWriter(t, newNamespaceKey(rng), rng)
	for _, lacks := range []int{0, 3} {
		dev, seed := testStore(t, StoreOptions{}), testStore(t, StoreOptions{})
		fill(t, dev, w, 5, "x")
		hd, hs := testHost(t), testHost(t)
		sd := newTestService(t, hd, dev, WithPolicy(NewHostedSet(w.ns)))
		ss := newTestService(t, hs, seed, WithPolicy(NewHostedSet(w.ns)), WithLackedBlobs(func(NamespaceID) int { return lacks }))
		connect(t, hd, hs)
		st, err := sd.Sync(context.Background(), hs.ID(), w.ns, SyncOptions{})
		sd.Close()
		ss.Close()
		if err != nil {
			t.Fatal(err)
		}
		if st.PeerLacksBlobs != lacks {
			t.Fatalf("the seed lacks %d blobs; the device heard %d", lacks, st.PeerLacksBlobs)
		}
	}
}
