package cmd

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/node"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// runSeedNode runs `seedfleet seednode ARGS` with a context that is already
// over, so a seed that starts stops again at once.
func runSeedNode(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	c := newSeedNodeCmd()
	var out bytes.Buffer
	c.SetOut(&out)
	c.SetErr(&out)
	c.SetArgs(args)
	c.SilenceUsage, c.SilenceErrors = true, true
	err := c.ExecuteContext(ctx)
	return out.String(), err
}

// TestSeedVaultsUsesTheToken: `seedfleet seednode vaults` lists a running
// seed's vaults and changes them with the token the seed generated in its
// data directory; without that token, or with another, it says what to do.
func TestSeedVaultsUsesTheToken(t *testing.T) {
	dir := t.TempDir()
	n, err := node.New(node.Config{DataDir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, AdminListen: "127.0.0.1:0",
		DHT: node.DHTConfig{Mode: config.DHTOff}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	var a, b vault.NamespaceID
	copy(a[:], "the first vault added by the CLI")
	copy(b[:], "the other vault added by the CLI")
	ctx := context.Background()
	admin := n.AdminURL()

	if out, err := runSeedNode(t, ctx, "vaults", "--admin", admin, "--data", dir, "--add", a.String(), "--add", b.String()); err != nil ||
		!strings.Contains(out, "hosts 2 vault(s)") {
		t.Fatalf("add: %q %v", out, err)
	}
	if !n.Hosted().Has(a) || !n.Hosted().Has(b) {
		t.Fatal("the seed does not host the added vaults")
	}
	if _, err := runSeedNode(t, ctx, "vaults", "--admin", admin, "--token-file", filepath.Join(dir, node.AdminTokenFile), "--remove", a.String()); err != nil {
		t.Fatal(err)
	}
	out, err := runSeedNode(t, ctx, "vaults", "--admin", admin, "--data", t.TempDir()) // reading needs no token
	if err != nil || strings.TrimSpace(out) != b.String() {
		t.Fatalf("list: %q %v, want %s only", out, err, b)
	}

	_, err = runSeedNode(t, ctx, "vaults", "--admin", admin, "--data", t.TempDir(), "--add", a.String())
	if err == nil || !strings.Contains(err.Error(), "--data") || !strings.Contains(err.Error(), node.AdminTokenFile) {
		t.Fatalf("no token: %v, want an error saying where the token is", err)
	}
	wrong := filepath.Join(t.TempDir(), "token")
	os.WriteFile(wrong, []byte("not-the-token\n"), 0o600)
	_, err = runSeedNode(t, ctx, "vaults", "--admin", admin, "--token-file", wrong, "--add", a.String())
	if err == nil || !strings.Contains(err.Error(), "refused the token in "+wrong) {
		t.Fatalf("wrong token: %v", err)
	}
	if n.Hosted().Has(a) {
		t.Fatal("a change without the token went through")
	}
}

// TestSeedNodeRefusesALostKey: the seed command refuses a data directory
// whose identity.key is gone, and starts under a new peer ID with
// --new-identity; it prints where the admin token is.
func TestSeedNodeRefusesALostKey(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the seed stops as soon as it has started
	args := []string{"--data", dir, "--listen", "/ip4/127.0.0.1/tcp/0", "--listen-quic=", "--listen-ws=",
		"--admin-listen", "127.0.0.1:0", "--dht-mode", "off"}
	out, err := runSeedNode(t, ctx, args...)
	if err != nil || !strings.Contains(out, "need the token in "+filepath.Join(dir, node.AdminTokenFile)) {
		t.Fatalf("first start: %v\n%s", err, out)
	}
	if err := os.Remove(filepath.Join(dir, node.IdentityKeyFile)); err != nil {
		t.Fatal(err)
	}
	_, err = runSeedNode(t, ctx, args...)
	if !errors.Is(err, node.ErrIdentityChanged) || !strings.Contains(err.Error(), "--new-identity") {
		t.Fatalf("lost key: %v, want a refusal naming --new-identity", err)
	}
	if out, err := runSeedNode(t, ctx, append(args, "--new-identity")...); err != nil || !strings.Contains(out, "seed node 12D3KooW") {
		t.Fatalf("--new-identity: %v\n%s", err, out)
	}
}
