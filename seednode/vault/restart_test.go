package vault

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// The restart test runs the seed in a child process (this test binary,
// re-executed) so it can be killed with SIGKILL: no deferred close, no flush.
const seedChildEnv = "SEEDFLEET_VAULT_TEST_SEED"

func TestMain(m *testing.M) {
	if spec := os.Getenv(seedChildEnv); spec != "" {
		runSeedChild(spec)
		return
	}
	os.Exit(m.Run())
}

// runSeedChild serves "dir|port|namespace" with a fixed identity until killed.
func runSeedChild(spec string) {
	parts := strings.Split(spec, "|")
	st, err := Open(parts[0], StoreOptions{})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	ns, _ := ParseNamespaceID(parts[2])
	// A fixed identity: the restarted seed has the same peer ID.
	priv, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	h, err := libp2p.New(libp2p.Identity(priv),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/"+parts[1]),
		libp2p.Transport(tcp.NewTCPTransport), libp2p.Security(libp2ptls.ID, libp2ptls.New), libp2p.DisableRelay())
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	if _, err := NewService(h, st, WithPolicy(NewHostedSet(ns))); err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	fmt.Printf("READY %s\n", h.ID())
	select {}
}

type seedChild struct {
	cmd *exec.Cmd
	id  peer.ID
}

func startSeedChild(t *testing.T, dir string, port int, ns NamespaceID) *seedChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%d|%s", seedChildEnv, dir, port, ns))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	id, ok := strings.CutPrefix(strings.TrimSpace(line), "READY ")
	if err != nil || !ok {
		t.Fatalf("seed child did not start: %q %v", line, err)
	}
	pid, err := peer.Decode(id)
	if err != nil {
		t.Fatal(err)
	}
	return &seedChild{cmd: cmd, id: pid}
}

func (c *seedChild) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
}

// TestSeedKilledMidSync: a seed is SIGKILLed while a device pushes a large
// batch. After a restart on the same directory every entry of an earlier,
// acknowledged sync is still there, the store is consistent, and the
// interrupted sync completes on reconnect.
func TestSeedKilledMidSync(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	rng := rand.New(rand.NewPCG(9, 9))
	nsKey := newNamespaceKey(rng)
	w := newWriter(t, nsKey, rng)
	ns := w.ns
	seedDir := t.TempDir()
	port := freeTCPPort(t)

	device := testStore(t, StoreOptions{})
	dh := testHost(t)
	// The kill resets the connection at once; the idle timeout only has to
	// outlast a seed child verifying a large turn under the race detector on
	// a busy machine.
	dsvc := newTestService(t, dh, device, WithPolicy(NewHostedSet(ns)), WithIdleTimeout(30*time.Second))
	t.Cleanup(func() { dsvc.Close() })
	seedAddr, _ := ma.NewMultiaddr(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port))

	syncOnce := func(id peer.ID, progress func(Progress)) (SyncStats, error) {
		dh.Peerstore().AddAddrs(id, []ma.Multiaddr{seedAddr}, time.Hour)
		// Generous: 60,000 entries under the race detector on a busy machine.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		return dsvc.Sync(ctx, id, ns, SyncOptions{Progress: progress})
	}
	batch := func(prefix string, n int) []Item {
		items := make([]Item, n)
		base := nowMicros() - 1e9
		for i := range items {
			items[i] = w.item(t, fmt.Sprintf("%s/%06d", prefix, i), fmt.Sprint("value ", i), base+uint64(i))
		}
		return items
	}

	// 1. An acknowledged sync.
	seed := startSeedChild(t, seedDir, port, ns)
	acked := batch("acked", 2000)
	insert(t, device, acked...)
	if st, err := syncOnce(seed.id, nil); err != nil || st.ItemsSent != len(acked) {
		t.Fatalf("first sync: %+v %v", st, err)
	}

	// 2. A large push, cut off by SIGKILL once it is under way.
	insert(t, device, batch("big", 60000)...)
	killed := false
	_, err := syncOnce(seed.id, func(p Progress) {
		if !killed && p.ItemsSent > 5000 {
			killed = true
			seed.kill(t)
		}
	})
	if !killed || err == nil {
		t.Fatalf("sync was not interrupted (killed=%v, err=%v)", killed, err)
	}
	t.Logf("interrupted sync: %v", err)

	// 3. Restart on the same directory: acknowledged entries survived and
	// the store's aggregates match its entries.
	seed = startSeedChild(t, seedDir, port, ns)
	seed.kill(t) // inspect the directory it recovered, then restart it
	st, err := Open(seedDir, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	have := dump(t, st, ns)
	for _, it := range acked {
		if _, ok := have[it.Entry.ItemHash()]; !ok {
			t.Fatalf("acknowledged entry %q lost by the restart", it.Entry.Key)
		}
	}
	checkAggregates(t, st, ns)
	t.Logf("after the kill the seed holds %d of %d entries", len(have), 62000)
	st.Close()

	// 4. The sync completes after reconnecting.
	seed = startSeedChild(t, seedDir, port, ns)
	if _, err := syncOnce(seed.id, nil); err != nil {
		t.Fatalf("sync after restart: %v", err)
	}
	seed.kill(t)
	st, err = Open(seedDir, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sameVault(t, device, st, ns)
	checkAggregates(t, st, ns)
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	h := testHost(t)
	port, err := h.Addrs()[0].ValueForProtocol(ma.P_TCP)
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	var p int
	fmt.Sscan(port, &p)
	return p
}
