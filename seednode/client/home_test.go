package client

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/seedfleet/seedfleet/internal/dirlock"
	"github.com/seedfleet/seedfleet/internal/p2ptest"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// TestOpenMustExist: a home that holds no device key is refused, and left
// as it was (no key, no directory), instead of becoming a new device.
func TestOpenMustExist(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lpatop")
	if _, err := Open(dir, MustExist()); !errors.Is(err, ErrNoHome) {
		t.Fatalf("missing home: %v, want ErrNoHome", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused home was created: %v", err)
	}
	h, err := Open(dir) // the commands that make an identity create it
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	h, err = Open(dir, MustExist())
	if err != nil {
		t.Fatalf("existing home: %v", err)
	}
	h.Close()
}

// TestOpenHeldHome: while one holder has a home open, a second Open is
// refused with the holder's kind and PID.
func TestOpenHeldHome(t *testing.T) {
	dir := t.TempDir()
	h, err := Open(dir, HeldBy("seedfleet sync --live"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir)
	held, ok := errors.AsType[*dirlock.HeldError](err)
	if !ok || held.Kind != "seedfleet sync --live" || held.PID != os.Getpid() {
		t.Fatalf("second Open: %v, want held by seedfleet sync --live (pid %d)", err, os.Getpid())
	}
	h.Close()
	h, err = Open(dir)
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	h.Close()
}

// TestCheckKnown: a vault this home created, or synced, is known; any other
// namespace is reported as unknown.
func TestCheckKnown(t *testing.T) {
	h := openHome(t)
	ns, err := h.CreateVault()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.CheckKnown(ns); err != nil {
		t.Fatalf("created vault: %v", err)
	}
	var other vault.NamespaceID
	copy(other[:], "a vault this home never heard of")
	if err := h.CheckKnown(other); !errors.Is(err, ErrUnknownVault) {
		t.Fatalf("unknown vault: %v, want ErrUnknownVault", err)
	}
	known, err := h.KnownVaults()
	if err != nil || len(known) != 1 || known[0].Namespace != ns || !known[0].CanWrite {
		t.Fatalf("KnownVaults = %+v, %v", known, err)
	}
}

// TestSyncRetriesTheAddressThatWorked: a seed given with a stale address
// (same peer ID, a port nothing listens on) is still reached on the address
// that worked at the previous sync.
func TestSyncRetriesTheAddressThatWorked(t *testing.T) {
	laptop := openHome(t)
	ns, err := laptop.CreateVault()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.Put(ns, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	seedHost := p2ptest.NewHost(t, true)
	seedStore, err := vault.Open(t.TempDir(), vault.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer seedStore.Close()
	svc, err := vault.NewService(seedHost, seedStore, vault.WithPolicy(vault.NewHostedSet(ns)))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()

	good := peer.AddrInfo{ID: seedHost.ID(), Addrs: seedHost.Addrs()}
	ctx := context.Background()
	opts := DiscoverOptions{Peers: []peer.AddrInfo{good}, NoDHT: true, NoRendezvous: true}
	if _, _, err := laptop.SyncAny(ctx, ns, opts); err != nil {
		t.Fatalf("first sync: %v", err)
	}

	// Forget which peers served the vault: only the address book may help.
	if err := os.Remove(laptop.peersPath(ns)); err != nil {
		t.Fatal(err)
	}
	stale := peer.AddrInfo{ID: seedHost.ID(), Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/" + closedPort(t))}}
	opts.Peers = []peer.AddrInfo{stale}
	st, used, err := laptop.SyncAny(ctx, ns, opts)
	if err != nil {
		t.Fatalf("sync with a stale address: %v", err)
	}
	if used.Peer.ID != seedHost.ID() || st.Peer != seedHost.ID() {
		t.Fatalf("synced with %s, want %s", used.Peer.ID, seedHost.ID())
	}

	// A damaged address book is only a lost hint, never an error.
	if err := os.WriteFile(laptop.addrBookPath(), []byte(`[{"id": 7`), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := laptop.withKnownAddrs(stale); len(got.Addrs) != 1 {
		t.Fatalf("a damaged book added addresses: %v", got.Addrs)
	}
	if _, _, err := laptop.SyncAny(ctx, ns, DiscoverOptions{Peers: []peer.AddrInfo{good}, NoDHT: true, NoRendezvous: true}); err != nil {
		t.Fatalf("sync over a damaged address book: %v", err)
	}
	if b, err := os.ReadFile(laptop.addrBookPath()); err != nil || !strings.Contains(string(b), seedHost.ID().String()) {
		t.Fatalf("the address book was not rewritten: %q %v", b, err)
	}
}

// closedPort is a loopback TCP port nothing listens on any more.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	return port
}
