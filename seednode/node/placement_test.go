package node

import (
	"crypto/ed25519"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// testPeer returns a fresh peer ID and a loopback multiaddr for it.
func testPeer(t *testing.T, port string) (peer.ID, string) {
	t.Helper()
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.PeerID(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return id, "/ip4/127.0.0.1/tcp/" + port + "/p2p/" + id.String()
}

func TestParseVaultList(t *testing.T) {
	a, b := newNS(t), newNS(t)
	self, selfAddr := testPeer(t, "1")
	p1, addr1 := testPeer(t, "2")
	p2, addr2 := testPeer(t, "3")
	addr1QUIC := "/ip4/127.0.0.1/udp/2/quic-v1/p2p/" + p1.String()
	many := make([]string, 17)
	for i := range many {
		_, many[i] = testPeer(t, "4")
	}

	t.Run("valid", func(t *testing.T) {
		file := "# hosted\n" +
			a.String() + "\n" + // the old format: an ID alone
			"\n" +
			"  " + b.String() + "\t" + addr1 + "  " + addr2 + " # team\n" +
			b.String() + " " + addr1QUIC + " " + addr1 + "\n" + // more peers, and an address again
			a.String() + "\n" // a duplicate, as old files may have
		got, err := ParseVaultList([]byte(file), self)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Vaults) != 2 || got.Vaults[0] != a || got.Vaults[1] != b {
			t.Fatalf("vaults %v, want [%s %s]", got.Vaults, a.Short(), b.Short())
		}
		if len(got.Peers[a]) != 0 {
			t.Errorf("vault without peers got %v", got.Peers[a])
		}
		peers := got.Peers[b]
		if len(peers) != 2 || peers[0].ID != p1 || peers[1].ID != p2 || len(peers[0].Addrs) != 2 || len(peers[1].Addrs) != 1 {
			t.Fatalf("peers of b: %v; want %s with its TCP and QUIC addresses, then %s", peers, p1, p2)
		}
	})

	t.Run("options", func(t *testing.T) {
		file := a.String() + " maxEntries=2 " + addr1 + " relay=none\n" + // options before, after and among peers
			b.String() + "\tmaxBytes=1048576 # quota only\n" +
			b.String() + " maxEntries=7\n" // a second line adds to the first
		got, err := ParseVaultList([]byte(file), self)
		if err != nil {
			t.Fatal(err)
		}
		want := map[vault.NamespaceID]admin.VaultOptions{a: {MaxEntries: 2, NoRelay: true}, b: {MaxEntries: 7, MaxBytes: 1 << 20}}
		if !reflect.DeepEqual(got.Options, want) {
			t.Fatalf("options %+v, want %+v", got.Options, want)
		}
		if len(got.Peers[a]) != 1 || got.Peers[a][0].ID != p1 {
			t.Fatalf("peers of a: %v, want %s", got.Peers[a], p1)
		}
	})

	bad := []struct {
		name, file string
		want       []string
	}{
		{"unknown option", a.String() + "\n" + b.String() + " maxEntires=2\n", []string{"line 2", `"maxEntires=2"`, "unknown option"}},
		{"quota not a number", b.String() + " maxBytes=1GiB\n", []string{"line 1", `"maxBytes=1GiB"`, "whole number"}},
		{"quota negative", b.String() + " maxEntries=-1\n", []string{"line 1", "whole number"}},
		{"quota zero", b.String() + " maxEntries=0\n", []string{"line 1", "at least 1"}},
		{"relay value", b.String() + " relay=off\n", []string{"line 1", `"relay=off"`, "relay=none"}},
		{"option twice", b.String() + " maxEntries=2 maxEntries=3\n", []string{"line 1", "given twice"}},
		{"not a namespace", a.String() + "\nnot-a-namespace\n", []string{"line 2", "namespace ID"}},
		{"not a multiaddr", a.String() + "\n" + b.String() + " " + addr1 + " seed-1:7400\n", []string{"line 2", `"seed-1:7400"`, "not a multiaddr"}},
		{"no /p2p/", "\n\n" + b.String() + " /ip4/127.0.0.1/tcp/7400\n", []string{"line 3", "must end in /p2p/<peer ID>"}},
		{"only /p2p/", b.String() + " /p2p/" + p1.String() + "\n", []string{"line 1", "needs an address before /p2p/"}},
		{"own peer ID", a.String() + " " + addr1 + "\n# x\n" + b.String() + " " + selfAddr + "\n", []string{"line 3", "own peer ID"}},
		{"17 peers", a.String() + " " + strings.Join(many, " ") + "\n", []string{"line 1", "more than 16 peer addresses"}},
		{"17 peers over two lines", a.String() + " " + strings.Join(many[:9], " ") + "\n" + a.String() + " " + strings.Join(many[9:], " ") + "\n",
			[]string{"line 2", "more than 16 peer addresses"}},
		{"line too long", a.String() + "\n" + strings.Repeat("x", 70<<10) + "\n", []string{"line 2", "too long"}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseVaultList([]byte(tc.file), self)
			if err == nil {
				t.Fatalf("accepted: %+v", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := ParseVaultList([]byte(a.String()+" "+strings.Join(many[:16], " ")+"\n"), self); err != nil {
		t.Errorf("16 peers refused: %v", err)
	}
}

// TestVaultsFileWithPeers: a node reads replica peers from its vaults file,
// and refuses to start on a file listing its own peer ID, naming the line.
func TestVaultsFileWithPeers(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "identity.key")
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := identity.Save(keyFile, key); err != nil {
		t.Fatal(err)
	}
	self, _ := identity.PeerID(key.Public().(ed25519.PublicKey))
	ns := newNS(t)
	p1, addr1 := testPeer(t, "9")
	file := filepath.Join(dir, "vaults.txt")

	os.WriteFile(file, []byte("# placement\n"+ns.String()+" /ip4/127.0.0.1/tcp/9/p2p/"+self.String()+"\n"), 0o600)
	_, err = New(Config{DataDir: t.TempDir(), IdentityFile: keyFile, VaultsFile: file, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, AdminListen: "off"})
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "own peer ID") {
		t.Fatalf("own peer ID in the vaults file: %v", err)
	}

	os.WriteFile(file, []byte(ns.String()+" "+addr1+" maxEntries=5 relay=none\n"), 0o600)
	n := startNode(t, Config{IdentityFile: keyFile, VaultsFile: file, Limits: vault.Limits{MaxEntries: 100, MaxBytes: 1000}})
	hv := adminSource{n}.HostedVaults()
	if len(hv.Vaults) != 1 || hv.Vaults[0] != ns.String() || len(hv.Peers[ns.String()]) != 1 || hv.Peers[ns.String()][0] != addr1 {
		t.Fatalf("hosted vaults %+v, want %s with peer %s", hv, ns.Short(), p1)
	}
	if o := hv.Options[ns.String()]; o != (admin.VaultOptions{MaxEntries: 5, NoRelay: true}) {
		t.Fatalf("options %+v, want maxEntries 5 and no relay", hv.Options)
	}
	if lim := n.limitsFor(ns); lim.MaxEntries != 5 || lim.MaxBytes != 1000 {
		t.Fatalf("limits %+v, want the vault's 5 entries and the seed's 1000 bytes", lim)
	}
}

// TestIdentityFile: a seed given an identity file uses that key and never
// creates one.
func TestIdentityFile(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		dataDir, missing := t.TempDir(), filepath.Join(t.TempDir(), "identity.key")
		_, err := New(Config{DataDir: dataDir, IdentityFile: missing, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, AdminListen: "off"})
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("error %v does not match fs.ErrNotExist", err)
		}
		for _, want := range []string{missing, "never creates", "operator", "seedfleet key create"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
		for _, f := range []string{missing, filepath.Join(dataDir, "identity.key")} {
			if _, err := os.Stat(f); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s was created (%v)", f, err)
			}
		}
	})
	t.Run("existing", func(t *testing.T) {
		keyFile := filepath.Join(t.TempDir(), "seed.key")
		key, err := identity.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if err := identity.Save(keyFile, key); err != nil {
			t.Fatal(err)
		}
		want, _ := identity.PeerID(key.Public().(ed25519.PublicKey))
		dataDir := t.TempDir()
		n := startNode(t, Config{DataDir: dataDir, IdentityFile: keyFile})
		if n.Host().ID() != want {
			t.Fatalf("peer ID %s, want the identity file's %s", n.Host().ID(), want)
		}
		if _, err := os.Stat(filepath.Join(dataDir, "identity.key")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a key was created in the data directory too (%v)", err)
		}
	})
	t.Run("unreadable", func(t *testing.T) {
		keyFile := filepath.Join(t.TempDir(), "seed.key")
		os.WriteFile(keyFile, []byte("not a key\n"), 0o600)
		_, err := New(Config{DataDir: t.TempDir(), IdentityFile: keyFile, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, AdminListen: "off"})
		if err == nil || !strings.Contains(err.Error(), keyFile) || !strings.Contains(err.Error(), "PEM") {
			t.Fatalf("bad key file: %v", err)
		}
	})
}
