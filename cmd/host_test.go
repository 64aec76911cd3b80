package cmd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/internal/p2ptest"
	"github.com/seedfleet/seedfleet/seednode/client"
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
	_, fleetKey, _ := ed25519.GenerateKey(nil)
	addrs := startFleet(t, 1, 1, hosting.Policy{Fleet: "acme/seeds", Admission: fleet.Invite, FleetKey: fleetKey.Public().(ed25519.PublicKey)})
	return addrs[0], fleetKey
}

// startFleet runs a fleet of pods seeds, r replicas per vault, with policy,
// and returns the pods' addresses by ordinal.
func startFleet(t *testing.T, pods, r int, policy hosting.Policy) []string {
	t.Helper()
	var (
		keys  []ed25519.PrivateKey
		ports []int
		addrs []string
		infos []peer.AddrInfo
	)
	for range pods {
		_, podKey, _ := ed25519.GenerateKey(nil)
		port := p2ptest.FreePort(t)
		id, _ := identity.PeerID(podKey.Public().(ed25519.PublicKey))
		addr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", port, id)
		info, err := p2p.ParsePeerAddr(addr)
		if err != nil {
			t.Fatal(err)
		}
		keys, ports, addrs, infos = append(keys, podKey), append(ports, port), append(addrs, addr), append(infos, info)
	}
	for i := range pods {
		dir := t.TempDir()
		keyFile := filepath.Join(dir, "pod.key")
		if err := identity.Save(keyFile, keys[i]); err != nil {
			t.Fatal(err)
		}
		n, err := node.New(node.Config{DataDir: filepath.Join(dir, "data"), IdentityFile: keyFile,
			Listen: []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", ports[i])}, AdminListen: "off", DHT: node.DHTConfig{Mode: config.DHTOff},
			Fleet: &node.FleetConfig{Members: fleet.Members{Pods: infos, Self: i, Replicas: r}, Policy: policy}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
	}
	return addrs
}

// TestHostCommands: a device learns the fleet's ticket from one seed's
// address, is refused without an invite (told how to get one), is hosted
// with one, sees its vault in status and releases it; after the fleet
// accepted it, the commands need no --fleet.
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
	// A refused request records no fleet.
	_, errOut, code = run(t, ctx, "host", "status", "agent", "--home", home)
	if code == 0 || !strings.Contains(errOut, "has not had the agent hosted by a fleet: pass --fleet") {
		t.Fatalf("status with no fleet known: %q (exit %d)", errOut, code)
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
	if code != 0 || !strings.Contains(out, "VAULT") || !strings.Contains(out, "agent: 1 of 16 vaults, 0 B of 4.0 GiB") ||
		!strings.Contains(out, "0 B of 256.0 MiB") {
		t.Fatalf("status: %q %q (exit %d)", out, errOut, code)
	}
	if out2, errOut, code := run(t, ctx, "host", "status", "agent", "--home", home); code != 0 || out2 != out {
		t.Fatalf("status through the fleet that accepted the agent: %q %q (exit %d), want %q", out2, errOut, code, out)
	}

	out, errOut, code = run(t, ctx, "host", "release", "agent", "--home", home)
	if code != 0 || !strings.Contains(out, "released every vault") || strings.Contains(out, "agent: 0 of 0") {
		t.Fatalf("release: %q %q (exit %d)", out, errOut, code)
	}
	_, errOut, code = run(t, ctx, "host", "status", "agent", "--fleet", seed, "--home", home)
	if code == 0 || !strings.Contains(errOut, "NotHosted") {
		t.Fatalf("status after release: %q (exit %d)", errOut, code)
	}
}

// TestFleetSeedsFromTheTicket: on a three-pod fleet keeping one replica, a
// hosted agent's seeds join the agent's own (so `sync agent` needs no
// address), and a plain vault syncs through the fleet ticket alone: the
// device computes the one pod that holds it, where the other two would
// refuse it.
func TestFleetSeedsFromTheTicket(t *testing.T) {
	ctx := context.Background()
	pods := startFleet(t, 3, 1, hosting.Policy{Fleet: "acme/open", Admission: fleet.Open})
	home := filepath.Join(t.TempDir(), "laptop")
	if _, errOut, code := run(t, ctx, "agent", "init", "--home", home, "--name", "laptop"); code != 0 {
		t.Fatalf("agent init: %s", errOut)
	}
	out, errOut, code := run(t, ctx, "fleet", "ticket", pods[2], "--home", home)
	if code != 0 {
		t.Fatalf("fleet ticket: %s", errOut)
	}
	fleetTicket := strings.TrimSpace(out)

	if _, errOut, code := run(t, ctx, "host", "request", "agent", "--fleet", fleetTicket, "--home", home); code != 0 {
		t.Fatalf("host request agent: %s", errOut)
	}
	h, err := client.Open(home)
	if err != nil {
		t.Fatal(err)
	}
	a, err := h.Agent()
	h.Close()
	if err != nil || len(a.Seeds) != 1 || !slices.Contains(pods, a.Seeds[0]) {
		t.Fatalf("the agent's seeds after the fleet hosted it: %v (%v), want one of %v", a.Seeds, err, pods)
	}
	if _, errOut, code := run(t, ctx, "put", "agent", "note", "hello", "--home", home); code != 0 {
		t.Fatalf("put: %s", errOut)
	}
	if _, errOut, code := run(t, ctx, "sync", "agent", "--no-dht", "--no-rendezvous", "-q", "--home", home); code != 0 {
		t.Fatalf("sync agent through the fleet's seed: %s", errOut)
	}

	created, _, _ := run(t, ctx, "vault", "create", "--home", home)
	ns := strings.TrimSpace(created)
	if _, errOut, code := run(t, ctx, "host", "request", ns, "--fleet", fleetTicket, "--home", home); code != 0 {
		t.Fatalf("host request %s: %s", ns, errOut)
	}
	if _, errOut, code := run(t, ctx, "put", ns, "k", "v", "--home", home); code != 0 {
		t.Fatalf("put: %s", errOut)
	}
	if _, errOut, code := run(t, ctx, "sync", ns, fleetTicket, "--no-dht", "--no-rendezvous", "-q", "--home", home); code != 0 {
		t.Fatalf("sync %s through the fleet ticket: %s", ns, errOut)
	}
	// Fresh devices, each knowing one pod: only the vault's pod serves it.
	refused := 0
	for _, pod := range pods {
		if _, _, code := run(t, ctx, "sync", ns, pod, "--no-dht", "--no-rendezvous", "-q", "--home", newDeviceHome(t)); code != 0 {
			refused++
		}
	}
	if refused != 2 {
		t.Fatalf("%d of the 3 pods refused the vault, want 2 (one replica)", refused)
	}
	// A device with nothing but the fleet ticket.
	out, errOut, code = run(t, ctx, "sync", ns, fleetTicket, "--no-dht", "--no-rendezvous", "-q", "--home", newDeviceHome(t))
	if code != 0 || !strings.Contains(out, "received 1 entries (1 new)") {
		t.Fatalf("a new device's sync of %s through the fleet ticket: %q %q", ns, out, errOut)
	}
}

// TestPairedDeviceSyncsThroughTheFleet: a device paired after its agent was
// hosted by a fleet learns the fleet's seed from the welcome and syncs the
// agent's vault from it, past an agent seed that is down.
func TestPairedDeviceSyncsThroughTheFleet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pods := startFleet(t, 1, 1, hosting.Policy{Fleet: "acme/open", Admission: fleet.Open})
	laptop := filepath.Join(t.TempDir(), "laptop")
	if _, errOut, code := run(t, ctx, "agent", "init", "--home", laptop, "--name", "laptop"); code != 0 {
		t.Fatalf("agent init: %s", errOut)
	}
	_, downKey, _ := ed25519.GenerateKey(nil)
	downID, _ := identity.PeerID(downKey.Public().(ed25519.PublicKey))
	down := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", p2ptest.FreePort(t), downID) // nothing listens there
	if _, errOut, code := run(t, ctx, "agent", "seeds", down, "--home", laptop); code != 0 {
		t.Fatalf("agent seeds: %s", errOut)
	}
	if _, errOut, code := run(t, ctx, "host", "request", "agent", "--fleet", pods[0], "--home", laptop); code != 0 {
		t.Fatalf("host request: %s", errOut)
	}
	if _, errOut, code := run(t, ctx, "put", "agent", "note", "from the laptop", "--home", laptop); code != 0 {
		t.Fatalf("put: %s", errOut)
	}
	photo := make([]byte, 300<<10)
	if _, err := rand.Read(photo); err != nil {
		t.Fatal(err)
	}
	photoFile := filepath.Join(t.TempDir(), "photo.bin")
	if err := os.WriteFile(photoFile, photo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := run(t, ctx, "put", "agent", "photo", "--file", photoFile, "--home", laptop); code != 0 {
		t.Fatalf("put --file: %s", errOut)
	}
	if _, errOut, code := run(t, ctx, "sync", "agent", pods[0], "-q", "--no-dht", "--no-rendezvous", "--home", laptop); code != 0 {
		t.Fatalf("sync: %s", errOut)
	}

	phone := filepath.Join(t.TempDir(), "phone")
	root := newRoot()
	pr, pw := io.Pipe()
	var errOut bytes.Buffer
	root.SetOut(pw)
	root.SetErr(&errOut)
	root.SetArgs([]string{"device", "pair", "--name", "phone", "--home", phone, "--timeout", "50s"})
	paired := make(chan int, 1)
	go func() {
		code := report(&errOut, ctx, root.ExecuteContext(ctx))
		pw.Close()
		paired <- code
	}()
	var pairTicket, pairCode string
	var out strings.Builder
	lines := bufio.NewScanner(pr)
	for lines.Scan() {
		out.WriteString(lines.Text() + "\n")
		if v, ok := strings.CutPrefix(lines.Text(), "pairing ticket: "); ok {
			pairTicket = v
		}
		if v, ok := strings.CutPrefix(lines.Text(), "pairing code:"); ok {
			pairCode = strings.TrimSpace(v)
			break
		}
	}
	if pairTicket == "" || pairCode == "" {
		t.Fatalf("device pair printed no ticket and code: %q", out.String())
	}
	go func() { _, _ = io.Copy(&out, pr) }()
	if _, errOut, code := run(t, ctx, "device", "approve", pairTicket, "--code", pairCode, "--home", laptop); code != 0 {
		t.Fatalf("device approve: %s", errOut)
	}
	if code := <-paired; code != 0 {
		t.Fatalf("device pair: exit %d: %s", code, errOut.String())
	}
	got, errText, code := run(t, ctx, "get", "agent", "note", "--home", phone)
	if code != 0 || got != "from the laptop\n" {
		t.Fatalf("the paired phone's get: %q %q (exit %d)", got, errText, code)
	}
	// The sealed blob is fetched from the agent's seeds and opened.
	outFile := filepath.Join(t.TempDir(), "photo.out")
	if _, errText, code := run(t, ctx, "get", "agent", "photo", "--out", outFile, "--home", phone); code != 0 {
		t.Fatalf("the paired phone's get --out of a sealed blob: %q (exit %d)", errText, code)
	}
	if back, err := os.ReadFile(outFile); err != nil || !bytes.Equal(back, photo) {
		t.Fatalf("the phone's copy of the photo: %d bytes, %v; want the %d written", len(back), err, len(photo))
	}
}
