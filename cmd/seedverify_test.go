package cmd

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/node"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// TestSeedVerifyReportsEachVault: `seedfleet seednode verify` makes a running
// seed verify its replicas now, waits for the pass and reports each vault;
// without the token it says where the token is.
func TestSeedVerifyReportsEachVault(t *testing.T) {
	device, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer device.Close()
	ns, err := device.CreateVault()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		if _, err := device.Put(ns, []byte(fmt.Sprintf("k%d", i)), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	n, err := node.New(node.Config{DataDir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, AdminListen: "127.0.0.1:0",
		DHT: node.DHTConfig{Mode: config.DHTOff}, HostedVaults: []vault.NamespaceID{ns}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx := context.Background()
	if _, err := device.Sync(ctx, ns, n.Addrs()[0].String(), client.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	out, err := runSeedNode(t, ctx, "verify", "--admin", n.AdminURL(), "--data", dir)
	if err != nil || !strings.Contains(out, ns.String()+" ok (7 entries)") {
		t.Fatalf("verify: %q, %v", out, err)
	}
	_, err = runSeedNode(t, ctx, "verify", "--admin", n.AdminURL(), "--data", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), node.AdminTokenFile) {
		t.Fatalf("verify without the token: %v", err)
	}
}
