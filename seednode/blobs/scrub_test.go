package blobs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// flipByte damages a stored file the way rot does: one byte changed in place.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

// damages records what a store reports through OnDamage.
type damages struct {
	mu   sync.Mutex
	list []Damage
}

func recordDamage(s *Store) *damages {
	d := &damages{}
	s.OnDamage(func(x Damage) { d.mu.Lock(); d.list = append(d.list, x); d.mu.Unlock() })
	return d
}

func (d *damages) get() []Damage {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.list)
}

func scrubPass(t *testing.T, s *Store) ScrubStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := NewScrubber(s, ScrubOptions{Rate: 1 << 30}).Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestScrubDropsRotAndARefetchRepairsIt: a byte of a held blob rots (data
// or outboard, or the data file loses its tail); a scrub pass finds it,
// the blob is partial without the damaged groups (not served, not complete,
// also after a restart), a fetch from a peer with a good copy asks for just
// those groups, and the next pass finds the blob whole.
func TestScrubDropsRotAndARefetchRepairsIt(t *testing.T) {
	const size = 40*GroupSize + 1000 // 41 groups, the last one short
	groups := NumGroups(size)
	cases := []struct {
		name    string
		damage  func(t *testing.T, data, outboard string)
		wantBad Ranges // nil: some groups, as the tree decides
	}{
		{"a middle group's data", func(t *testing.T, data, _ string) { flipByte(t, data, 5*GroupSize+100) }, Ranges{{5, 6}}},
		{"the first byte", func(t *testing.T, data, _ string) { flipByte(t, data, 0) }, Ranges{{0, 1}}},
		{"the short last group", func(t *testing.T, data, _ string) { flipByte(t, data, size-1) }, Ranges{{40, 41}}},
		{"the data file's tail", func(t *testing.T, data, _ string) {
			if err := os.Truncate(data, size-10); err != nil {
				t.Fatal(err)
			}
		}, Ranges{{40, 41}}},
		{"the outboard's last tree node", func(t *testing.T, _, outboard string) {
			flipByte(t, outboard, int64(OutboardSize(size))-1)
		}, nil},
		{"the outboard's root node", func(t *testing.T, _, outboard string) { flipByte(t, outboard, headerLen) }, Ranges{{0, groups}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeers(t)
			data := randBytes(11, size)
			h, err := p.serverStore.AddBytes(data)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.clientStore.AddBytes(data); err != nil {
				t.Fatal(err)
			}
			seen := recordDamage(p.clientStore)
			if st := scrubPass(t, p.clientStore); st.Blobs != 1 || st.DamagedBlobs != 0 || st.Bytes != size+OutboardSize(size)-headerLen {
				t.Fatalf("pass over a sound store: %+v", st)
			}
			tc.damage(t, p.clientStore.path(h, ".data"), p.clientStore.path(h, ".obao"))
			if st := scrubPass(t, p.clientStore); st.DamagedBlobs != 1 {
				t.Fatalf("pass after the damage: %+v", st)
			}
			d := seen.get()
			if len(d) != 1 || d[0].Hash != h || d[0].Size != size || d[0].Found != "scrub" || len(d[0].Groups) == 0 ||
				(tc.wantBad != nil && !slices.Equal(d[0].Groups, tc.wantBad)) {
				t.Fatalf("damage reported %+v, want groups %v", d, tc.wantBad)
			}
			bad := d[0].Groups.Groups()
			if st, err := p.clientStore.Stat(h); err != nil || st.State != Partial || st.VerifiedGroups != groups-bad {
				t.Fatalf("after the scrub: %+v %v, want partial with %d of %d groups", st, err, groups-bad, groups)
			}
			if _, err := p.clientStore.OpenBlob(h); !errors.Is(err, ErrNotFound) {
				t.Fatalf("a damaged blob opens for serving: %v", err)
			}

			// A peer with a good copy repairs it, sending only the dropped groups.
			st, err := p.fetch(t, h, FetchOptions{Size: ptr(uint64(size))})
			if err != nil || !st.Complete || st.GroupsFetched != bad || st.GroupsSkipped != groups-bad {
				t.Fatalf("refetch: %+v %v, want %d groups fetched", st, err, bad)
			}
			if got := exported(t, p.clientStore, h, 0, 0); !bytes.Equal(got, data) {
				t.Fatal("repaired blob differs")
			}
			if st := scrubPass(t, p.clientStore); st.DamagedBlobs != 0 || st.Blobs != 1 {
				t.Fatalf("pass after the repair: %+v", st)
			}
			if len(seen.get()) != 1 {
				t.Fatalf("damage reported again after the repair: %+v", seen.get())
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestDamageSurvivesRestart: a blob found damaged stays partial, with the
// same groups verified, after the store is closed and opened again, and its
// files stay where they were for a resumed fetch to complete.
func TestDamageSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	const size = 3000 * GroupSize // a bitmap of two pages
	h, err := s.AddBytes(randBytes(12, size))
	if err != nil {
		t.Fatal(err)
	}
	flipByte(t, s.path(h, ".data"), 2500*GroupSize+7)
	scrubPass(t, s)
	s.Close()
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Stat(h)
	if err != nil || st.State != Partial || st.VerifiedGroups != 2999 {
		t.Fatalf("after a restart: %+v %v, want partial with 2999 groups", st, err)
	}
	r, err := s.Receive(h, size)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.Missing(nil); !slices.Equal(got, Ranges{{2500, 2501}}) {
		t.Fatalf("a resumed fetch would ask for %v, want group 2500 only", got)
	}
}

// TestServingRotStopsAndDropsIt: a seed serving a blob that rotted on disk
// stops before the bad group instead of sending it, drops the group, and
// from then on answers that it does not have the blob (the getter asks
// another peer) until it is fetched again.
func TestServingRotStopsAndDropsIt(t *testing.T) {
	p := newPeers(t)
	const size = 20 * GroupSize
	h, err := p.serverStore.AddBytes(randBytes(13, size))
	if err != nil {
		t.Fatal(err)
	}
	seen := recordDamage(p.serverStore)
	flipByte(t, p.serverStore.path(h, ".data"), 9*GroupSize+3)
	if _, err := p.fetch(t, h, FetchOptions{}); err == nil {
		t.Fatal("a fetch of a rotten blob succeeded")
	}
	d := seen.get()
	if len(d) != 1 || d[0].Found != "serve" || !slices.Equal(d[0].Groups, Ranges{{9, 10}}) {
		t.Fatalf("damage reported %+v, want group 9 found serving", d)
	}
	if st, err := p.serverStore.Stat(h); err != nil || st.State != Partial || st.VerifiedGroups != 19 {
		t.Fatalf("server after serving rot: %+v %v", st, err)
	}
	if _, err := p.fetch(t, h, FetchOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second fetch: %v, want not found", err)
	}
	if st, _ := p.clientStore.Stat(h); st.State == Complete || st.VerifiedGroups > 9 {
		t.Fatalf("getter holds %+v, want at most the 9 groups before the rot", st)
	}
}

// TestScrubPassResumesWhereItStopped: a pass ended early goes on, in the
// next one, after the last blob it verified, and still covers every blob.
func TestScrubPassResumesWhereItStopped(t *testing.T) {
	s := testStore(t)
	for i := range 5 {
		if _, err := s.AddBytes(randBytes(uint64(20+i), 2*GroupSize)); err != nil {
			t.Fatal(err)
		}
	}
	var order [][32]byte
	if err := s.List(func(h [32]byte, _ Status) error { order = append(order, h); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.setScrubCursor(order[2]); err != nil {
		t.Fatal(err)
	}
	if st := scrubPass(t, s); st.Blobs != 5 {
		t.Fatalf("a pass from the middle verified %d of 5 blobs", st.Blobs)
	}
	if c, _ := s.scrubCursor(); !bytes.Equal(c, order[2][:]) {
		t.Fatalf("after a whole pass the cursor is at %x, want where it began", c)
	}
}

// TestScrubFindsRotInAPack: small blobs fetched as a collection live in
// pack files; a byte of one rots in its pack: the pass finds it, the blob
// is dropped whole (missing, every group reported), its neighbours in the
// pack stay complete, a fetch of the collection brings back that member
// only, and the packs' counts stay right (deleting every member leaves no
// pack behind).
func TestScrubFindsRotInAPack(t *testing.T) {
	datas := make([][]byte, 12)
	for i := range datas {
		datas[i] = randBytes(uint64(100+i), 20<<10+i*3000) // above InlineMax: packed
	}
	p := newPeers(t)
	c, ch, csize := addMembers(t, p.serverStore, datas)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, _, err := p.client.FetchCollection(ctx, p.serverHost.ID(), ch, FetchOptions{Size: &csize}); err != nil {
		t.Fatal(err)
	}
	victim := c[5].Hash
	r, ok, err := p.clientStore.record(victim)
	if err != nil || !ok || r.kind != recPacked {
		t.Fatalf("member record %+v %v %v, want packed", r, ok, err)
	}
	seen := recordDamage(p.clientStore)
	if st := scrubPass(t, p.clientStore); st.Blobs != len(c) || st.DamagedBlobs != 0 {
		t.Fatalf("pass over sound packs: %+v, want %d blobs", st, len(c))
	}
	flipByte(t, p.clientStore.packPath(r.pack), int64(r.off)+100)
	if st := scrubPass(t, p.clientStore); st.DamagedBlobs != 1 {
		t.Fatalf("pass after the rot: %+v", st)
	}
	size := uint64(len(datas[5]))
	if d := seen.get(); len(d) != 1 || d[0].Hash != victim || d[0].Size != size || d[0].Found != "scrub" ||
		!slices.Equal(d[0].Groups, Ranges{{0, NumGroups(size)}}) {
		t.Fatalf("damage reported %+v, want every group of member 5", d)
	}
	for i, e := range c {
		st, err := p.clientStore.Stat(e.Hash)
		if want := Complete; i == 5 && (err != nil || st.State != Missing) || i != 5 && (err != nil || st.State != want) {
			t.Fatalf("member %d after the scrub: %+v %v", i, st, err)
		}
	}
	_, stats, err := p.client.FetchCollection(ctx, p.serverHost.ID(), ch, FetchOptions{Size: &csize})
	if err != nil || stats.MembersFetched != 1 || stats.MembersSkipped != uint64(len(c)-1) {
		t.Fatalf("refetch: %+v %v, want member 5 only", stats, err)
	}
	checkCollection(t, p.clientStore, c, datas)
	if st := scrubPass(t, p.clientStore); st.DamagedBlobs != 0 || st.Blobs != len(c) {
		t.Fatalf("pass after the repair: %+v", st)
	}
	for _, e := range c {
		if err := p.clientStore.Delete(e.Hash); err != nil {
			t.Fatal(err)
		}
	}
	if packs, err := os.ReadDir(filepath.Join(p.clientStore.dir, "packs")); err != nil || len(packs) != 0 {
		t.Fatalf("packs left after every member was deleted: %v %v", packs, err)
	}
}
