package hosting

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/internal/p2ptest"
	"github.com/seedfleet/seedfleet/seednode/fleet"
)

// testMembers is a fleet of pods with replicas r, seen from self.
func testMembers(pods, r, self int) fleet.Members {
	m := fleet.Members{Replicas: r, Self: self}
	for i := range pods {
		m.Pods = append(m.Pods, peer.AddrInfo{ID: peer.ID(fmt.Sprintf("pod-%02d", i))})
	}
	return m
}

// testRecord is subject i's record, as of request time t.
func testRecord(i int, t time.Time) *Record {
	sum := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i)))
	return &Record{Kind: SubjectAgent, Subject: ed25519.PublicKey(sum[:]), LastRequest: t, Admitted: t,
		Vaults: []VaultRecord{{Namespace: sum}}}
}

// rootsAgree reports whether a's digest of what it shares with b equals b's
// of what it shares with a, under a's key.
func rootsAgree(a, b *recordSync) bool {
	root, _, _ := b.theirDigest(a.members.Self, b.peers[a.members.Self], a.key)
	return a.peers[b.members.Self].mine.Root() == root
}

// TestRecordIndexDigests: two pods that hold the same records have equal
// digests of what they share, whatever else each holds; a newer version or
// a record only one holds makes them differ in exactly its bucket, and
// indexing a record twice changes nothing.
func TestRecordIndexDigests(t *testing.T) {
	const pods, r = 4, 2
	a, b := newRecordIndex(testMembers(pods, r, 0), time.Minute), newRecordIndex(testMembers(pods, r, 1), time.Minute)
	t0 := time.Unix(1_800_000_000, 0)
	shared := 0
	for i := range 2000 {
		rec := testRecord(i, t0)
		home := a.members.Home(PlacementKey(rec.Kind, rec.Subject))
		for _, rs := range []*recordSync{a, b} {
			if slices.Contains(home, rs.members.Self) {
				rs.changed(rec.Subject, nil, rec)
			}
		}
		if slices.Contains(home, 0) && slices.Contains(home, 1) {
			shared++
		}
	}
	if shared == 0 || !rootsAgree(a, b) || !rootsAgree(b, a) {
		t.Fatalf("pods holding the same %d shared records disagree", shared)
	}
	// Find a subject the two share, and change it on b only.
	var rec *Record
	for i := 0; rec == nil; i++ {
		c := testRecord(i, t0)
		if home := a.members.Home(PlacementKey(c.Kind, c.Subject)); slices.Contains(home, 0) && slices.Contains(home, 1) {
			rec = c
		}
	}
	newer := *rec
	newer.LastRequest = t0.Add(time.Second)
	b.changed(rec.Subject, rec, &newer)
	b.changed(rec.Subject, rec, &newer) // twice: harmless
	if rootsAgree(a, b) {
		t.Fatal("a newer version on one pod leaves the digests equal")
	}
	if got, want := a.peers[1].mine.DiffBuckets(b.peers[0].theirs), []int{fleet.BucketOf([32]byte(rec.Subject))}; !slices.Equal(got, want) {
		t.Fatalf("differing buckets %v, want %v", got, want)
	}
	a.changed(rec.Subject, rec, &newer)
	if !rootsAgree(a, b) || !rootsAgree(b, a) {
		t.Fatal("equal versions again, different digests")
	}
	// A record only b holds (a lost it) differs too.
	a.changed(rec.Subject, &newer, nil)
	if rootsAgree(a, b) {
		t.Fatal("a record one pod lacks leaves the digests equal")
	}
	if !b.shares(0, fleet.Pair{Key: [32]byte(rec.Subject), Value: newer.Version()}) {
		t.Fatal("a pod does not keep a listed subject it is a home pod of")
	}
	if b.shares(0, fleet.Pair{Key: [32]byte(rec.Subject), Value: [32]byte{9}}) {
		t.Fatal("a pair of an unknown subject kind is kept")
	}
}

// BenchmarkRecordIndex: what a pod spends per record change and to index
// 100,000 records at start, in a fleet of 10 pods with R = 3; the baseline
// is placing them (what a pod already does per record at start).
func BenchmarkRecordIndex(b *testing.B) {
	const n = 100_000
	recs := make([]*Record, n)
	t0 := time.Unix(1_800_000_000, 0)
	for i := range recs {
		recs[i] = testRecord(i, t0)
	}
	var perIndex, placing time.Duration
	for range b.N {
		m := testMembers(10, 3, 0)
		start := time.Now()
		for _, rec := range recs {
			m.Home(PlacementKey(rec.Kind, rec.Subject))
		}
		placing = time.Since(start)
		rs := newRecordIndex(testMembers(10, 3, 0), time.Minute)
		start = time.Now()
		for _, rec := range recs {
			rs.changed(rec.Subject, nil, rec)
		}
		perIndex = time.Since(start)
	}
	fmt.Printf("BENCH record_place_100k_ms %.1f ms\n", float64(placing.Microseconds())/1000)
	fmt.Printf("BENCH record_index_100k_ms %.1f ms\n", float64(perIndex.Microseconds())/1000)
	fmt.Printf("BENCH record_index_per_change_us %.2f us\n", float64(perIndex.Nanoseconds())/n/1000)
}

// TestRecordExchangeAnswersOnlyFleetPods: a peer the fleet does not list is
// cut off before it learns anything; a listed pod gets its answer.
func TestRecordExchangeAnswersOnlyFleetPods(t *testing.T) {
	pods := startFleet(t, 2, 2, Policy{Admission: fleet.Open})
	stranger := p2ptest.NewHost(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	askAt := func(h host.Host) (fleet.ExchangeResult, error) {
		h.Peerstore().AddAddrs(pods[0].host.ID(), pods[0].host.Addrs(), time.Hour)
		st, err := h.NewStream(ctx, pods[0].host.ID(), RecordProtocol)
		if err != nil {
			return fleet.ExchangeResult{}, err
		}
		defer st.Close()
		empty := fleet.NewDigest([32]byte{1})
		return fleet.Ask(st, [32]byte{1}, [32]byte{2}, fleet.ExchangeSide{
			Diff: empty.DiffBucketList,
			In:   func([]uint16) []fleet.Pair { return nil },
			Keep: func(fleet.Pair) bool { return true },
		})
	}
	if res, err := askAt(stranger); err == nil {
		t.Fatalf("a stranger got an answer: %+v", res)
	}
	if _, err := askAt(pods[1].host); err != nil {
		t.Fatalf("a fleet pod got no answer: %v", err)
	}
}
