package node

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/seedfleet/seedfleet/internal/rot"
	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// putMarked writes n small entries into ns whose values carry marker (inline
// values are stored as they are, so the test finds them on disk).
func putMarked(t *testing.T, h *client.Home, ns vault.NamespaceID, n int, marker string) {
	t.Helper()
	for i := range n {
		v := fmt.Sprintf("%s-%04d-%s", marker, i, bytes.Repeat([]byte("x"), 200))
		if _, err := h.Put(ns, []byte(fmt.Sprintf("k/%04d", i)), []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
}

// damageTables stops n (its vault store flushes everything into tables as
// it closes) and flips a byte inside a value tagged marker in one of them
// (rot.Flip).
func damageTables(t *testing.T, n *Node, marker string) {
	t.Helper()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rot.Flip(filepath.Join(n.cfg.DataDir, "vaults", "*.sst"), []byte(marker)); err != nil {
		t.Fatal(err)
	}
}

func newHome(t *testing.T) *client.Home {
	t.Helper()
	h, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// TestDamagedVaultHealsFromItsReplica: seeds A and B hold vault V; A also
// holds W. A table of A's store rots under V's entries. A restarts (no
// crash), reports the damage, keeps serving W, and is back to B's
// fingerprint for V with no manual step.
func TestDamagedVaultHealsFromItsReplica(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	laptop := newHome(t)
	v, err := laptop.CreateVault()
	if err != nil {
		t.Fatal(err)
	}
	w, err := laptop.CreateVault()
	if err != nil {
		t.Fatal(err)
	}
	putMarked(t, laptop, v, 600, "vault-v")
	putMarked(t, laptop, w, 600, "vault-w")

	b := startNode(t, Config{HostedVaults: []vault.NamespaceID{v}})
	bInfo := peer.AddrInfo{ID: b.Host().ID(), Addrs: b.Host().Addrs()}
	dataA := t.TempDir()
	place := func(n *Node) {
		n.SetPlacement(Placement{Vaults: []vault.NamespaceID{v, w}, Peers: map[vault.NamespaceID][]peer.AddrInfo{v: {bInfo}}})
	}
	a := startNode(t, Config{DataDir: dataA})
	place(a)
	for _, ns := range []vault.NamespaceID{v, w} {
		if _, err := laptop.Sync(ctx, ns, a.Addrs()[0].String(), client.SyncOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var want admin.VaultStatus
	eventually(t, "B has V from A", func() error {
		want, err = vaultStatus(ctx, b, v)
		if err == nil && want.Entries != 600 {
			err = fmt.Errorf("B: %+v", want)
		}
		return err
	})
	wantW, err := vaultStatus(ctx, a, w)
	if err != nil {
		t.Fatal(err)
	}

	damageTables(t, a, "vault-v-")
	a = startNode(t, Config{DataDir: dataA})
	place(a)
	if got := testutil.ToFloat64(a.integrity.quarantines); got != 1 {
		t.Fatalf("A quarantined %v vaults at start, want 1", got)
	}
	if got, err := vaultStatus(ctx, a, w); err != nil || got.Damage != nil || got.Fingerprint != wantW.Fingerprint {
		t.Fatalf("the sound vault W suffers: %+v (damage %+v), %v (want fingerprint %s)", got, got.Damage, err, wantW.Fingerprint)
	}
	if _, err := laptop.Sync(ctx, w, a.Addrs()[0].String(), client.SyncOptions{}); err != nil {
		t.Fatalf("W is not served after V was found damaged: %v", err)
	}
	eventually(t, "A's replica of V heals from B", func() error {
		got, err := vaultStatus(ctx, a, v)
		switch {
		case err != nil:
			return err
		case got.Damage != nil || got.Fingerprint != want.Fingerprint || got.Entries != want.Entries:
			return fmt.Errorf("A: %+v (damage %+v), B: %s", got, got.Damage, want.Fingerprint)
		}
		return nil
	})
}

// TestDamagedVaultWithoutReplicasHealsFromADevice: a seed that alone holds
// a vault reports it damaged (Rebuilding, entries gone) until the next
// device sync fills it again.
func TestDamagedVaultWithoutReplicasHealsFromADevice(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	laptop := newHome(t)
	v, err := laptop.CreateVault()
	if err != nil {
		t.Fatal(err)
	}
	putMarked(t, laptop, v, 600, "alone")
	dataA := t.TempDir()
	a := startNode(t, Config{DataDir: dataA, HostedVaults: []vault.NamespaceID{v}})
	if _, err := laptop.Sync(ctx, v, a.Addrs()[0].String(), client.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	want, err := vaultStatus(ctx, a, v)
	if err != nil {
		t.Fatal(err)
	}
	damageTables(t, a, "alone-")
	a = startNode(t, Config{DataDir: dataA, HostedVaults: []vault.NamespaceID{v}})
	got, err := vaultStatus(ctx, a, v)
	if err != nil {
		t.Fatal(err)
	}
	if got.Damage == nil || got.Damage.State != admin.DamageRebuilding || !strings.Contains(got.Damage.Reason, "checksum") ||
		strings.Contains(got.Damage.Reason, "\n") || got.Entries != 0 {
		t.Fatalf("a damaged vault's status: %+v (damage %+v); want Rebuilding with a reason and no entries", got, got.Damage)
	}
	if _, err := laptop.Sync(ctx, v, a.Addrs()[0].String(), client.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the vault heals from the device", func() error {
		got, err := vaultStatus(ctx, a, v)
		if err == nil && (got.Damage != nil || got.Fingerprint != want.Fingerprint) {
			err = fmt.Errorf("%+v (damage %+v)", got, got.Damage)
		}
		return err
	})
}
