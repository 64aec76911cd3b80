package node

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/identity"
)

// openSeed starts a seed on dir with nothing but its identity and stores
// (no admin API, no DHT) and closes it again, returning its peer ID.
func openSeed(t *testing.T, cfg Config) (peer.ID, error) {
	t.Helper()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.AdminListen = "off"
	cfg.DHT.Mode = config.DHTOff
	n, err := New(cfg)
	if err != nil {
		return "", err
	}
	id := n.Host().ID()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	return id, nil
}

func recordedPeer(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, PeerIDFile))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func writeKey(t *testing.T, path string) peer.ID {
	t.Helper()
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := identity.Save(path, key); err != nil {
		t.Fatal(err)
	}
	id, err := identity.PeerID(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestIdentityOfADataDirectory: a data directory keeps the peer ID it was
// created with. A lost identity.key, or a key that is another peer's, is
// refused with an error that says what happened and what to do, unless the
// seed is asked for a new identity.
func TestIdentityOfADataDirectory(t *testing.T) {
	must := func(id peer.ID, err error) peer.ID {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	refused := func(err error, want ...string) {
		t.Helper()
		if !errors.Is(err, ErrIdentityChanged) {
			t.Fatalf("started (%v), want ErrIdentityChanged", err)
		}
		for _, w := range append(want, "--new-identity") {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not say %q", err, w)
			}
		}
	}

	t.Run("lost identity.key", func(t *testing.T) {
		dir := t.TempDir()
		first := must(openSeed(t, Config{DataDir: dir}))
		if got := recordedPeer(t, dir); got != first.String() {
			t.Fatalf("%s records %q, want %s", PeerIDFile, got, first)
		}
		if again := must(openSeed(t, Config{DataDir: dir})); again != first {
			t.Fatalf("restart: peer %s, want %s", again, first)
		}
		keyFile := filepath.Join(dir, IdentityKeyFile)
		os.Remove(keyFile)
		_, err := openSeed(t, Config{DataDir: dir})
		refused(err, keyFile+" is missing", "vaults/", "blobs/", first.String(), "put back")
		if _, serr := os.Stat(keyFile); serr == nil {
			t.Fatal("a refused start created a key")
		}
		second := must(openSeed(t, Config{DataDir: dir, NewIdentity: true}))
		if second == first || recordedPeer(t, dir) != second.String() {
			t.Fatalf("asked for a new identity: peer %s (was %s), recorded %s", second, first, recordedPeer(t, dir))
		}
		// The new identity is the directory's from now on, without the flag.
		if again := must(openSeed(t, Config{DataDir: dir})); again != second {
			t.Fatalf("restart after the new identity: peer %s, want %s", again, second)
		}
	})

	t.Run("stores without a record", func(t *testing.T) {
		// A directory whose record is gone too (or never had one) still
		// holds stores: a lost key is refused all the same.
		dir := t.TempDir()
		must(openSeed(t, Config{DataDir: dir}))
		os.Remove(filepath.Join(dir, IdentityKeyFile))
		os.Remove(filepath.Join(dir, PeerIDFile))
		_, err := openSeed(t, Config{DataDir: dir})
		refused(err, "vaults/", "not new")
	})

	t.Run("a record without stores", func(t *testing.T) {
		dir := t.TempDir()
		first := must(openSeed(t, Config{DataDir: dir}))
		for _, s := range []string{"vaults", "blobs", "dht", IdentityKeyFile} {
			os.RemoveAll(filepath.Join(dir, s))
		}
		_, err := openSeed(t, Config{DataDir: dir})
		refused(err, first.String())
	})

	t.Run("identity.key replaced by another key", func(t *testing.T) {
		dir := t.TempDir()
		first := must(openSeed(t, Config{DataDir: dir}))
		keyFile := filepath.Join(dir, IdentityKeyFile)
		os.Remove(keyFile)
		other := writeKey(t, keyFile)
		_, err := openSeed(t, Config{DataDir: dir})
		refused(err, "is peer "+other.String(), "belongs to peer "+first.String())
		if got := must(openSeed(t, Config{DataDir: dir, NewIdentity: true})); got != other {
			t.Fatalf("asked for the new key: peer %s, want %s", got, other)
		}
	})

	t.Run("identity file (a pod's Secret) recreated", func(t *testing.T) {
		dir, secrets := t.TempDir(), t.TempDir()
		keyFile := filepath.Join(secrets, "identity.key")
		first := writeKey(t, keyFile)
		if got := must(openSeed(t, Config{DataDir: dir, IdentityFile: keyFile})); got != first {
			t.Fatalf("peer %s, want the identity file's %s", got, first)
		}
		if _, err := os.Stat(filepath.Join(dir, IdentityKeyFile)); err == nil {
			t.Fatal("a seed with an identity file created identity.key")
		}
		if again := must(openSeed(t, Config{DataDir: dir, IdentityFile: keyFile})); again != first {
			t.Fatalf("restart: peer %s, want %s", again, first)
		}
		os.Remove(keyFile)
		second := writeKey(t, keyFile)
		_, err := openSeed(t, Config{DataDir: dir, IdentityFile: keyFile})
		refused(err, keyFile, "is peer "+second.String(), "belongs to peer "+first.String(), "Secret")
		if got := must(openSeed(t, Config{DataDir: dir, IdentityFile: keyFile, NewIdentity: true})); got != second {
			t.Fatalf("asked for the new key: peer %s, want %s", got, second)
		}
	})

	t.Run("directory from before the record", func(t *testing.T) {
		// Seeds made before the record existed have stores and a key but no
		// record: the key is taken as theirs and recorded.
		dir := t.TempDir()
		first := must(openSeed(t, Config{DataDir: dir}))
		os.Remove(filepath.Join(dir, PeerIDFile))
		if got := must(openSeed(t, Config{DataDir: dir})); got != first || recordedPeer(t, dir) != first.String() {
			t.Fatalf("peer %s recorded %s, want %s", got, recordedPeer(t, dir), first)
		}
	})

	t.Run("damaged record", func(t *testing.T) {
		dir := t.TempDir()
		first := must(openSeed(t, Config{DataDir: dir}))
		os.WriteFile(filepath.Join(dir, PeerIDFile), []byte("not a peer ID\n"), 0o600)
		if _, err := openSeed(t, Config{DataDir: dir}); err == nil || !strings.Contains(err.Error(), "does not hold a peer ID") ||
			!strings.Contains(err.Error(), "--new-identity") {
			t.Fatalf("damaged record: %v", err)
		}
		if got := must(openSeed(t, Config{DataDir: dir, NewIdentity: true})); got != first || recordedPeer(t, dir) != first.String() {
			t.Fatalf("record not rewritten: peer %s, recorded %s", got, recordedPeer(t, dir))
		}
	})

	t.Run("new directory with other files", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "seed.yaml"), []byte("logLevel: info\n"), 0o600)
		must(openSeed(t, Config{DataDir: dir}))
	})
}
