package node

import (
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/seednode/identity"
)

// TestSyncHistoryCountsDistinctPeersBounded: the history counts each peer
// once, small sets and large ones alike, stops at maxPeersPerVault, and
// keeps each vault's last session times apart (any peer, devices only).
func TestSyncHistoryCountsDistinctPeersBounded(t *testing.T) {
	var h syncHistory
	a, b := newNS(t), newNS(t)
	if !h.lastSync(a).IsZero() || h.peerCount(a) != 0 || h.syncedPeers(a) != nil || !h.lastDeviceSync(a).IsZero() {
		t.Fatal("a vault never synced has a history")
	}
	peers := make([]peer.ID, maxPeersPerVault+10)
	for i := range peers {
		id, err := identity.PeerID(ed25519.NewKeyFromSeed(fmt.Appendf(nil, "%032d", i)).Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		peers[i] = id
	}
	t0 := time.Unix(1_700_000_000, 5)
	for round := range 2 { // every peer twice: counted once
		for i, p := range peers {
			h.synced(p, a, t0.Add(time.Duration(round*len(peers)+i)))
			if round == 0 && i < maxPeersPerVault && h.peerCount(a) != i+1 {
				t.Fatalf("after %d distinct peers the count is %d", i+1, h.peerCount(a))
			}
		}
	}
	if got := h.peerCount(a); got != maxPeersPerVault {
		t.Fatalf("%d peers counted, want the bound %d", got, maxPeersPerVault)
	}
	if got := len(h.syncedPeers(a)); got != maxPeersPerVault {
		t.Fatalf("%d peers listed, want %d", got, maxPeersPerVault)
	}
	if want := t0.Add(time.Duration(2*len(peers) - 1)); !h.lastSync(a).Equal(want) {
		t.Fatalf("last sync %s, want %s", h.lastSync(a), want)
	}
	if !h.lastDeviceSync(a).IsZero() {
		t.Fatal("seed sessions count as device syncs")
	}
	h.deviceSynced(b, t0)
	if !h.lastDeviceSync(b).Equal(t0) || !h.lastSync(b).IsZero() || h.peerCount(b) != 0 {
		t.Fatal("a device sync of one vault is not recorded apart")
	}
}
