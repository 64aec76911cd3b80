package cmd

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seedfleet/seedfleet/seednode/identity"
)

func runInstallKey(t *testing.T, from, to string) (string, error) {
	t.Helper()
	c := newSeedNodeCmd()
	var out bytes.Buffer
	c.SetOut(&out)
	c.SetArgs([]string{"install-key", from, to})
	c.SilenceUsage, c.SilenceErrors = true, true
	err := c.Execute()
	return out.String(), err
}

// TestInstallKey: the init container's copy of a pod's key. The copy holds
// the same key, is readable by its owner only, replaces an older copy, and
// nothing is written when the source is missing or not a key.
func TestInstallKey(t *testing.T) {
	dir := t.TempDir()
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	pem, err := identity.EncodePEM(key)
	if err != nil {
		t.Fatal(err)
	}
	// As the kubelet mounts Secret files for a pod with an fsGroup: 0440.
	from := filepath.Join(dir, "identities", "seeds-0", "identity.key")
	if err := os.MkdirAll(filepath.Dir(from), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(from, pem, 0o440); err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(dir, "identity", "identity.key")
	id, err := identity.PeerID(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}

	check := func() {
		t.Helper()
		got, err := identity.Load(to) // Load refuses any group or other access
		if err != nil {
			t.Fatalf("the installed key: %v", err)
		}
		if !got.Equal(key) {
			t.Fatal("the installed key is not the source's")
		}
	}
	out, err := runInstallKey(t, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, id.String()) {
		t.Errorf("output %q does not name the peer ID %s", out, id)
	}
	check()

	// A pod that starts again finds its earlier copy, which may be stale.
	other, _ := identity.Generate()
	if err := os.Remove(to); err != nil {
		t.Fatal(err)
	}
	if err := identity.Save(to, other); err != nil {
		t.Fatal(err)
	}
	if _, err := runInstallKey(t, from, to); err != nil {
		t.Fatalf("over an existing copy: %v", err)
	}
	check()

	for name, src := range map[string][]byte{"garbage": []byte("not a key\n"), "empty": nil} {
		bad := filepath.Join(dir, name)
		if err := os.WriteFile(bad, src, 0o400); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, name+"-copy")
		if _, err := runInstallKey(t, bad, dst); err == nil {
			t.Errorf("%s source: no error", name)
		}
		if _, err := os.Stat(dst); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s source: %s was written (%v)", name, dst, err)
		}
	}

	// Readable by others: refused, as the seed itself would.
	open := filepath.Join(dir, "open.key")
	if err := os.WriteFile(open, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := runInstallKey(t, open, filepath.Join(dir, "open-copy")); !errors.Is(err, identity.ErrKeyPermissions) {
		t.Errorf("world-readable source: error %v, want %v", err, identity.ErrKeyPermissions)
	}

	_, err = runInstallKey(t, filepath.Join(dir, "identities", "seeds-9", "identity.key"), filepath.Join(dir, "missing-copy"))
	if err == nil || !strings.Contains(err.Error(), "identity Secret") {
		t.Errorf("missing source: error %v, want one that points at the identity Secret", err)
	}
}
