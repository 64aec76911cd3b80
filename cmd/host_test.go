package cmd

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/internal/p2ptest"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/hosting"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/node"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/ticket"
)

// startInviteFleet runs a one-pod fleet that admits by invite, and returns
// the pod's address and the fleet's key.
func startInviteFleet(t *testing.T) (string, ed25519.PrivateKey) {
	t.Helper()
	_, podKey, _ := ed25519.GenerateKey(nil)
	_, fleetKey, _ := ed25519.GenerateKey(nil)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "pod.key")
	if err := identity.Save(keyFile, podKey); err != nil {
		t.Fatal(err)
	}
	port := p2ptest.FreePort(t)
	id, _ := identity.PeerID(podKey.Public().(ed25519.PublicKey))
	addr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", port, id)
	info, err := p2p.ParsePeerAddr(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Config{DataDir: filepath.Join(dir, "data"), IdentityFile: keyFile,
		Listen: []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)}, AdminListen: "off", DHT: node.DHTConfig{Mode: config.DHTOff},
		Fleet: &node.FleetConfig{Members: fleet.Members{Pods: []peer.AddrInfo{info}, Replicas: 1},
			Policy: hosting.Policy{Fleet: "acme/seeds", Admission: fleet.Invite, FleetKey: fleetKey.Public().(ed25519.PublicKey)}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return addr, fleetKey
}

// TestHostCommands: a device learns the fleet's ticket from one seed's
// address, is refused without an invite (told how to get one), is hosted
// with one, sees its vault in status and releases it.
func TestHostCommands(t *testing.T) {
	ctx := context.Background()
	seed, fleetKey := startInviteFleet(t)
	home := filepath.Join(t.TempDir(), "laptop")
	if _, errOut, code := run(t, ctx, "agent", "init", "--home", home, "--name", "laptop"); code != 0 {
		t.Fatalf("agent init: %s", errOut)
	}

	out, errOut, code := run(t, ctx, "fleet", "ticket", seed, "--home", home)
	if code != 0 || !strings.HasPrefix(out, ticket.FleetPrefix) || !strings.Contains(errOut, "fleet acme/seeds: admission Invite, 1 replicas, 1 pods") {
		t.Fatalf("fleet ticket: %q %q %d", out, errOut, code)
	}
	fleetTicket := strings.TrimSpace(out)

	_, errOut, code = run(t, ctx, "host", "request", "agent", "--fleet", seed, "--home", home)
	if code == 0 || !strings.Contains(errOut, "InviteNeeded") || !strings.Contains(errOut, "--invite") {
		t.Fatalf("without an invite: %q (exit %d)", errOut, code)
	}

	inv, err := ticket.NewInviteTicket("acme/seeds", [16]byte{1}, time.Now().Add(time.Hour), 1, fleetKey)
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code = run(t, ctx, "host", "request", "agent", "--fleet", fleetTicket, "--invite", inv.String(), "--home", home)
	if code != 0 || !strings.Contains(out, "the fleet hosts 1 vault(s) for this agent") || !strings.Contains(out, seed) {
		t.Fatalf("with an invite: %q %q (exit %d)", out, errOut, code)
	}

	out, errOut, code = run(t, ctx, "host", "status", "agent", "--fleet", fleetTicket, "--home", home)
	if code != 0 || !strings.Contains(out, "VAULT") || !strings.Contains(out, "agent: 1 of 16 vaults") {
		t.Fatalf("status: %q %q (exit %d)", out, errOut, code)
	}

	out, errOut, code = run(t, ctx, "host", "release", "agent", "--fleet", seed, "--home", home)
	if code != 0 || !strings.Contains(out, "released every vault") {
		t.Fatalf("release: %q %q (exit %d)", out, errOut, code)
	}
	_, errOut, code = run(t, ctx, "host", "status", "agent", "--fleet", seed, "--home", home)
	if code == 0 || !strings.Contains(errOut, "NotHosted") {
		t.Fatalf("status after release: %q (exit %d)", errOut, code)
	}
}
