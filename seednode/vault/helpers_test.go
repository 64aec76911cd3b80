package vault

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

// testHost is a real libp2p host on loopback with nothing that dials out.
func testHost(t testing.TB) host.Host {
	t.Helper()
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.DisableRelay(),
		libp2p.NoListenAddrs, // replaced below; keeps defaults from adding QUIC etc.
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func connect(t testing.TB, a, b host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

func testStore(t testing.TB, opts StoreOptions) *Store {
	t.Helper()
	st, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// writer signs entries for one namespace as one author.
type writer struct {
	nsKey     ed25519.PrivateKey
	authorKey ed25519.PrivateKey
	ns        NamespaceID
	author    AuthorID
	consent   Consent
}

func newWriter(t testing.TB, nsKey ed25519.PrivateKey, rng *rand.Rand) *writer {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(rng.IntN(256))
	}
	ak := ed25519.NewKeyFromSeed(seed)
	w := &writer{nsKey: nsKey, authorKey: ak}
	w.ns = NamespaceID(nsKey.Public().(ed25519.PublicKey))
	w.author = AuthorID(ak.Public().(ed25519.PublicKey))
	w.consent = NewCapability(nsKey, w.author, 0)
	return w
}

func newNamespaceKey(rng *rand.Rand) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(rng.IntN(256))
	}
	return ed25519.NewKeyFromSeed(seed)
}

func (w *writer) item(t testing.TB, key string, value string, ts uint64) Item {
	t.Helper()
	v := []byte(value)
	e := Entry{Namespace: w.ns, Key: []byte(key), Author: w.author, Hash: HashOf(v), Size: uint64(len(v)), Timestamp: ts}
	se, err := Sign(e, w.authorKey, w.consent, nil)
	if err != nil {
		t.Fatal(err)
	}
	return Item{Entry: se, Content: v}
}

func insert(t testing.TB, st *Store, items ...Item) InsertResult {
	t.Helper()
	res, err := st.Insert(items, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// dump returns every (key, author) -> fingerprint of a vault, from a full scan.
func dump(t testing.TB, st *Store, ns NamespaceID) map[Hash]Hash {
	t.Helper()
	out := map[Hash]Hash{}
	err := st.scanNode(ns, Root, func(ih *Hash, fp *Hash, _ []byte) error {
		out[*ih] = *fp
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkAggregates recomputes every stored aggregate from the entries.
func checkAggregates(t testing.TB, st *Store, ns NamespaceID) {
	t.Helper()
	want := map[uint32]*Aggregate{}
	err := st.scanNode(ns, Root, func(ih *Hash, fp *Hash, _ []byte) error {
		for d := 0; d <= aggDepth; d++ {
			k := nodeOf(ih, d).aggSuffix()
			if want[k] == nil {
				want[k] = &Aggregate{}
			}
			want[k].add(fp)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, a := range want {
		got, err := st.getAggregate(aggKey(ns, k))
		if err != nil {
			t.Fatal(err)
		}
		if got != *a {
			t.Fatalf("aggregate %06x: stored %+v, recomputed %+v", k, got, *a)
		}
	}
}

func sameVault(t testing.TB, a, b *Store, ns NamespaceID) {
	t.Helper()
	da, db := dump(t, a, ns), dump(t, b, ns)
	if len(da) != len(db) {
		t.Fatalf("replicas differ: %d vs %d entries", len(da), len(db))
	}
	for k, v := range da {
		if db[k] != v {
			t.Fatalf("replicas differ at item %s", Hash(k).Short())
		}
	}
}

func nowMicros() uint64 { return uint64(time.Now().UnixMicro()) }

var _ = fmt.Sprintf
