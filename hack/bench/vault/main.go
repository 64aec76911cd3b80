// Command vault measures vault sync on loopback: set reconciliation of large
// replicas, full and incremental sync, live propagation and the syncing
// process's memory. Each figure is printed as "BENCH <name> <value> <unit>",
// next to a baseline measured in the same run.
//
// The seed side and the syncing device side run as separate processes (this
// binary re-executed with -role), so peak RSS is the syncing process's own.
package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/seedfleet/seedfleet/hack/benchutil"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/seedfleet/seedfleet/seednode/vault"
)

var (
	role    = flag.String("role", "", "internal: seed or device")
	dir     = flag.String("dir", "", "internal: store directory")
	peerArg = flag.String("peer", "", "internal: seed multiaddr")
	nsArg   = flag.String("ns", "", "internal: namespace")
	smoke   = flag.Bool("smoke", false, "tiny sizes: checks the driver works (CI)")
	workDir = flag.String("workdir", "", "where fixtures go (default: a temp dir, removed afterwards)")
	only    = flag.String("only", "", "comma-separated parts to run: a,b,c,d (default all)")
	profile = flag.String("cpuprofile", "", "write CPU profiles of the seed and device processes to this prefix")
)

func main() {
	log.SetFlags(0)
	flag.Parse()
	switch *role {
	case "seed":
		runSeed()
		return
	case "device":
		runDevice()
		return
	}
	runBench()
}

func newHost() host.Host {
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.DisableRelay(),
	)
	if err != nil {
		log.Fatal(err)
	}
	return h
}

// ---- fixtures ----

type fixture struct {
	nsKey   ed25519.PrivateKey
	ns      vault.NamespaceID
	authors []ed25519.PrivateKey
	consent []vault.Consent
	base    uint64
}

func newFixture() *fixture {
	f := &fixture{base: uint64(time.Now().Add(-time.Hour).UnixMicro())}
	f.nsKey = ed25519.NewKeyFromSeed(seed(1))
	f.ns = vault.NamespaceID(f.nsKey.Public().(ed25519.PublicKey))
	for i := range 4 {
		k := ed25519.NewKeyFromSeed(seed(byte(10 + i)))
		f.authors = append(f.authors, k)
		f.consent = append(f.consent, vault.NewCapability(f.nsKey, vault.AuthorID(k.Public().(ed25519.PublicKey)), 0))
	}
	return f
}

func seed(b byte) []byte {
	s := make([]byte, ed25519.SeedSize)
	s[0] = b
	return s
}

// items signs entries [from, to) with a key prefix, in parallel.
func (f *fixture) items(prefix string, from, to int) []vault.Item {
	out := make([]vault.Item, to-from)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := from + w; i < to; i += workers {
				a := i % len(f.authors)
				val := make([]byte, 24)
				binary.BigEndian.PutUint64(val, uint64(i))
				copy(val[8:], prefix)
				e := vault.Entry{
					Namespace: f.ns, Key: fmt.Appendf(nil, "%s/%09d", prefix, i),
					Author: vault.AuthorID(f.authors[a].Public().(ed25519.PublicKey)),
					Hash:   vault.HashOf(val), Size: uint64(len(val)), Timestamp: f.base + uint64(i),
				}
				se, err := vault.Sign(e, f.authors[a], f.consent[a], nil)
				if err != nil {
					log.Fatal(err)
				}
				out[i-from] = vault.Item{Entry: se, Content: val}
			}
		}()
	}
	wg.Wait()
	return out
}

// fill writes n entries in chunks so the fixture never holds them all.
func (f *fixture) fill(st *vault.Store, prefix string, n int) {
	const chunk = 20000
	for from := 0; from < n; from += chunk {
		to := min(n, from+chunk)
		if _, err := st.Insert(f.items(prefix, from, to), 0, false); err != nil {
			log.Fatal(err)
		}
	}
	if err := st.Sync(); err != nil {
		log.Fatal(err)
	}
}

func openStore(d string) *vault.Store {
	st, err := vault.Open(d, vault.StoreOptions{})
	if err != nil {
		log.Fatal(err)
	}
	return st
}

// ---- child processes ----

func runSeed() {
	defer benchutil.StartProfile(*profile, "seed")()
	st := openStore(*dir)
	h := newHost()
	ns, err := vault.ParseNamespaceID(*nsArg)
	if err != nil {
		log.Fatal(err)
	}
	svc, err := vault.NewService(h, st, vault.WithPolicy(vault.NewHostedSet(ns)))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("ADDR %s/p2p/%s\n", h.Addrs()[0], h.ID())
	_, _ = io.Copy(io.Discard, os.Stdin) // serve until the parent closes stdin
	svc.Close()
	h.Close()
	st.Close()
}

type deviceResult struct {
	Stats     vault.SyncStats
	Seconds   float64
	PeakRSS   int64 // bytes, VmHWM
	SigChecks uint64
}

func runDevice() {
	defer benchutil.StartProfile(*profile, "device")()
	st := openStore(*dir)
	h := newHost()
	ns, err := vault.ParseNamespaceID(*nsArg)
	if err != nil {
		log.Fatal(err)
	}
	svc, err := vault.NewService(h, st, vault.WithPolicy(vault.NewHostedSet(ns)))
	if err != nil {
		log.Fatal(err)
	}
	info := addrInfo(*peerArg)
	ctx := context.Background()
	if err := h.Connect(ctx, info); err != nil {
		log.Fatal(err)
	}
	start := time.Now()
	stats, err := svc.Sync(ctx, info.ID, ns, vault.SyncOptions{})
	if err != nil {
		log.Fatal(err)
	}
	res := deviceResult{Stats: stats, Seconds: time.Since(start).Seconds(), PeakRSS: peakRSS(), SigChecks: svc.Verifier().SignatureChecks.Load()}
	svc.Close()
	h.Close()
	st.Close()
	_ = json.NewEncoder(os.Stdout).Encode(res)
}

func addrInfo(s string) peer.AddrInfo {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		log.Fatal(err)
	}
	info, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		log.Fatal(err)
	}
	return *info
}

func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return -1
}

type seedProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
}

func startSeed(storeDir string, ns vault.NamespaceID) *seedProc {
	cmd := exec.Command(os.Args[0], "-role", "seed", "-dir", storeDir, "-ns", ns.String(), "-cpuprofile", *profile)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ADDR ") {
		log.Fatalf("seed did not start: %q %v", line, err)
	}
	return &seedProc{cmd: cmd, stdin: stdin, addr: strings.TrimSpace(strings.TrimPrefix(line, "ADDR "))}
}

func (s *seedProc) stop() {
	s.stdin.Close()
	_ = s.cmd.Wait()
}

func runDeviceProc(storeDir string, ns vault.NamespaceID, seedAddr string) deviceResult {
	cmd := exec.Command(os.Args[0], "-role", "device", "-dir", storeDir, "-ns", ns.String(), "-peer", seedAddr, "-cpuprofile", *profile)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		log.Fatalf("device: %v", err)
	}
	var r deviceResult
	if err := json.Unmarshal(out, &r); err != nil {
		log.Fatalf("device output %q: %v", out, err)
	}
	return r
}

// ---- the benchmark ----

func runBench() {
	root := *workDir
	if root == "" {
		d, err := os.MkdirTemp("", "seedfleet-vault-bench-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(d)
		root = d
	}
	want := benchutil.Parts(*only)
	big, mid := 1_000_000, 100_000
	if *smoke {
		big, mid = 3000, 1000
	}
	f := newFixture()
	fmt.Printf("# vault sync benchmark: GOMAXPROCS=%d, %s\n", runtime.GOMAXPROCS(0), runtime.Version())
	if want("a") {
		benchReconcile(f, root, big)
	}
	if want("b") || want("c") {
		benchFullAndIncremental(f, root, mid)
	}
	if want("d") {
		benchLive(f, root)
	}
}

func benchReconcile(f *fixture, root string, n int) {
	label := "1m"
	if n != 1_000_000 {
		label = fmt.Sprintf("%d", n)
	}
	start := time.Now()
	baseDir := filepath.Join(root, "a-base")
	st := openStore(baseDir)
	f.fill(st, "notes", n)
	fmt.Printf("# fixture: %d entries in %.1fs\n", n, time.Since(start).Seconds())
	for _, d := range []int{10, 1000} {
		devDir := filepath.Join(root, fmt.Sprintf("a-dev-%d", d))
		seedDir := filepath.Join(root, fmt.Sprintf("a-seed-%d", d))
		if err := st.Checkpoint(devDir); err != nil {
			log.Fatal(err)
		}
		if err := st.Checkpoint(seedDir); err != nil {
			log.Fatal(err)
		}
		// d differences: half new on the device, half new on the seed.
		dev, seedSt := openStore(devDir), openStore(seedDir)
		if _, err := dev.Insert(f.items(fmt.Sprintf("dev%d", d), 0, d/2), 0, true); err != nil {
			log.Fatal(err)
		}
		if _, err := seedSt.Insert(f.items(fmt.Sprintf("seed%d", d), 0, d-d/2), 0, true); err != nil {
			log.Fatal(err)
		}
		dev.Close()
		seedSt.Close()
		sp := startSeed(seedDir, f.ns)
		r := runDeviceProc(devDir, f.ns, sp.addr)
		sp.stop()
		s := r.Stats
		if s.Stored != d-d/2 || s.ItemsSent != d/2 {
			log.Fatalf("d=%d: device stored %d (want %d) and sent %d (want %d)", d, s.Stored, d-d/2, s.ItemsSent, d/2)
		}
		name := fmt.Sprintf("vault_%s_d%d", label, d)
		benchutil.Bench(name+"_roundtrips", float64(s.RoundTrips), "roundtrips")
		benchutil.Bench(name+"_bytes", float64(s.BytesSent+s.BytesReceived), "bytes")
		benchutil.Bench(name+"_bytes_sent", float64(s.BytesSent), "bytes")
		benchutil.Bench(name+"_bytes_received", float64(s.BytesReceived), "bytes")
		benchutil.Bench(name+"_seconds", r.Seconds, "s")
		// Baseline: the bytes of the naive exchange, every item's 8-byte ID.
		naive := float64(8 * n)
		benchutil.Bench(name+"_baseline_idlist_bytes", naive, "bytes")
		benchutil.Bench(name+"_bytes_ratio_vs_idlist", float64(s.BytesSent+s.BytesReceived)/naive, "ratio")
		if d == 1000 || *smoke {
			benchutil.Bench(fmt.Sprintf("vault_%s_peak_rss_mib", label), float64(r.PeakRSS)/(1<<20), "MiB")
		}
		os.RemoveAll(devDir)
		os.RemoveAll(seedDir)
	}
	st.Close()
	os.RemoveAll(baseDir)
}

func benchFullAndIncremental(f *fixture, root string, n int) {
	label := "100k"
	if n != 100_000 {
		label = fmt.Sprintf("%d", n)
	}
	seedDir := filepath.Join(root, "b-seed")
	st := openStore(seedDir)
	f.fill(st, "doc", n)
	st.Close()
	// What a seed's verification of a vault costs (at start when its store
	// is small, in the background scrub, on demand): every entry read and
	// checked, the sums recomputed. Reopened, so its blocks start uncached
	// by Pebble (the page cache may hold them).
	st = openStore(seedDir)
	vs := time.Now()
	rep, err := st.VerifyVault(f.ns)
	if err != nil || rep.Problem != "" || rep.Entries != uint64(n) {
		log.Fatalf("verify the seed's store: %+v %v", rep, err)
	}
	storeVerifySecs := time.Since(vs).Seconds()
	st.Close()

	// Baseline: verifying the same entries' signatures on both cores, the
	// floor of any sync that checks every entry.
	v := vault.NewVerifier(nil)
	var entries []vault.SignedEntry
	for _, it := range f.items("doc", 0, n) {
		entries = append(entries, it.Entry)
	}
	vs = time.Now()
	for _, err := range v.VerifyBatch(entries, vault.Limits{}) {
		if err != nil {
			log.Fatal(err)
		}
	}
	verifySecs := time.Since(vs).Seconds()

	sp := startSeed(seedDir, f.ns)
	defer sp.stop()
	devDir := filepath.Join(root, "b-dev")
	r := runDeviceProc(devDir, f.ns, sp.addr)
	if r.Stats.Stored != n {
		log.Fatalf("full sync stored %d of %d", r.Stats.Stored, n)
	}
	benchutil.Bench("vault_"+label+"_full_seconds", r.Seconds, "s")
	benchutil.Bench("vault_"+label+"_full_bytes", float64(r.Stats.BytesSent+r.Stats.BytesReceived), "bytes")
	benchutil.Bench("vault_"+label+"_full_signature_checks", float64(r.SigChecks), "checks")
	benchutil.Bench("vault_"+label+"_baseline_verify_seconds", verifySecs, "s")
	benchutil.Bench("vault_"+label+"_full_ratio_vs_verify", r.Seconds/verifySecs, "ratio")
	benchutil.Bench("vault_"+label+"_store_verify_seconds", storeVerifySecs, "s")
	benchutil.Bench("vault_"+label+"_store_verify_ratio_vs_full", storeVerifySecs/r.Seconds, "ratio")

	// Incremental: the device writes 10 entries and syncs them to the seed.
	dev := openStore(devDir)
	if _, err := dev.Insert(f.items("new", 0, 10), 0, true); err != nil {
		log.Fatal(err)
	}
	dev.Close()
	r = runDeviceProc(devDir, f.ns, sp.addr)
	if r.Stats.ItemsSent != 10 {
		log.Fatalf("incremental sync sent %d items, want 10", r.Stats.ItemsSent)
	}
	rtt := pingRTT()
	benchutil.Bench("vault_"+label+"_incr10_seconds", r.Seconds, "s")
	benchutil.Bench("vault_"+label+"_incr10_bytes", float64(r.Stats.BytesSent+r.Stats.BytesReceived), "bytes")
	benchutil.Bench("vault_"+label+"_incr10_roundtrips", float64(r.Stats.RoundTrips), "roundtrips")
	benchutil.Bench("vault_"+label+"_baseline_libp2p_rtt_ms", rtt*1000, "ms")
}

// pingRTT is the median round trip of a 1-byte echo on a libp2p stream
// between two fresh hosts: the latency floor of any protocol exchange here.
func pingRTT() float64 {
	a, b := newHost(), newHost()
	defer a.Close()
	defer b.Close()
	b.SetStreamHandler("/seedfleet/bench-echo/1.0.0", func(s network.Stream) {
		_, _ = io.Copy(s, s)
		s.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		log.Fatal(err)
	}
	s, err := a.NewStream(ctx, b.ID(), "/seedfleet/bench-echo/1.0.0")
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	var rtts []float64
	buf := []byte{1}
	for range 200 {
		start := time.Now()
		if _, err := s.Write(buf); err != nil {
			log.Fatal(err)
		}
		if _, err := io.ReadFull(s, buf); err != nil {
			log.Fatal(err)
		}
		rtts = append(rtts, time.Since(start).Seconds())
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2]
}

func benchLive(f *fixture, root string) {
	a, b := openStore(filepath.Join(root, "d-a")), openStore(filepath.Join(root, "d-b"))
	defer a.Close()
	defer b.Close()
	ha, hb := newHost(), newHost()
	defer ha.Close()
	defer hb.Close()
	sa, err := vault.NewService(ha, a, vault.WithPolicy(vault.NewHostedSet(f.ns)))
	if err != nil {
		log.Fatal(err)
	}
	sb, err := vault.NewService(hb, b, vault.WithPolicy(vault.NewHostedSet(f.ns)))
	if err != nil {
		log.Fatal(err)
	}
	defer sa.Close()
	defer sb.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := ha.Connect(ctx, peer.AddrInfo{ID: hb.ID(), Addrs: hb.Addrs()}); err != nil {
		log.Fatal(err)
	}
	live := make(chan error, 1)
	go func() {
		_, err := sa.Sync(ctx, hb.ID(), f.ns, vault.SyncOptions{Live: true})
		live <- err
	}()
	sub := b.Subscribe(f.ns, vault.NewOrigin())
	defer sub.Close()
	n := 300
	if *smoke {
		n = 20
	}
	items := f.items("live", 0, n)
	time.Sleep(200 * time.Millisecond) // let the session reach live mode
	var lat []float64
	for i := range items {
		start := time.Now()
		if _, err := a.Insert(items[i:i+1], 0, true); err != nil {
			log.Fatal(err)
		}
		select {
		case <-sub.Ready():
		case err := <-live:
			log.Fatalf("live session ended: %v", err)
		case <-time.After(5 * time.Second):
			log.Fatalf("entry %d did not arrive within 5s", i)
		}
		lat = append(lat, time.Since(start).Seconds()*1000)
		sub.Next()
		time.Sleep(2 * time.Millisecond)
	}
	slices.Sort(lat)
	benchutil.Bench("vault_live_p50_ms", lat[len(lat)/2], "ms")
	benchutil.Bench("vault_live_p99_ms", lat[len(lat)*99/100], "ms")
	benchutil.Bench("vault_live_baseline_libp2p_rtt_ms", pingRTT()*1000, "ms")
}
