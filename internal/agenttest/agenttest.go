// Package agenttest builds what tests of agent state need from real parts:
// device homes in temporary directories, an agent with its devices, a seed
// node on loopback hosting the agent's vault, and syncs between them.
package agenttest

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/node"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// Home opens a device home in a temporary directory, closed when the test
// ends.
func Home(t testing.TB) *client.Home {
	t.Helper()
	h, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// Devices makes an agent on the first of new homes (named names[0]) and
// approves the others as its devices; the others still have to sync the
// agent's vault, whose ID it returns.
func Devices(t testing.TB, names ...string) ([]*client.Home, vault.NamespaceID) {
	t.Helper()
	first := Home(t)
	a, err := first.InitAgent(names[0])
	if err != nil {
		t.Fatal(err)
	}
	homes := []*client.Home{first}
	for _, name := range names[1:] {
		h := Home(t)
		if _, err := first.ApproveDevice(name, h.Key.Public().(ed25519.PublicKey)); err != nil {
			t.Fatal(err)
		}
		if err := h.JoinAgent(a.DID, a.Namespace, name, nil); err != nil {
			t.Fatal(err)
		}
		homes = append(homes, h)
	}
	return homes, a.Namespace
}

// Seed runs a seed hosting ns on loopback until the test ends; it returns
// the node and its data directory.
func Seed(t testing.TB, ns vault.NamespaceID) (*node.Node, string) {
	t.Helper()
	dir := t.TempDir()
	n, err := node.New(node.Config{DataDir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, AdminListen: "off",
		DHT: node.DHTConfig{Mode: config.DHTOff}, HostedVaults: []vault.NamespaceID{ns}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n, dir
}

// Sync syncs h's copy of ns with the peer at addr once, within a minute.
func Sync(t testing.TB, h *client.Home, ns vault.NamespaceID, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := h.Sync(ctx, ns, addr, client.SyncOptions{}); err != nil {
		t.Fatalf("sync: %v", err)
	}
}
