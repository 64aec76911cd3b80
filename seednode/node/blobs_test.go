package node

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/seednode/blobs"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

func randomValue(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func blobState(t *testing.T, st *blobs.Store, h vault.Hash) blobs.State {
	t.Helper()
	s, err := st.Stat(h)
	if err != nil {
		t.Fatal(err)
	}
	return s.State
}

// TestSeedFetchesReferencedBlobsAndCollectsGarbage: a device writes a large
// value; syncing gives the seed the entry and, over the same connection, the
// blob. Another device gets the blob from the seed. Overwriting the entry
// makes the old blob garbage; dropping the vault makes everything garbage.
func TestSeedFetchesReferencedBlobsAndCollectsGarbage(t *testing.T) {
	laptop, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer laptop.Close()
	ns, _ := laptop.CreateVault()
	n := startNode(t, Config{HostedVaults: []vault.NamespaceID{ns}, GCInterval: time.Hour})
	addr := n.Addrs()[0].String()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	v1 := randomValue(1, 300<<10)
	e1, err := laptop.Put(ns, []byte("photo"), v1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.Sync(ctx, ns, addr, client.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := blobState(t, n.Blobs(), e1.Hash); got != blobs.Complete {
		t.Fatalf("seed holds the blob as %v after the sync returned", got)
	}

	phone, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	if _, err := phone.Sync(ctx, ns, addr, client.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	items, err := phone.Store.Get(ns, []byte("photo"))
	if err != nil || len(items) != 1 || items[0].Content != nil {
		t.Fatalf("phone entry: %v %v", items, err)
	}
	size := items[0].Entry.Size
	info, err := p2p.ParsePeerAddr(addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := phone.FetchBlob(ctx, []peer.AddrInfo{info}, items[0].Entry.Hash, blobs.FetchOptions{Size: &size}); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := phone.Blobs.Export(items[0].Entry.Hash, &got, 0, 0); err != nil || !bytes.Equal(got.Bytes(), v1) {
		t.Fatalf("phone's copy of the blob differs (%v)", err)
	}

	// Overwrite: the new blob arrives, the old one is collected.
	v2 := randomValue(2, 200<<10)
	e2, err := laptop.Put(ns, []byte("photo"), v2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.Sync(ctx, ns, addr, client.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	deleted, err := n.CollectGarbage()
	if err != nil {
		t.Fatal(err)
	}
	if deleted != 1 || blobState(t, n.Blobs(), e1.Hash) != blobs.Missing || blobState(t, n.Blobs(), e2.Hash) != blobs.Complete {
		t.Fatalf("after overwrite: deleted %d, old %v, new %v", deleted, blobState(t, n.Blobs(), e1.Hash), blobState(t, n.Blobs(), e2.Hash))
	}

	// Unhosting the vault drops its replica and its blobs.
	n.Hosted().Replace(nil)
	if deleted, err = n.CollectGarbage(); err != nil || deleted != 1 {
		t.Fatalf("after unhosting: deleted %d, %v", deleted, err)
	}
	if st, _ := n.Store().Stats(ns); st.Entries != 0 {
		t.Fatalf("unhosted vault still has %d entries", st.Entries)
	}
	if blobState(t, n.Blobs(), e2.Hash) != blobs.Missing {
		t.Fatal("blob of an unhosted vault kept")
	}
}

// TestQuotaRefusalReachesTheDevice: an entry whose blob would exceed the
// vault's byte quota is refused with a reason the device sees; the seed
// fetches nothing for it and keeps serving.
func TestQuotaRefusalReachesTheDevice(t *testing.T) {
	laptop, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer laptop.Close()
	ns, _ := laptop.CreateVault()
	n := startNode(t, Config{HostedVaults: []vault.NamespaceID{ns}, Limits: vault.Limits{MaxBytes: 100 << 10}})
	addr := n.Addrs()[0].String()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	big, err := laptop.Put(ns, []byte("video"), randomValue(3, 300<<10))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.Put(ns, []byte("note"), []byte("small")); err != nil {
		t.Fatal(err)
	}
	st, err := laptop.Sync(ctx, ns, addr, client.SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.PeerRefused != 1 || !strings.Contains(st.PeerRefusal, "quota") || !strings.Contains(st.PeerRefusal, "video") {
		t.Fatalf("device was told: %d refused, %q", st.PeerRefused, st.PeerRefusal)
	}
	if s, _ := n.Store().Stats(ns); s.Entries != 1 {
		t.Fatalf("seed stored %d entries, want only the small one", s.Entries)
	}
	if blobState(t, n.Blobs(), big.Hash) != blobs.Missing {
		t.Fatal("seed fetched the blob of a refused entry")
	}
	phone, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	if st, err := phone.Sync(ctx, ns, addr, client.SyncOptions{}); err != nil || st.Stored != 1 {
		t.Fatalf("another device after the refusal: %+v %v", st, err)
	}
}

// TestSeedFetchesABlobItMissedOnTheNextSync: the seed's fetch of a blob
// fails during the sync that brings its entry (here: the device does not
// have it at that moment, as when a device is killed mid-fetch). The next
// sync brings no entry, yet the seed fetches the blob then: until it has
// it, the device may be the only holder.
func TestSeedFetchesABlobItMissedOnTheNextSync(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	device, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer device.Close()
	ns, err := device.CreateVault()
	if err != nil {
		t.Fatal(err)
	}
	photo := randomValue(11, 200<<10)
	e, err := device.Put(ns, []byte("photo"), photo)
	if err != nil {
		t.Fatal(err)
	}
	if err := device.Blobs.Delete(e.Hash); err != nil {
		t.Fatal(err)
	}
	seed := startNode(t, Config{HostedVaults: []vault.NamespaceID{ns}})
	addr := seed.Addrs()[0].String()
	if _, err := device.Sync(ctx, ns, addr, client.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the seed knows it lacks the blob", func() error {
		if vs, err := vaultStatus(ctx, seed, ns); err != nil || vs.BlobsMissing != 1 {
			return fmt.Errorf("status %+v, %v", vs, err)
		}
		return nil
	})
	if _, err := device.Blobs.AddBytes(photo); err != nil {
		t.Fatal(err)
	}
	st, err := device.Sync(ctx, ns, addr, client.SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.ItemsSent != 0 {
		t.Fatalf("the second sync sent %d entries; the test wants a sync that brings none", st.ItemsSent)
	}
	eventually(t, "the seed fetches the blob after the next sync", func() error {
		if got := blobState(t, seed.Blobs(), e.Hash); got != blobs.Complete {
			return fmt.Errorf("the seed holds the blob as %v", got)
		}
		return nil
	})
}

// TestEmptyVaultsKeepNoBlobCount: a seed keeps no blob count for hosted
// vaults that hold nothing (a public fleet's seed hosts 100,000, mostly
// idle), yet answers for them as counted: none missing, and a vault that
// gets an entry is counted from then on.
func TestEmptyVaultsKeepNoBlobCount(t *testing.T) {
	var list []vault.NamespaceID
	for range 50 {
		list = append(list, newNS(t))
	}
	n := startNode(t, Config{HostedVaults: list, DHT: DHTConfig{Mode: config.DHTOff}})
	for _, ns := range list {
		if bc, ok := n.blobCounts.get(ns); !ok || bc != (blobCount{}) {
			t.Fatalf("empty hosted vault: count %+v, counted %v; want counted, nothing missing", bc, ok)
		}
		if n.blobCounts.lacking(ns) != 0 {
			t.Fatal("an empty vault lacks blobs")
		}
	}
	n.blobCounts.mu.Lock()
	kept := len(n.blobCounts.counts)
	n.blobCounts.mu.Unlock()
	if kept != 0 {
		t.Fatalf("%d counts kept for empty vaults, want none", kept)
	}
	if _, ok := n.blobCounts.get(newNS(t)); ok {
		t.Fatal("a vault the seed does not host counts as counted")
	}
}

// TestDeletedEntriesBlobsAreCollected: a device deletes a key whose value is
// a blob; after a sync the seed's entry is gone, its referenced bytes and
// blob count drop, and the next collection deletes the blob.
func TestDeletedEntriesBlobsAreCollected(t *testing.T) {
	laptop, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer laptop.Close()
	ns, _ := laptop.CreateVault()
	n := startNode(t, Config{HostedVaults: []vault.NamespaceID{ns}, GCInterval: time.Hour})
	addr := n.Addrs()[0].String()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	photo, err := laptop.Put(ns, []byte("photos/1"), randomValue(4, 300<<10))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.Put(ns, []byte("kept"), []byte("small")); err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.Sync(ctx, ns, addr, client.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the blob counted complete", func() error {
		if bc, _ := n.blobCounts.get(ns); bc.complete != 1 {
			return fmt.Errorf("count %+v", bc)
		}
		return nil
	})
	if deleted, err := n.CollectGarbage(); err != nil || deleted != 0 {
		t.Fatalf("collection before the deletion: %d, %v", deleted, err)
	}

	if _, err := laptop.Delete(ns, []byte("photos/"), true); err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.Sync(ctx, ns, addr, client.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if items, _ := n.Store().Get(ns, []byte("photos/1")); len(items) != 0 {
		t.Fatal("the seed still lists the deleted entry")
	}
	rep, err := n.Store().VerifyVault(ns)
	if err != nil || rep.Problem != "" || rep.Bytes != uint64(len("small")) {
		t.Fatalf("seed replica after the deletion: %+v, %v", rep, err)
	}
	eventually(t, "the blob count to drop", func() error {
		if bc, _ := n.blobCounts.get(ns); bc != (blobCount{fetches: bc.fetches}) {
			return fmt.Errorf("count %+v", bc)
		}
		return nil
	})
	deleted, err := n.CollectGarbage()
	if err != nil || deleted != 1 || blobState(t, n.Blobs(), photo.Hash) != blobs.Missing {
		t.Fatalf("collection after the deletion: deleted %d, %v, blob %v", deleted, err, blobState(t, n.Blobs(), photo.Hash))
	}
}
