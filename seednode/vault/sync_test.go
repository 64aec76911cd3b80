package vault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

type pair struct {
	a, b      *Store
	sa, sb    *Service
	nsKey     []byte
	ns        NamespaceID
	hostedByB *HostedSet
}

func newPair(t testing.TB, ns NamespaceID) *pair {
	t.Helper()
	ha, hb := testHost(t), testHost(t)
	p := &pair{a: testStore(t, StoreOptions{}), b: testStore(t, StoreOptions{}), ns: ns}
	p.hostedByB = NewHostedSet(ns)
	p.sa = newTestService(t, ha, p.a, WithPolicy(NewHostedSet(ns)))
	p.sb = newTestService(t, hb, p.b, WithPolicy(p.hostedByB))
	t.Cleanup(func() { p.sa.Close(); p.sb.Close() })
	connect(t, ha, hb)
	return p
}

func (p *pair) sync(t testing.TB) SyncStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := p.sa.Sync(ctx, p.sb.host.ID(), p.ns, SyncOptions{})
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return st
}

func TestSyncConvergesRandomReplicas(t *testing.T) {
	for seed := uint64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed*7))
			nsKey := newNamespaceKey(rng)
			writers := []*writer{newWriter(t, nsKey, rng), newWriter(t, nsKey, rng), newWriter(t, nsKey, rng)}
			p := newPair(t, writers[0].ns)
			shared := rng.IntN(3000)
			onlyA, onlyB := rng.IntN(300), rng.IntN(300)
			base := nowMicros() - 1e9
			var common, ia, ib []Item
			for i := range shared {
				w := writers[rng.IntN(len(writers))]
				common = append(common, w.item(t, fmt.Sprintf("k/%06d", i), fmt.Sprint("v", i), base+uint64(i)))
			}
			for i := range onlyA {
				w := writers[rng.IntN(len(writers))]
				ia = append(ia, w.item(t, fmt.Sprintf("k/%06d", rng.IntN(shared+500)), fmt.Sprint("a", i), base+uint64(rng.IntN(1e6))))
			}
			for i := range onlyB {
				w := writers[rng.IntN(len(writers))]
				ib = append(ib, w.item(t, fmt.Sprintf("k/%06d", rng.IntN(shared+500)), fmt.Sprint("b", i), base+uint64(rng.IntN(1e6))))
			}
			if len(common) > 0 {
				insert(t, p.a, common...)
				insert(t, p.b, common...)
			}
			for _, it := range ia {
				insert(t, p.a, it)
			}
			for _, it := range ib {
				insert(t, p.b, it)
			}
			st := p.sync(t)
			sameVault(t, p.a, p.b, p.ns)
			checkAggregates(t, p.a, p.ns)
			checkAggregates(t, p.b, p.ns)
			// A second sync finds nothing to do in one round trip.
			again := p.sync(t)
			if again.ItemsSent != 0 || again.ItemsReceived != 0 || again.RoundTrips != 1 {
				t.Fatalf("second sync moved data: %+v", again)
			}
			t.Logf("shared=%d onlyA=%d onlyB=%d: rt=%d sent=%d recv=%d bytes %d/%d", shared, onlyA, onlyB,
				st.RoundTrips, st.ItemsSent, st.ItemsReceived, st.BytesSent, st.BytesReceived)
		})
	}
}
