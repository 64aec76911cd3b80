package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/blobs"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// eventually polls cond until it returns nil, failing the test with cond's
// last error if that takes longer than a generous deadline.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// vaultStatus reads one vault's status from a node's admin API.
func vaultStatus(ctx context.Context, n *Node, ns vault.NamespaceID) (admin.VaultStatus, error) {
	st, err := admin.NewClient(n.AdminURL()).Status(ctx)
	if err != nil {
		return admin.VaultStatus{}, err
	}
	for _, vs := range st.Vaults {
		if vs.Namespace == ns.String() {
			return vs, nil
		}
	}
	return admin.VaultStatus{}, fmt.Errorf("vault %s not in status", ns.Short())
}

// TestReplicaConvergesWithoutDevices: a device writes to seed A only (small
// values and a blob). Seed B is then told, through its admin API, to host
// the vault with A as its replica peer; with no device ever talking to B, B
// ends up with A's fingerprint, entries and blob, and reports so.
func TestReplicaConvergesWithoutDevices(t *testing.T) {
	laptop, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer laptop.Close()
	ns, err := laptop.CreateVault()
	if err != nil {
		t.Fatal(err)
	}
	a := startNode(t, Config{HostedVaults: []vault.NamespaceID{ns}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	photo := randomValue(7, 300<<10)
	blobEntry, err := laptop.Put(ns, []byte("photo"), photo)
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"photo"}
	for i := range 5 {
		k := fmt.Sprintf("note/%d", i)
		if _, err := laptop.Put(ns, []byte(k), []byte("v"+k)); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if _, err := laptop.Sync(ctx, ns, a.Addrs()[0].String(), client.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := blobState(t, a.Blobs(), blobEntry.Hash); got != blobs.Complete {
		t.Fatalf("seed A holds the blob as %v", got)
	}
	var want admin.VaultStatus
	eventually(t, "seed A's status", func() error {
		if want, err = vaultStatus(ctx, a, ns); err != nil {
			return err
		}
		if want.Entries != uint64(len(keys)) || want.BlobsComplete != 1 || want.BlobsMissing != 0 {
			return fmt.Errorf("status %+v", want)
		}
		return nil
	})
	if len(want.Fingerprint) != 64 || want.Fingerprint == strings.Repeat("0", 64) {
		t.Fatalf("seed A's fingerprint %q", want.Fingerprint)
	}

	b := startNode(t, Config{})
	placement := admin.HostedVaults{Vaults: []string{ns.String()},
		Peers: map[string][]string{ns.String(): {a.Addrs()[0].String()}}}
	bc := adminClient(t, b)
	if err := bc.SetHostedVaults(ctx, placement); err != nil {
		t.Fatal(err)
	}
	if got, err := bc.HostedVaults(ctx); err != nil || len(got.Peers[ns.String()]) != 1 || got.Peers[ns.String()][0] != a.Addrs()[0].String() {
		t.Fatalf("B's hosted vaults %+v (%v), want the placement sent", got, err)
	}
	eventually(t, "seed B converges with seed A", func() error {
		got, err := vaultStatus(ctx, b, ns)
		switch {
		case err != nil:
			return err
		case got.Fingerprint != want.Fingerprint || got.Entries != want.Entries || got.BlobsComplete != 1 || got.BlobsMissing != 0:
			return fmt.Errorf("B %+v, A %+v", got, want)
		case len(got.Replicas) != 1 || got.Replicas[0].Peer != a.Host().ID().String() || got.Replicas[0].LastSync.IsZero() || got.Replicas[0].LastError != "":
			return fmt.Errorf("B's replicas %+v", got.Replicas)
		}
		return nil
	})

	for _, k := range keys {
		got, err := b.Store().Get(ns, []byte(k))
		if err != nil {
			t.Fatal(err)
		}
		src, err := a.Store().Get(ns, []byte(k))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || len(src) != 1 || got[0].Entry.Fingerprint() != src[0].Entry.Fingerprint() || !bytes.Equal(got[0].Content, src[0].Content) {
			t.Fatalf("key %s: B holds %v, A holds %v", k, got, src)
		}
	}
	var copied bytes.Buffer
	if err := b.Blobs().Export(blobEntry.Hash, &copied, 0, 0); err != nil || !bytes.Equal(copied.Bytes(), photo) {
		t.Fatalf("B's copy of the blob differs from what the device wrote (%v)", err)
	}
}

// TestReplicaStatusReportsAFailingPeer: a replica peer that cannot be
// reached shows up with an error in the status, and dropping it from the
// placement drops it from the status.
func TestReplicaStatusReportsAFailingPeer(t *testing.T) {
	ns := newNS(t)
	gone := startNode(t, Config{})
	goneAddr, goneID := gone.Addrs()[0].String(), gone.Host().ID().String()
	if err := gone.Close(); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := adminClient(t, n)
	err := c.SetHostedVaults(ctx, admin.HostedVaults{Vaults: []string{ns.String()}, Peers: map[string][]string{ns.String(): {goneAddr}}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the failing peer in the status", func() error {
		vs, err := vaultStatus(ctx, n, ns)
		if err != nil {
			return err
		}
		if len(vs.Replicas) != 1 || vs.Replicas[0].Peer != goneID || vs.Replicas[0].LastError == "" || !vs.Replicas[0].LastSync.IsZero() {
			return fmt.Errorf("replicas %+v", vs.Replicas)
		}
		return nil
	})
	if err := c.SetHostedVaults(ctx, admin.HostedVaults{Vaults: []string{ns.String()}}); err != nil {
		t.Fatal(err)
	}
	if vs, err := vaultStatus(ctx, n, ns); err != nil || len(vs.Replicas) != 0 {
		t.Fatalf("replicas after the peer was dropped: %+v %v", vs.Replicas, err)
	}
}

// TestAdminRefusesOwnPeerID: the admin API refuses, with 400 and a reason,
// a placement listing the seed itself as a replica peer, and keeps the
// previous placement.
func TestAdminRefusesOwnPeerID(t *testing.T) {
	ns, other := newNS(t), newNS(t)
	n := startNode(t, Config{HostedVaults: []vault.NamespaceID{other}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := adminClient(t, n).SetHostedVaults(ctx, admin.HostedVaults{Vaults: []string{ns.String()},
		Peers: map[string][]string{ns.String(): {n.Addrs()[0].String()}}})
	var herr *admin.HTTPError
	if !errors.As(err, &herr) || herr.StatusCode != 400 || !strings.Contains(herr.Message, "own peer ID") || !strings.Contains(herr.Message, ns.String()) {
		t.Fatalf("error %v, want a 400 naming the vault and the own peer ID", err)
	}
	if n.Hosted().Has(ns) || !n.Hosted().Has(other) {
		t.Fatal("a refused placement changed the hosted vaults")
	}
}
