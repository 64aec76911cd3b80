package relay_test

import (
	"bufio"
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

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/seedfleet/seedfleet/internal/p2ptest"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/node"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/relay"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// The NAT test builds a small internet in network namespaces: a "public"
// segment with the seed, and two devices each behind its own router doing
// masquerading NAT. Neither device can be dialled; they sync a vault
// through the seed's relay. Each party runs as this test binary re-executed
// inside its namespace.
const natRoleEnv = "SEEDFLEET_NAT_ROLE"

func TestMain(m *testing.M) {
	if role := os.Getenv(natRoleEnv); role != "" {
		os.Exit(runNATRole(role))
	}
	os.Exit(m.Run())
}

type netns struct {
	t     *testing.T
	names []string
}

func (n *netns) run(args ...string) {
	n.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (n *netns) in(ns string, args ...string) {
	n.run(append([]string{"ip", "netns", "exec", ns}, args...)...)
}

func (n *netns) add(name string) {
	n.run("ip", "netns", "add", name)
	n.names = append(n.names, name)
	n.in(name, "ip", "link", "set", "lo", "up")
}

func (n *netns) cleanup() {
	for _, name := range n.names {
		_ = exec.Command("ip", "netns", "del", name).Run()
	}
}

func natAvailable() string {
	if os.Geteuid() != 0 {
		return "needs root to create network namespaces"
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " not installed (.ci/run installs iproute2 and iptables)"
		}
	}
	name := "sfprobe" + randHex(3)
	if err := exec.Command("ip", "netns", "add", name).Run(); err != nil {
		return "cannot create network namespaces here: " + err.Error()
	}
	_ = exec.Command("ip", "netns", "del", name).Run()
	return ""
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// child is a role process running inside a namespace.
type child struct {
	cmd   *exec.Cmd
	lines chan string
}

func startRole(t *testing.T, ns string, env ...string) *child {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	c := &child{cmd: cmd, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	return c
}

func (c *child) expect(t *testing.T, prefix string, within time.Duration) string {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				t.Fatalf("role exited before printing %q", prefix)
			}
			if rest, found := strings.CutPrefix(line, prefix); found {
				return strings.TrimSpace(rest)
			}
			if strings.HasPrefix(line, "FAIL ") {
				t.Fatalf("role failed: %s", line)
			}
		case <-timeout:
			t.Fatalf("no %q within %s", prefix, within)
		}
	}
}

// TestTwoDevicesBehindNATSyncThroughTheRelay is the network test of the
// relay: two masqueraded devices, one seed, a vault synced device to device.
func TestTwoDevicesBehindNATSyncThroughTheRelay(t *testing.T) {
	if why := natAvailable(); why != "" {
		p2ptest.Unavailable(t, "network namespaces unavailable: "+why)
	}
	id := randHex(3)
	n := &netns{t: t}
	t.Cleanup(n.cleanup)
	pub, nat1, nat2, dev1, dev2 := "sfpub"+id, "sfnat1"+id, "sfnat2"+id, "sfdev1"+id, "sfdev2"+id
	for _, ns := range []string{pub, nat1, nat2, dev1, dev2} {
		n.add(ns)
	}
	// Public segment: a bridge in pub; the seed at 10.99.0.1.
	n.in(pub, "ip", "link", "add", "br0", "type", "bridge")
	n.in(pub, "ip", "addr", "add", "10.99.0.1/24", "dev", "br0")
	n.in(pub, "ip", "link", "set", "br0", "up")
	for i, pair := range []struct{ nat, dev, wan, lan string }{
		{nat1, dev1, "10.99.0.11", "192.168.1"},
		{nat2, dev2, "10.99.0.12", "192.168.2"},
	} {
		w := fmt.Sprintf("w%d%s", i, id) // veth names: at most 15 characters
		l := fmt.Sprintf("l%d%s", i, id)
		n.run("ip", "link", "add", w+"a", "netns", pair.nat, "type", "veth", "peer", "name", w+"b", "netns", pub)
		n.in(pub, "ip", "link", "set", w+"b", "master", "br0", "up")
		n.in(pair.nat, "ip", "addr", "add", pair.wan+"/24", "dev", w+"a")
		n.in(pair.nat, "ip", "link", "set", w+"a", "up")
		n.run("ip", "link", "add", l+"a", "netns", pair.nat, "type", "veth", "peer", "name", l+"b", "netns", pair.dev)
		n.in(pair.nat, "ip", "addr", "add", pair.lan+".1/24", "dev", l+"a")
		n.in(pair.nat, "ip", "link", "set", l+"a", "up")
		n.in(pair.dev, "ip", "addr", "add", pair.lan+".2/24", "dev", l+"b")
		n.in(pair.dev, "ip", "link", "set", l+"b", "up")
		n.in(pair.dev, "ip", "route", "add", "default", "via", pair.lan+".1")
		// The router forwards and masquerades; nothing reaches the LAN from outside.
		n.in(pair.nat, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
		n.in(pair.nat, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", w+"a", "-j", "MASQUERADE")
		n.in(pair.nat, "iptables", "-A", "FORWARD", "-i", w+"a", "-m", "state", "--state", "NEW", "-j", "DROP")
	}

	// Device keys, known to the seed as allowed relay users.
	k1, k2 := genKey(t), genKey(t)
	nsKey := genKey(t)
	env := func(role string, extra ...string) []string {
		return append([]string{natRoleEnv + "=" + role,
			"NAT_K1=" + hex.EncodeToString(k1.Seed()), "NAT_K2=" + hex.EncodeToString(k2.Seed()),
			"NAT_NSKEY=" + hex.EncodeToString(nsKey.Seed()), "NAT_DATA=" + t.TempDir()}, extra...)
	}
	seed := startRole(t, pub, env("seed")...)
	seedAddr := seed.expect(t, "READY ", 20*time.Second)

	receiver := startRole(t, dev2, env("receiver", "NAT_SEED="+seedAddr)...)
	circuit := receiver.expect(t, "RESERVED ", 20*time.Second)

	sender := startRole(t, dev1, env("sender", "NAT_SEED="+seedAddr, "NAT_TARGET="+circuit)...)
	report := sender.expect(t, "SYNCED ", 30*time.Second)
	t.Logf("sender: %s", report)
	if !strings.Contains(report, "relayed=true") {
		t.Fatalf("the devices' connection was not relayed: %s", report)
	}
	got := receiver.expect(t, "GOT ", 30*time.Second)
	if got != "100" {
		t.Fatalf("receiver has %s entries, want 100", got)
	}
}

func genKey(t *testing.T) ed25519.PrivateKey {
	k, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyFromEnv(name string) ed25519.PrivateKey {
	b, _ := hex.DecodeString(os.Getenv(name))
	return ed25519.NewKeyFromSeed(b)
}

func fail(format string, args ...any) int {
	fmt.Printf("FAIL "+format+"\n", args...)
	return 1
}

// runNATRole runs one party of the NAT test.
func runNATRole(role string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	k1, k2, nsKey := keyFromEnv("NAT_K1"), keyFromEnv("NAT_K2"), keyFromEnv("NAT_NSKEY")
	ns := vault.NamespaceID(nsKey.Public().(ed25519.PublicKey))
	data := os.Getenv("NAT_DATA")
	switch role {
	case "seed":
		n, err := node.New(node.Config{
			DataDir: data, Listen: []string{"/ip4/10.99.0.1/tcp/7400"}, AdminListen: "off",
			HostedVaults: []vault.NamespaceID{ns}, DHT: node.DHTConfig{Mode: config.DHTOff},
			// The "public" segment is a private network: its address must
			// be advertised.
			Relay: node.RelayConfig{Mode: config.RelayAgents, Limits: relay.Limits{CircuitBytes: 16 << 20}, AdvertisePrivateAddrs: true,
				AllowedKeys: []ed25519.PublicKey{k1.Public().(ed25519.PublicKey), k2.Public().(ed25519.PublicKey)}},
		})
		if err != nil {
			return fail("seed: %v", err)
		}
		fmt.Printf("READY %s\n", n.Addrs()[0])
		<-ctx.Done()
		n.Close()
		return 0
	case "receiver", "sender":
		key := k2
		if role == "sender" {
			key = k1
		}
		h, err := p2p.NewHost(p2p.HostOptions{Key: key})
		if err != nil {
			return fail("host: %v", err)
		}
		defer h.Close()
		st, err := vault.Open(data, vault.StoreOptions{})
		if err != nil {
			return fail("store: %v", err)
		}
		defer st.Close()
		svc, err := vault.NewService(h, st, vault.WithPolicy(vault.NewHostedSet(ns)))
		if err != nil {
			return fail("vault service: %v", err)
		}
		defer svc.Close()
		seed, err := p2p.ParsePeerAddr(os.Getenv("NAT_SEED"))
		if err != nil {
			return fail("seed address: %v", err)
		}
		if role == "receiver" {
			if _, err := relay.Reserve(ctx, h, seed); err != nil {
				return fail("reserve: %v", err)
			}
			circuit, err := relay.CircuitAddr(seed)
			if err != nil {
				return fail("%v", err)
			}
			fmt.Printf("RESERVED %s/p2p/%s\n", circuit, h.ID())
			for ctx.Err() == nil {
				if s, _ := st.Stats(ns); s.Entries == 100 {
					fmt.Printf("GOT %d\n", s.Entries)
					// Stay up: the sender's session ends only after the
					// entries are stored here, and a receiver that left at
					// once reset it (the test kills this process).
					<-ctx.Done()
					return 0
				}
				time.Sleep(50 * time.Millisecond)
			}
			s, _ := st.Stats(ns)
			return fail("receiver has %d entries", s.Entries)
		}
		// Sender: write 100 entries, reach the receiver through the relay, sync.
		consent := vault.NewCapability(nsKey, vault.AuthorID(key.Public().(ed25519.PublicKey)), 0)
		var items []vault.Item
		for i := range 100 {
			v := []byte(fmt.Sprintf("value %d", i))
			e := vault.Entry{Namespace: ns, Key: []byte(fmt.Sprintf("k/%03d", i)), Author: vault.AuthorID(key.Public().(ed25519.PublicKey)),
				Hash: vault.HashOf(v), Size: uint64(len(v)), Timestamp: uint64(time.Now().UnixMicro())}
			se, err := vault.Sign(e, key, consent, nil)
			if err != nil {
				return fail("sign: %v", err)
			}
			items = append(items, vault.Item{Entry: se, Content: v})
		}
		if _, err := st.Insert(items, 0, true); err != nil {
			return fail("insert: %v", err)
		}
		target, err := p2p.ParsePeerAddr(os.Getenv("NAT_TARGET"))
		if err != nil {
			return fail("target: %v", err)
		}
		if err := h.Connect(ctx, target); err != nil {
			return fail("connect through the relay: %v", err)
		}
		stats, err := svc.Sync(ctx, target.ID, ns, vault.SyncOptions{})
		if err != nil {
			return fail("sync: %v", err)
		}
		relayed := true
		for _, c := range h.Network().ConnsToPeer(target.ID) {
			relayed = relayed && c.Stat().Limited
		}
		fmt.Printf("SYNCED sent=%d relayed=%v via=%s\n", stats.ItemsSent, relayed, connAddrs(h.Network().ConnsToPeer(target.ID)))
		return 0
	}
	return fail("unknown role %q", role)
}

func connAddrs(cs []network.Conn) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.RemoteMultiaddr().String())
	}
	return strings.Join(out, ",")
}
