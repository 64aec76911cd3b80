package hosting

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/internal/p2ptest"
	"github.com/seedfleet/seedfleet/internal/wire"
	"github.com/seedfleet/seedfleet/seednode/fleet"
)

// TestVaultStatesOnlyToMembers: a fleet pod answers another pod's question
// about vaults with what its WithVaultState reports, in order; a peer the
// fleet does not list is refused, and so is a batch of records from it.
func TestVaultStatesOnlyToMembers(t *testing.T) {
	a, b := p2ptest.NewHost(t, true), p2ptest.NewHost(t, true)
	synced := map[[32]byte]time.Time{{1, 3}: time.Unix(1_800_000_000, 0)}
	m := fleet.Members{Replicas: 2, Pods: []peer.AddrInfo{{ID: a.ID(), Addrs: a.Addrs()}, {ID: b.ID(), Addrs: b.Addrs()}}}
	svc := func(i int) *Service {
		db := openDB(t, filepath.Join(t.TempDir(), "db"))
		t.Cleanup(func() { db.Close() })
		records, err := OpenRecords(db, 'h')
		if err != nil {
			t.Fatal(err)
		}
		adm, err := NewAdmitter(Policy{Fleet: testFleet, Admission: fleet.Open}, records, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		mi := m
		mi.Self = i
		host := a
		if i == 1 {
			host = b
		}
		s, err := New(host, adm, WithMembers(func() fleet.Members { return mi }), WithVaultState(func(ns [32]byte) VaultState {
			return VaultState{Hosted: ns[0] == 1, Fingerprint: [32]byte{ns[0], 42}, MissingBlobs: uint64(ns[1]),
				LastSync: synced[ns]}
		}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	sa, _ := svc(0), svc(1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := sa.VaultStates(ctx, m.Pods[1], [][32]byte{{1, 3}, {2}})
	if err != nil {
		t.Fatal(err)
	}
	want := []VaultState{{Hosted: true, Fingerprint: [32]byte{1, 42}, MissingBlobs: 3}, {Fingerprint: [32]byte{2, 42}}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("states %+v, want %+v", got, want)
	}

	// Asked for them, the last device syncs come too (zero: none), and
	// LastSyncElsewhere asks the subject's other home pods (here: b).
	times, err := sa.LastSyncs(ctx, m.Pods[1], [][32]byte{{1, 3}, {2}})
	if err != nil || len(times) != 2 || !times[0].Equal(synced[[32]byte{1, 3}]) || !times[1].IsZero() {
		t.Fatalf("LastSyncs = %v, %v", times, err)
	}
	rec := &Record{Kind: SubjectVault, Subject: make([]byte, 32)}
	times, err = sa.LastSyncElsewhere(ctx, rec, [][32]byte{{2}, {1, 3}})
	if err != nil || len(times) != 2 || !times[0].IsZero() || !times[1].Equal(synced[[32]byte{1, 3}]) {
		t.Fatalf("LastSyncElsewhere = %v, %v", times, err)
	}

	stranger := p2ptest.NewHost(t, false)
	stranger.Peerstore().AddAddrs(b.ID(), b.Addrs(), time.Hour)
	for _, msg := range [][]byte{
		append([]byte{kindState, 1}, make([]byte, 32)...),
		wire.AppendLenBytes([]byte{kindBatch, 1, itemRecord}, []byte{1}),
	} {
		ans, err := exchange(ctx, stranger, b.ID(), msg)
		if err != nil {
			t.Fatal(err)
		}
		if ans.Reason != ReasonUnauthorized {
			t.Fatalf("a stranger's %q got %v %q, want Unauthorized", msg[0], ans.Reason, ans.Message)
		}
	}
}
