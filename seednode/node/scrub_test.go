package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	dto "github.com/prometheus/client_model/go"

	"github.com/seedfleet/seedfleet/seednode/blobs"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// TestStatusCountsMissingBlobsFromTheStart: a seed restarted without a blob
// its vault refers to reports it missing in its first status, not after
// the first collection pass: the operator drops a moved vault's old
// replica when its successor reports nothing missing.
func TestStatusCountsMissingBlobsFromTheStart(t *testing.T) {
	laptop, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer laptop.Close()
	ns, _ := laptop.CreateVault()
	dir := t.TempDir()
	cfg := Config{DataDir: dir, HostedVaults: []vault.NamespaceID{ns}, GCInterval: time.Hour}
	n := startNode(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := laptop.Put(ns, []byte("photo"), randomValue(21, 300<<10))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.Sync(ctx, ns, n.Addrs()[0].String(), client.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	// The blob is lost while the seed is down.
	st, err := blobs.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(e.Hash); err != nil {
		t.Fatal(err)
	}
	st.Close()

	n = startNode(t, cfg)
	vs, err := vaultStatus(ctx, n, ns)
	if err != nil {
		t.Fatal(err)
	}
	if vs.BlobsMissing != 1 || vs.BlobsComplete != 0 {
		t.Fatalf("first status after the restart: %d blobs complete, %d missing; want the lost one missing", vs.BlobsComplete, vs.BlobsMissing)
	}
}

// rotBlob flips a byte in the middle of a held blob's data file, as rot would.
func rotBlob(t *testing.T, n *Node, h vault.Hash) {
	t.Helper()
	x := fmt.Sprintf("%x", h[:])
	path := filepath.Join(n.cfg.DataDir, "blobs", "data", x[:2], x+".data")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x5a
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// damagedGroups reads seedfleet_blob_damaged_groups_total{found} from n's registry.
func damagedGroups(t *testing.T, n *Node, found string) float64 {
	t.Helper()
	mfs, err := n.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "seedfleet_blob_damaged_groups_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelIs(m, "found", found) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func labelIs(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// TestSeedRefetchesItsRottenBlob: two seeds hold a vault and its blob; a
// byte of one seed's copy rots on disk. Found by the scrubber, and later by
// a device's fetch, the damaged group is dropped and fetched again from the
// other seed, and the seed holds the device's bytes again.
func TestSeedRefetchesItsRottenBlob(t *testing.T) {
	laptop, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer laptop.Close()
	ns, _ := laptop.CreateVault()
	a := startNode(t, Config{GCInterval: time.Hour})
	b := startNode(t, Config{GCInterval: time.Hour})
	replicaOf := func(other *Node) Placement {
		return Placement{Vaults: []vault.NamespaceID{ns}, Peers: map[vault.NamespaceID][]peer.AddrInfo{
			ns: {{ID: other.Host().ID(), Addrs: other.Host().Addrs()}}}}
	}
	a.SetPlacement(replicaOf(b))
	b.SetPlacement(replicaOf(a))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	photo := randomValue(22, 300<<10)
	e, err := laptop.Put(ns, []byte("photo"), photo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.Sync(ctx, ns, a.Addrs()[0].String(), client.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "seed B holds the blob", func() error {
		if s := blobState(t, b.Blobs(), e.Hash); s != blobs.Complete {
			return fmt.Errorf("B holds it %v", s)
		}
		return nil
	})
	holds := func(what string) {
		t.Helper()
		eventually(t, what, func() error {
			var got bytes.Buffer
			if err := a.Blobs().Export(e.Hash, &got, 0, 0); err != nil {
				return err
			}
			if !bytes.Equal(got.Bytes(), photo) {
				return errors.New("seed A's copy differs from what the device wrote")
			}
			return nil
		})
	}

	t.Run("found by the scrubber", func(t *testing.T) {
		rotBlob(t, a, e.Hash)
		a.fetcher.scrub.Poke()
		holds("seed A repaired after a scrub")
		if got := damagedGroups(t, a, "scrub"); got != 1 {
			t.Fatalf("damaged groups found by the scrubber: %v, want 1", got)
		}
	})

	t.Run("found serving a device", func(t *testing.T) {
		rotBlob(t, a, e.Hash)
		phone, err := client.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer phone.Close()
		info, err := p2p.ParsePeerAddr(a.Addrs()[0].String())
		if err != nil {
			t.Fatal(err)
		}
		size := uint64(len(photo))
		if _, err := phone.FetchBlob(ctx, []peer.AddrInfo{info}, e.Hash, blobs.FetchOptions{Size: &size}); err == nil {
			t.Fatal("the phone fetched a rotten blob")
		}
		holds("seed A repaired after serving rot")
		if got := damagedGroups(t, a, "serve"); got != 1 {
			t.Fatalf("damaged groups found serving: %v, want 1", got)
		}
		if _, err := phone.FetchBlob(ctx, []peer.AddrInfo{info}, e.Hash, blobs.FetchOptions{Size: &size}); err != nil {
			t.Fatalf("the phone's fetch after the repair: %v", err)
		}
	})
}
