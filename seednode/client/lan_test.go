package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/internal/p2ptest"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// lanRoleEnv makes the test binary play both devices of the LAN test inside
// the network namespace the test made (see TestMain).
const lanRoleEnv = "SEEDFLEET_LAN_ROLE"

func TestMain(m *testing.M) {
	if os.Getenv(lanRoleEnv) != "" {
		if err := runLANRole(); err != nil {
			fmt.Println("FAIL", err)
			os.Exit(1)
		}
		fmt.Println("OK")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestDevicesFindEachOtherOnTheLAN: a device serving a vault with LAN on is
// found by another device's SyncAny through mDNS alone (no address given,
// none remembered, no DHT), and the second device gets its entries. mDNS is
// multicast, so both run in a network namespace of their own, on a veth
// pair, where the multicast reaches nothing else.
func TestDevicesFindEachOtherOnTheLAN(t *testing.T) {
	p2ptest.RequireNetns(t)
	var suffix [4]byte
	rand.Read(suffix[:])
	name := "sflan-" + hex.EncodeToString(suffix[:])
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		p2ptest.Unavailable(t, fmt.Sprintf("cannot create a network namespace here: %v: %s", err, out))
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	for _, args := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan1"},
		{"ip", "addr", "add", "10.77.0.1/24", "dev", "lan0"},
		{"ip", "addr", "add", "10.77.0.2/24", "dev", "lan1"},
		{"ip", "link", "set", "lan0", "up"},
		{"ip", "link", "set", "lan1", "up"},
	} {
		if out, err := exec.Command("ip", append([]string{"netns", "exec", name}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", name, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), lanRoleEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil || !strings.Contains(out.String(), "\nOK\n") && !strings.HasPrefix(out.String(), "OK\n") {
		t.Fatalf("LAN devices (%v):\n%s", err, out.String())
	}
}

// runLANRole runs inside the namespace: the laptop serves and announces
// its vault; the phone, knowing nothing, finds it by mDNS and syncs.
func runLANRole() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir, err := os.MkdirTemp("", "sflan")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	laptop, err := Open(dir + "/laptop")
	if err != nil {
		return err
	}
	defer laptop.Close()
	ns, err := laptop.CreateVault()
	if err != nil {
		return err
	}
	for i := range 3 {
		if _, err := laptop.Put(ns, fmt.Appendf(nil, "notes/%d", i), []byte("on the LAN")); err != nil {
			return err
		}
	}
	laptopID, err := identity.PeerID(laptop.Key.Public().(ed25519.PublicKey))
	if err != nil {
		return err
	}
	serveCtx, stopServing := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- laptop.Serve(serveCtx, ServeOptions{Vaults: []vault.NamespaceID{ns}, Listen: []string{"/ip4/10.77.0.1/tcp/0"}, LAN: true})
	}()
	serving := true
	defer func() {
		stopServing()
		if serving {
			<-served
		}
	}()

	phone, err := Open(dir + "/phone")
	if err != nil {
		return err
	}
	defer phone.Close()
	var last error
	for ctx.Err() == nil {
		st, used, err := phone.SyncAny(ctx, ns, DiscoverOptions{LAN: true, LANWait: 2 * time.Second, NoDHT: true})
		switch {
		case err != nil:
			last = err
		case used.Source != SourceLAN || used.Peer.ID != laptopID:
			return fmt.Errorf("synced with %s via %s, want the laptop %s via mDNS", used.Peer.ID, used.Source, laptopID)
		case st.ItemsReceived != 3:
			return fmt.Errorf("received %d entries, want 3", st.ItemsReceived)
		default:
			return nil
		}
		select {
		case err := <-served:
			serving = false
			if ctx.Err() == nil {
				return fmt.Errorf("the laptop stopped serving: %v", err)
			}
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("the phone never found the laptop: %v", last)
}
