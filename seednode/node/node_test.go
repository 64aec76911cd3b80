package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

func newNS(t *testing.T) vault.NamespaceID {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return vault.NamespaceID(pub)
}

func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	if cfg.AdminListen == "" {
		cfg.AdminListen = "127.0.0.1:0"
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestNewRefusesBadConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "--data") {
		t.Fatalf("no data dir: %v", err)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "vaults.txt")
	os.WriteFile(bad, []byte("zzz\n"), 0o600)
	if _, err := New(Config{DataDir: dir, VaultsFile: bad, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, AdminListen: "off"}); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("bad vaults file: %v", err)
	}
	if _, err := New(Config{DataDir: t.TempDir(), Listen: []string{"not-a-multiaddr"}, AdminListen: "off"}); err == nil || !strings.Contains(err.Error(), "not-a-multiaddr") {
		t.Fatalf("bad listen address: %v", err)
	}
	// A mode spelt unlike the config constants is refused, never taken for
	// the default.
	if _, err := New(Config{DataDir: t.TempDir(), AdminListen: "off", DHT: DHTConfig{Mode: "bogus"}}); err == nil || !strings.Contains(err.Error(), `DHT mode "bogus"`) {
		t.Fatalf("unknown DHT mode: %v", err)
	}
	if _, err := New(Config{DataDir: t.TempDir(), Listen: []string{"/ip4/127.0.0.1/tcp/0"}, AdminListen: "off",
		DHT: DHTConfig{Mode: config.DHTOff}, Relay: RelayConfig{Mode: "bogus"}}); err == nil || !strings.Contains(err.Error(), `mode "bogus"`) {
		t.Fatalf("unknown relay mode: %v", err)
	}
}

// TestRefusedProtocolPrefixNamesTheSetting: a DHT protocol prefix kad-dht
// refuses (/ipfs wants values) fails the start with an error naming the
// configuration setting, and leaves the data directory free.
func TestRefusedProtocolPrefixNamesTheSetting(t *testing.T) {
	cfg := Config{DataDir: t.TempDir(), Listen: []string{"/ip4/127.0.0.1/tcp/0"}, AdminListen: "off",
		DHT: DHTConfig{ProtocolPrefix: "/ipfs"}}
	_, err := New(cfg)
	if err == nil || !strings.Contains(err.Error(), `dht.protocolPrefix "/ipfs"`) {
		t.Fatalf("error %v, want one naming dht.protocolPrefix", err)
	}
	cfg.DHT.ProtocolPrefix = ""
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("the data directory of the failed start is still held: %v", err)
	}
	n.Close()
}

// TestSeedServesHostedVaultsOnly drives a real seed with the device client:
// a hosted vault syncs between two devices through it, an unknown one is
// refused with ErrNotHosted, and the peer ID survives a restart.
func TestSeedServesHostedVaultsOnly(t *testing.T) {
	laptop, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer laptop.Close()
	ns, err := laptop.CreateVault()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	n := startNode(t, Config{DataDir: dataDir, HostedVaults: []vault.NamespaceID{ns}})
	addr := n.Addrs()[0].String()
	id := n.Host().ID()

	if _, err := laptop.Put(ns, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if st, err := laptop.Sync(ctx, ns, addr, client.SyncOptions{}); err != nil || st.ItemsSent != 1 {
		t.Fatalf("laptop sync: %+v %v", st, err)
	}
	other, err := laptop.CreateVault()
	if err != nil {
		t.Fatal(err)
	}
	_, err = laptop.Sync(ctx, other, addr, client.SyncOptions{})
	if !errors.Is(err, vault.ErrNotHosted) || !strings.Contains(err.Error(), other.String()) {
		t.Fatalf("unhosted vault: want ErrNotHosted naming it, got %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	n2 := startNode(t, Config{DataDir: dataDir, HostedVaults: []vault.NamespaceID{ns}})
	if n2.Host().ID() != id {
		t.Fatalf("peer ID changed across restart: %s -> %s", id, n2.Host().ID())
	}
	phone, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	if st, err := phone.Sync(ctx, ns, n2.Addrs()[0].String(), client.SyncOptions{}); err != nil || st.Stored != 1 {
		t.Fatalf("phone sync after seed restart: %+v %v", st, err)
	}
	items, err := phone.Store.Get(ns, []byte("k"))
	if err != nil || len(items) != 1 || string(items[0].Content) != "v" {
		t.Fatalf("phone read: %v %v", items, err)
	}
	if _, err := phone.Put(ns, []byte("k"), []byte("w")); !errors.Is(err, client.ErrNoWriteAccess) {
		t.Fatalf("phone without the namespace key wrote: %v", err)
	}
}

// TestVaultsFileReload: hosting changes when the file changes, no restart.
func TestVaultsFileReload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "hosted.txt")
	a, b := newNS(t), newNS(t)
	if err := os.WriteFile(file, []byte(a.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, Config{VaultsFile: file})
	if !n.Hosted().Has(a) || n.Hosted().Has(b) {
		t.Fatal("initial hosted set wrong")
	}
	// A different mtime even on coarse filesystems.
	os.WriteFile(file, []byte(b.String()+"\n"), 0o600)
	future := time.Now().Add(5 * time.Second)
	os.Chtimes(file, future, future)
	deadline := time.Now().Add(10 * time.Second)
	for !(n.Hosted().Has(b) && !n.Hosted().Has(a)) {
		if time.Now().After(deadline) {
			t.Fatal("hosted vaults not reloaded within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A broken file keeps the previous list.
	os.WriteFile(file, []byte("garbage\n"), 0o600)
	later := future.Add(5 * time.Second)
	os.Chtimes(file, later, later)
	time.Sleep(2500 * time.Millisecond)
	if !n.Hosted().Has(b) {
		t.Fatal("a broken vaults file dropped the hosted list")
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	n := startNode(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// TestFailedStartClosesWhatStarted: a start that fails late (its admin
// address is taken, after the stores, the DHT and its datastore opened)
// leaves nothing open: the same data directory starts at once.
func TestFailedStartClosesWhatStarted(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	cfg := Config{DataDir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, AdminListen: taken.Addr().String()}
	if _, err := New(cfg); err == nil {
		t.Fatal("a seed started on a taken admin address")
	}
	cfg.AdminListen = "127.0.0.1:0"
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("the data directory of a failed start is still held: %v", err)
	}
	n.Close()
}
