package blobs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"lukechampine.com/blake3/bao"

	"github.com/seedfleet/seedfleet/internal/wire"
)

// memberData makes n members of 1-8 KiB (stored in the record), every
// tenth one of 17-40 KiB (stored in files), named and sized by index.
func memberData(seed uint64, n int) [][]byte {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([][]byte, n)
	for i := range out {
		size := 1<<10 + r.IntN(7<<10)
		if i%10 == 0 {
			size = 17<<10 + r.IntN(23<<10)
		}
		out[i] = randBytes(seed<<20+uint64(i), size)
	}
	return out
}

// addMembers stores datas in st (in batches: thousands of blobs added one
// durable add at a time take minutes) and returns the collection of them,
// stored too, with its hash and size.
func addMembers(t testing.TB, st *Store, datas [][]byte) (Collection, [32]byte, uint64) {
	t.Helper()
	bw := st.newBatchWriter()
	var c Collection
	for i, d := range datas {
		ob, h := bao.EncodeBuf(d, GroupLog, true)
		c = append(c, CollectionEntry{Name: fmt.Sprintf("dir%d/member-%05d", i%7, i), Hash: h, Size: uint64(len(d))})
		if err := bw.claim(h); err != nil {
			continue // the same bytes twice
		}
		if err := bw.add(h, d, ob); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(bw.flush(), bw.close()); err != nil {
		t.Fatal(err)
	}
	h, size, err := st.AddCollection(c)
	if err != nil {
		t.Fatal(err)
	}
	return c, h, size
}

// requestCounter counts a service's requests per blob (through its Policy).
type requestCounter struct {
	mu sync.Mutex
	n  map[[32]byte]int
}

func (c *requestCounter) policy(_ peer.ID, h [32]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[[32]byte]int{}
	}
	c.n[h]++
	return nil
}

func (c *requestCounter) get(h [32]byte) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[h]
}

// checkCollection checks every member of c is complete in st with its bytes.
func checkCollection(t *testing.T, st *Store, c Collection, datas [][]byte) {
	t.Helper()
	for i, e := range c {
		if got := exported(t, st, e.Hash, 0, 0); !bytes.Equal(got, datas[i]) {
			t.Fatalf("member %s: %d bytes differ from the %d sent", e.Name, len(got), len(datas[i]))
		}
	}
}

// TestCollectionKilledAndResumed: a collection of 3,000 small members is
// fetched by a client whose host and store are closed abruptly at a random
// member, several times; each run resumes. The members end byte-identical,
// and the server is never asked again for a member the client's store
// recorded complete (a member is recorded only once verified and durable).
func TestCollectionKilledAndResumed(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	datas := memberData(1, 3000)
	server := testStore(t)
	c, ch, csize := addMembers(t, server, datas)
	sh := testHost(t)
	var counts requestCounter
	newTestService(t, sh, server, WithPolicy(counts.policy))
	dir := t.TempDir()

	// countAtComplete: the server's count for a member when the client's
	// store was first seen to hold it complete.
	countAtComplete := map[[32]byte]int{}
	observe := func() int {
		st, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		n := 0
		for _, e := range c {
			s, err := st.Stat(e.Hash)
			if err != nil {
				t.Fatal(err)
			}
			if s.State == Complete {
				n++
				if _, ok := countAtComplete[e.Hash]; !ok {
					countAtComplete[e.Hash] = counts.get(e.Hash)
				}
			}
		}
		return n
	}
	const kills = 4
	for round := 0; ; round++ {
		before := observe()
		st, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		ch2 := testHost(t)
		svc := newTestService(t, ch2, st)
		if err := ch2.Connect(t.Context(), peer.AddrInfo{ID: sh.ID(), Addrs: sh.Addrs()}); err != nil {
			t.Fatal(err)
		}
		killAt := uint64(0)
		if round < kills {
			killAt = uint64(before + 1 + rng.IntN((len(c)-before)/2))
		}
		var once sync.Once
		killed := make(chan struct{})
		opts := FetchOptions{Size: &csize, ProgressEvery: -1, Progress: func(p FetchProgress) {
			if killAt > 0 && p.MembersDone >= killAt {
				once.Do(func() {
					go func() { // abruptly, while the fetch goes on
						ch2.Close()
						st.Close()
						close(killed)
					}()
				})
			}
		}}
		_, stats, err := svc.FetchCollection(t.Context(), sh.ID(), ch, opts)
		if killAt > 0 {
			<-killed
			if err == nil {
				t.Fatalf("round %d: the fetch ended well although killed at member %d", round, killAt)
			}
			svc.Close()
			t.Logf("round %d: killed at member %d (%d complete before): %v", round, killAt, before, err)
			continue
		}
		if err != nil {
			t.Fatalf("final round: %v", err)
		}
		if !stats.Complete || stats.MembersSkipped != uint64(before) || stats.MembersFetched != uint64(len(c)-before) {
			t.Fatalf("final round: %+v, want %d members skipped and %d fetched", stats, before, len(c)-before)
		}
		svc.Close()
		ch2.Close()
		checkCollection(t, st, c, datas)
		st.Close()
		break
	}
	if n := observe(); n != len(c) {
		t.Fatalf("%d of %d members complete at the end", n, len(c))
	}
	refetched := 0
	for _, e := range c {
		at := countAtComplete[e.Hash]
		if got := counts.get(e.Hash); got != at {
			t.Errorf("member %s was requested %d times after it was complete", e.Name, got-at)
		}
		if at > 1 {
			refetched++
		}
	}
	t.Logf("%d members were fetched more than once (verified but not yet durable at a kill)", refetched)
}

// badPeer serves blobs from memory on both protocols, with the data of one
// blob corrupted, and counts requests.
type badPeer struct {
	blobs   map[[32]byte][2][]byte // data, outboard
	corrupt [32]byte
	counts  requestCounter
}

func (b *badPeer) handle(st network.Stream) {
	defer st.Close()
	br := bufio.NewReader(st)
	bw := bufio.NewWriter(st)
	for {
		raw, err := wire.ReadFrame(br, maxRequest, ErrBadRequest)
		if err != nil {
			_ = bw.Flush()
			return
		}
		req, err := decodeRequest(raw)
		if err != nil {
			st.Reset()
			return
		}
		_ = b.counts.policy("", req.hash)
		blob, ok := b.blobs[req.hash]
		if !ok {
			_ = bw.WriteByte(statusNotFound)
			continue
		}
		data := blob[0]
		if req.hash == b.corrupt {
			data = bytes.Clone(data)
			data[len(data)/2] ^= 1
		}
		_ = bw.WriteByte(statusOK)
		if WriteStream(bw, uint64(len(blob[0])), bytes.NewReader(data), bytes.NewReader(blob[1]), req.ranges) != nil {
			st.Reset()
			return
		}
		if br.Buffered() == 0 {
			_ = bw.Flush()
		}
	}
}

// TestCollectionBadMemberFromOnePeer: one peer sends corrupted data for one
// member: it is refused, the other members keep coming from that peer, and
// the bad one is fetched from the next peer.
func TestCollectionBadMemberFromOnePeer(t *testing.T) {
	datas := memberData(2, 300)
	honest := testStore(t)
	c, ch, csize := addMembers(t, honest, datas)
	bad := &badPeer{blobs: map[[32]byte][2][]byte{}, corrupt: c[137].Hash}
	for i, e := range c {
		ob, _ := bao.EncodeBuf(datas[i], GroupLog, true)
		bad.blobs[e.Hash] = [2][]byte{datas[i], ob}
	}
	cb, _ := honest.ReadCollection(ch)
	enc, _ := cb.MarshalBinary()
	obc, _ := bao.EncodeBuf(enc, GroupLog, true)
	bad.blobs[ch] = [2][]byte{enc, obc}
	badHost := testHost(t)
	badHost.SetStreamHandler(ProtocolID, bad.handle)
	badHost.SetStreamHandler(ProtocolPipeline, bad.handle)
	honestHost := testHost(t)
	var honestCounts requestCounter
	newTestService(t, honestHost, honest, WithPolicy(honestCounts.policy))

	client := testStore(t)
	clientHost := testHost(t)
	svc := newTestService(t, clientHost, client)
	for _, h := range []host.Host{badHost, honestHost} {
		if err := clientHost.Connect(t.Context(), peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	got, stats, err := svc.FetchCollectionFrom(t.Context(), []peer.ID{badHost.ID(), honestHost.ID()}, ch, FetchOptions{Size: &csize})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(c) || !stats.Complete || stats.MembersFetched != uint64(len(c)) {
		t.Fatalf("%d members, %+v", len(got), stats)
	}
	checkCollection(t, client, c, datas)
	for _, e := range c {
		wantBad, wantHonest := 1, 0
		if e.Hash == bad.corrupt {
			wantHonest = 1
		}
		if b, h := bad.counts.get(e.Hash), honestCounts.get(e.Hash); b != wantBad || h != wantHonest {
			t.Errorf("member %s: requested %d times from the bad peer and %d from the honest one, want %d and %d", e.Name, b, h, wantBad, wantHonest)
		}
	}
}

// TestCollectionFromPeerWithoutPipeline: a peer that predates the pipeline
// (it serves only ProtocolID) still serves a collection, one stream a member.
func TestCollectionFromPeerWithoutPipeline(t *testing.T) {
	datas := memberData(3, 40)
	p := newPeers(t)
	p.serverHost.RemoveStreamHandler(ProtocolPipeline)
	c, ch, csize := addMembers(t, p.serverStore, datas)
	got, stats, err := p.client.FetchCollection(t.Context(), p.serverHost.ID(), ch, FetchOptions{Size: &csize})
	if err != nil || len(got) != len(c) || !stats.Complete || stats.MembersFetched != uint64(len(c)) {
		t.Fatalf("%d members, %+v, %v", len(got), stats, err)
	}
	checkCollection(t, p.clientStore, c, datas)
}

// TestPipelineRefusalsAndMissing: in one pipeline, members the sender does
// not have or refuses are reported as such, and the others still arrive.
func TestPipelineRefusalsAndMissing(t *testing.T) {
	datas := memberData(4, 30)
	refused := map[[32]byte]bool{}
	var mu sync.Mutex
	p := newPeers(t, WithPolicy(func(_ peer.ID, h [32]byte) error {
		mu.Lock()
		defer mu.Unlock()
		if refused[h] {
			return errors.New("not for you")
		}
		return nil
	}))
	c, ch, csize := addMembers(t, p.serverStore, datas)
	mu.Lock()
	refused[c[3].Hash] = true
	mu.Unlock()
	if err := p.serverStore.Delete(c[5].Hash); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, stats, err := p.client.FetchCollection(ctx, p.serverHost.ID(), ch, FetchOptions{Size: &csize})
	if err == nil || !errors.Is(err, ErrRefused) || stats.Complete {
		t.Fatalf("%+v, %v: want an incomplete fetch naming the refusal", stats, err)
	}
	if stats.MembersFetched != uint64(len(c)-2) {
		t.Fatalf("%d members fetched, want %d", stats.MembersFetched, len(c)-2)
	}
	for i, e := range c {
		s, _ := p.clientStore.Stat(e.Hash)
		if want := i != 3 && i != 5; (s.State == Complete) != want {
			t.Errorf("member %d: %v", i, s.State)
		}
	}
}

// TestPackedBlobs: blobs a collection fetch packed are served on to another
// peer, exported, deleted one by one (the pack goes with the last), and a
// pack no record counts (a batch cut short) is removed when the store opens.
func TestPackedBlobs(t *testing.T) {
	datas := memberData(6, 12)
	p := newPeers(t)
	c, ch, csize := addMembers(t, p.serverStore, datas)
	if _, st, err := p.client.FetchCollection(t.Context(), p.serverHost.ID(), ch, FetchOptions{Size: &csize}); err != nil || !st.Complete {
		t.Fatalf("%+v %v", st, err)
	}
	packs := func(dir string) []string {
		ents, _ := os.ReadDir(filepath.Join(dir, "packs"))
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	if n := len(packs(p.clientStore.dir)); n != 1 {
		t.Fatalf("%d packs after one small batch, want 1", n)
	}
	// The client serves what it packed to a third peer.
	third := testStore(t)
	th := testHost(t)
	tsvc := newTestService(t, th, third)
	if err := th.Connect(t.Context(), peer.AddrInfo{ID: p.client.host.ID(), Addrs: p.client.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	for i, e := range c {
		size := e.Size
		if _, err := tsvc.Fetch(t.Context(), p.client.host.ID(), e.Hash, FetchOptions{Size: &size}); err != nil {
			t.Fatalf("member %d from the packing peer: %v", i, err)
		}
	}
	checkCollection(t, third, c, datas)
	// Deleting every member removes the pack with the last packed one
	// (those up to InlineMax are kept in their record).
	packed := 0
	for _, e := range c {
		if e.Size > InlineMax {
			packed++
		}
	}
	for i, e := range c {
		if err := p.clientStore.Delete(e.Hash); err != nil {
			t.Fatal(err)
		}
		if s, _ := p.clientStore.Stat(e.Hash); s.State != Missing {
			t.Fatalf("member %d: %v after Delete", i, s.State)
		}
		if e.Size > InlineMax {
			packed--
		}
		if n := len(packs(p.clientStore.dir)); (n == 0) != (packed == 0) {
			t.Fatalf("after deleting %d of %d members (%d packed ones left): %d packs", i+1, len(c), packed, n)
		}
	}
	// A pack left by a batch that was never recorded.
	dir := t.TempDir()
	st, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(st.packPath(42), []byte("half a batch"), 0o600); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if st, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if n := packs(dir); len(n) != 0 {
		t.Fatalf("unrecorded packs left after Open: %v", n)
	}
}
