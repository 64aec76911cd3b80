package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/seedfleet/seedfleet/internal/p2ptest"
	"github.com/seedfleet/seedfleet/seednode/blobs"
	"github.com/seedfleet/seedfleet/seednode/identity"
)

// TestFetchBlobHereNeedsNoPeer: a blob complete on the device is "fetched"
// without any peer (get --out exports it), and one that is not says there
// is no peer to fetch it from.
func TestFetchBlobHereNeedsNoPeer(t *testing.T) {
	h, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ns, err := h.CreateVault()
	if err != nil {
		t.Fatal(err)
	}
	value := bytes.Repeat([]byte("photo "), 10_000)
	e, err := h.Put(ns, []byte("photo"), value)
	if err != nil {
		t.Fatal(err)
	}
	size := e.Size
	st, err := h.FetchBlob(context.Background(), nil, e.Hash, blobs.FetchOptions{Size: &size, MaxSize: size})
	if err != nil || !st.AlreadyComplete || st.Size != size {
		t.Fatalf("a blob held here: %+v, %v", st, err)
	}
	if err := h.Blobs.Delete(e.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := h.FetchBlob(context.Background(), nil, e.Hash, blobs.FetchOptions{Size: &size, MaxSize: size}); err == nil {
		t.Fatal("a blob not held here was fetched from no peer")
	}
}

// TestFetchCollectionFromSeveralPeers: members come from every reachable
// peer in one fetch: each peer holds half of them, and a peer that cannot
// be reached does not stop the others.
func TestFetchCollectionFromSeveralPeers(t *testing.T) {
	var c blobs.Collection
	var datas [][]byte
	all, err := blobs.Open(t.TempDir()) // names each member's hash
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	for i := range 40 {
		data := bytes.Repeat([]byte{byte(i), 7}, 3000+i*100)
		h, err := all.AddBytes(data)
		if err != nil {
			t.Fatal(err)
		}
		datas = append(datas, data)
		c = append(c, blobs.CollectionEntry{Name: fmt.Sprintf("m/%02d", i), Hash: h, Size: uint64(len(data))})
	}
	var peers []peer.AddrInfo
	_, deadKey, _ := ed25519.GenerateKey(nil)
	deadID, err := identity.PeerID(deadKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	peers = append(peers, peer.AddrInfo{ID: deadID, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}})
	var hash [32]byte
	var size uint64
	for half := range 2 {
		st, err := blobs.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		for i := half * 20; i < half*20+20; i++ {
			if _, err := st.AddBytes(datas[i]); err != nil {
				t.Fatal(err)
			}
		}
		if hash, size, err = st.AddCollection(c); err != nil {
			t.Fatal(err)
		}
		h := p2ptest.NewHost(t, true)
		svc, err := blobs.NewService(h, st)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { svc.Close() })
		peers = append(peers, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	}
	dev, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got, stats, err := dev.FetchCollection(ctx, peers, hash, blobs.FetchOptions{Size: &size})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(c) || !stats.Complete || stats.MembersFetched != uint64(len(c)) {
		t.Fatalf("%d members, %+v: want all %d fetched in one fetch", len(got), stats, len(c))
	}
	for i, e := range c {
		var buf bytes.Buffer
		if err := dev.Blobs.Export(e.Hash, &buf, 0, 0); err != nil || !bytes.Equal(buf.Bytes(), datas[i]) {
			t.Fatalf("member %s: %v", e.Name, err)
		}
	}
}
