// Command blobs measures the blob store and its verified streaming protocol
// on loopback: a 1 GiB verified transfer (blobs.Service.Fetch) next to the
// same bytes over a plain libp2p stream and over raw TCP, the cost of adding
// a file to the store next to plain BLAKE3 hashing, and the fetching
// process's memory. Each figure is printed as "BENCH <name> <value> <unit>".
//
// The seed and the device run as separate processes (this binary
// re-executed with -role), one seed per transfer, so CPU time, RSS and CPU
// profiles are each process's own.
package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/seedfleet/seedfleet/hack/benchutil"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"

	"github.com/seedfleet/seedfleet/seednode/blobs"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
)

var (
	role    = flag.String("role", "", "internal: seed or device")
	dir     = flag.String("dir", "", "internal: store directory")
	fileArg = flag.String("file", "", "internal: file the seed sends on the plain stream and over TCP")
	mode    = flag.String("mode", "", "internal: blob, collection, stream or tcp")
	peerArg = flag.String("peer", "", "internal: seed multiaddr")
	tcpArg  = flag.String("tcp", "", "internal: seed TCP address")
	hashArg = flag.String("hash", "", "internal: blob hash (hex)")
	sizeArg = flag.Uint64("size", 0, "internal: bytes to receive")
	seedPID = flag.Int("seedpid", 0, "internal: the seed's process ID (for its CPU time)")
	smoke   = flag.Bool("smoke", false, "tiny sizes: checks the driver works (CI)")
	workDir = flag.String("workdir", "", "parent of the temp dir for fixtures (default: the system temp dir); always removed")
	only    = flag.String("only", "", "comma-separated parts to run: add,blob,stream,tcp,rss,many (default all)")
	profile = flag.String("cpuprofile", "", "write CPU profiles of the seed, device and add to this prefix")
	runsArg = flag.Int("runs", 0, "runs of each measurement, the median reported (default 5, 1 with -smoke)")
	against = flag.String("against", "", "another build of this benchmark (go build -o FILE ./hack/bench/blobs at the commit to compare with): its seed and device run the blob transfer too, taking turns with this build's, and the ratio of the two is printed")
	verbose = flag.Bool("v", false, "print every transfer run's throughput and CPU split as it ends")
	cold    = flag.Bool("cold", false, "before every transfer, drop the files the seed sends from the page cache (default: every source is cached)")
)

const (
	// protoRaw is the plain, unverified baseline stream.
	protoRaw = "/seedfleet/bench-raw/1.0.0"
	// copyBuf is the write and read size of the plain stream and TCP baselines.
	copyBuf = 256 << 10
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

func newHost(listen bool) host.Host {
	key, err := identity.Generate()
	if err != nil {
		log.Fatal(err)
	}
	o := p2p.HostOptions{Key: key}
	if listen {
		o.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	h, err := p2p.NewHost(o)
	if err != nil {
		log.Fatal(err)
	}
	return h
}

// ---- process accounting ----

// procIO returns a field of /proc/self/io (-1 if unavailable).
func procIO(field string) int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+": "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}

// kernelThreadsCPU is the CPU seconds of all kernel threads (kthreadd and
// its children): page-cache writeback, journaling and the like, which a
// transfer that writes causes but is not charged for.
func kernelThreadsCPU() float64 {
	ents, _ := os.ReadDir("/proc")
	var sum float64
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 13 || (pid != 2 && f[1] != "2") { // f[1]: ppid
			continue
		}
		u, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		sum += (u + st) / benchutil.ClockTicks
	}
	return sum
}

// resetPeakRSS sets VmHWM to the current VmRSS (Linux ≥ 4.0), so the peak
// read later is the transfer's, not start-up's.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// ---- seed ----

// runSeed serves the store's blobs, the plain file on protoRaw and over TCP,
// and prints its addresses; it stops when the parent closes its stdin.
func runSeed() {
	defer benchutil.StartProfile(*profile, "seed-"+*mode)()
	st, err := blobs.Open(*dir)
	if err != nil {
		log.Fatal(err)
	}
	h := newHost(true)
	svc, err := blobs.NewService(h, st)
	if err != nil {
		log.Fatal(err)
	}
	h.SetStreamHandler(protoRaw, func(s network.Stream) {
		defer s.Close()
		if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
			s.Reset()
			return
		}
		if err := sendFile(s); err != nil {
			log.Printf("seed: plain stream: %v", err)
			s.Reset()
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
					return
				}
				if err := sendFile(c); err != nil {
					log.Printf("seed: tcp: %v", err)
				}
			}()
		}
	}()
	fmt.Printf("ADDR %s\nTCP %s\n", p2p.FullAddrs(h)[0], ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin) // serve until the parent closes stdin
	ln.Close()
	svc.Close()
	h.Close()
	st.Close()
}

// onlyReader hides *os.File's WriterTo (sendfile/splice), so io.CopyBuffer
// really reads and writes copyBuf bytes at a time.
type onlyReader struct{ io.Reader }

func sendFile(w io.Writer) error {
	f, err := os.Open(*fileArg)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyBuffer(w, onlyReader{f}, make([]byte, copyBuf))
	return err
}

// ---- device ----

type deviceResult struct {
	Seconds      float64
	Bytes        uint64
	DeviceCPU    float64
	SeedCPU      float64
	MachineCPU   float64 // user+system CPU seconds of the whole machine during the transfer
	KernelCPU    float64 // of which kernel threads (writeback, journal)
	IdleRSS      int64   // VmRSS right before the transfer
	PeakRSS      int64   // VmHWM after it
	HWMReset     bool    // VmHWM was reset to VmRSS at idle
	SeedIdleRSS  int64
	SeedPeakRSS  int64 // VmHWM of the seed process (since it started)
	WrittenBytes int64 // bytes the device passed to write syscalls (wchar)
	WriteCalls   int64 // the device's write syscalls (syscw)
	Fetch        *blobs.FetchStats
}

func runDevice() {
	defer benchutil.StartProfile(*profile, fmt.Sprintf("device-%s-%s", *mode, benchutil.Label(*sizeArg)))()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	var (
		transfer func() (uint64, *blobs.FetchStats)
		cleanup  []func()
	)
	switch *mode {
	case "blob", "collection", "stream":
		info, err := p2p.ParsePeerAddr(*peerArg)
		if err != nil {
			log.Fatal(err)
		}
		h := newHost(false)
		cleanup = append(cleanup, func() { h.Close() })
		if err := h.Connect(ctx, info); err != nil {
			log.Fatal(err)
		}
		if *mode == "blob" || *mode == "collection" {
			st, err := blobs.Open(*dir)
			if err != nil {
				log.Fatal(err)
			}
			svc, err := blobs.NewService(h, st)
			if err != nil {
				log.Fatal(err)
			}
			cleanup = append(cleanup, func() { svc.Close(); st.Close() })
			var hash [32]byte
			if _, err := hex.Decode(hash[:], []byte(*hashArg)); err != nil {
				log.Fatal(err)
			}
			transfer = func() (uint64, *blobs.FetchStats) {
				if *mode == "collection" {
					return fetchCollection(ctx, svc, st, info.ID, hash)
				}
				stats, err := svc.Fetch(ctx, info.ID, hash, blobs.FetchOptions{})
				if err != nil {
					log.Fatalf("fetch: %v", err)
				}
				if !stats.Complete || stats.Size != *sizeArg {
					log.Fatalf("fetch: complete=%v size=%d, want a complete blob of %d bytes", stats.Complete, stats.Size, *sizeArg)
				}
				if s, err := st.Stat(hash); err != nil || s.State != blobs.Complete || s.Size != *sizeArg {
					log.Fatalf("after the fetch the device store says %+v (%v)", s, err)
				}
				return stats.Size, &stats
			}
		} else {
			transfer = func() (uint64, *blobs.FetchStats) {
				s, err := h.NewStream(ctx, info.ID, protoRaw)
				if err != nil {
					log.Fatal(err)
				}
				defer s.Close()
				if _, err := s.Write([]byte{1}); err != nil {
					log.Fatal(err)
				}
				_ = s.CloseWrite()
				return drain(s), nil
			}
		}
	case "tcp":
		c, err := net.Dial("tcp", *tcpArg)
		if err != nil {
			log.Fatal(err)
		}
		cleanup = append(cleanup, func() { c.Close() })
		transfer = func() (uint64, *blobs.FetchStats) {
			if _, err := c.Write([]byte{1}); err != nil {
				log.Fatal(err)
			}
			return drain(c), nil
		}
	default:
		log.Fatalf("unknown -mode %q", *mode)
	}

	seed := strconv.Itoa(*seedPID)
	res := deviceResult{IdleRSS: benchutil.ProcStatus("self", "VmRSS"), SeedIdleRSS: benchutil.ProcStatus(seed, "VmRSS")}
	res.HWMReset = resetPeakRSS()
	wchar, syscw := procIO("wchar"), procIO("syscw")
	machine, kthreads, seedCPU, devCPU := benchutil.MachineCPU(), kernelThreadsCPU(), benchutil.ProcCPU(*seedPID), benchutil.SelfCPU()
	start := time.Now()
	res.Bytes, res.Fetch = transfer()
	res.Seconds = time.Since(start).Seconds()
	res.DeviceCPU, res.SeedCPU = benchutil.SelfCPU()-devCPU, benchutil.ProcCPU(*seedPID)-seedCPU
	res.MachineCPU, res.KernelCPU = benchutil.MachineCPU()-machine, kernelThreadsCPU()-kthreads
	res.WrittenBytes, res.WriteCalls = procIO("wchar")-wchar, procIO("syscw")-syscw
	res.PeakRSS, res.SeedPeakRSS = benchutil.ProcStatus("self", "VmHWM"), benchutil.ProcStatus(seed, "VmHWM")
	if res.Bytes != *sizeArg {
		log.Fatalf("%s: received %d bytes, want %d", *mode, res.Bytes, *sizeArg)
	}
	for i := len(cleanup) - 1; i >= 0; i-- {
		cleanup[i]()
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
}

// fetchCollection fetches a collection and its members into st, checks
// that every member is complete, and returns the members' bytes.
func fetchCollection(ctx context.Context, svc *blobs.Service, st *blobs.Store, p peer.ID, hash [32]byte) (uint64, *blobs.FetchStats) {
	c, stats, err := svc.FetchCollection(ctx, p, hash, blobs.FetchOptions{})
	if err != nil {
		log.Fatalf("fetch collection: %v", err)
	}
	var total uint64
	for _, e := range c {
		if s, err := st.Stat(e.Hash); err != nil || s.State != blobs.Complete || s.Size != e.Size {
			log.Fatalf("after the fetch member %s is %+v (%v)", e.Name, s, err)
		}
		total += e.Size
	}
	if !stats.Complete || stats.Size != total {
		log.Fatalf("fetch collection: complete=%v size=%d, want %d member bytes", stats.Complete, stats.Size, total)
	}
	return total, &stats
}

// drain reads r to its end in copyBuf reads and discards the bytes.
// (io.Copy to io.Discard would read 8 KiB at a time.)
func drain(r io.Reader) uint64 {
	buf := make([]byte, copyBuf)
	var n uint64
	for {
		m, err := r.Read(buf)
		n += uint64(m)
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			log.Fatalf("read after %d bytes: %v", n, err)
		}
	}
}

// ---- parent ----

var (
	cleanupOnce sync.Once
	cleanupFn   = func() {}
)

// die removes the fixtures and exits (log.Fatal would skip deferred cleanup).
func die(format string, args ...any) {
	cleanupOnce.Do(cleanupFn)
	log.Fatalf(format, args...)
}

type seedProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
	tcp   string
}

// againstMode is the blob transfer run by the -against build.
const againstMode = "blob-against"

// modeBinary returns the benchmark build that runs transfer mode m, and the
// mode it runs.
func modeBinary(m string) (bin, mode string) {
	if m == againstMode {
		return *against, "blob"
	}
	return os.Args[0], m
}

func startSeed(storeDir, file, m string) *seedProc {
	bin, m := modeBinary(m)
	cmd := exec.Command(bin, "-role", "seed", "-dir", storeDir, "-file", file, "-mode", m, "-cpuprofile", *profile)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		die("start seed: %v", err)
	}
	br := bufio.NewReader(out)
	sp := &seedProc{cmd: cmd, stdin: stdin}
	for sp.addr == "" || sp.tcp == "" {
		line, err := br.ReadString('\n')
		if err != nil {
			die("seed did not start: %q %v", line, err)
		}
		if a, ok := strings.CutPrefix(strings.TrimSpace(line), "ADDR "); ok {
			sp.addr = a
		} else if a, ok := strings.CutPrefix(strings.TrimSpace(line), "TCP "); ok {
			sp.tcp = a
		}
	}
	return sp
}

func (s *seedProc) stop() {
	s.stdin.Close()
	_ = s.cmd.Wait()
}

// transfer starts a seed, runs one device process against it, and stops the seed.
func transfer(m, seedStore, file, devStore string, hash [32]byte, size uint64) deviceResult {
	sp := startSeed(seedStore, file, m)
	defer sp.stop()
	bin, m := modeBinary(m)
	cmd := exec.Command(bin, "-role", "device", "-mode", m, "-dir", devStore,
		"-peer", sp.addr, "-tcp", sp.tcp, "-hash", hex.EncodeToString(hash[:]),
		"-size", strconv.FormatUint(size, 10), "-seedpid", strconv.Itoa(sp.cmd.Process.Pid), "-cpuprofile", *profile)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		die("device (%s): %v", m, err)
	}
	var r deviceResult
	if err := json.Unmarshal(out, &r); err != nil {
		die("device output %q: %v", out, err)
	}
	os.RemoveAll(devStore)
	return r
}

// writeRandom writes size random bytes to path.
func writeRandom(path string, size uint64, seed uint64) {
	f, err := os.Create(path)
	if err != nil {
		die("%v", err)
	}
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(left, uint64(len(buf)))
		_, _ = r.Read(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			die("write %s: %v", path, err)
		}
		left -= n
	}
	if err := f.Close(); err != nil {
		die("%v", err)
	}
}

// hashFile is plain BLAKE3 of a file read in 1 MiB blocks: the floor of any add.
func hashFile(path string) [32]byte {
	f, err := os.Open(path)
	if err != nil {
		die("%v", err)
	}
	defer f.Close()
	h := blake3.New()
	buf := make([]byte, 1<<20)
	for {
		n, err := f.Read(buf)
		_, _ = h.Write(buf[:n])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			die("read %s: %v", path, err)
		}
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// copyFile is the durable copy an add makes, without the hashing: read in
// 1 MiB blocks, write a new file beside the store, fsync it.
func copyFile(src, dst string) {
	in, err := os.Open(src)
	if err != nil {
		die("%v", err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		die("%v", err)
	}
	if _, err := io.CopyBuffer(out, onlyReader{in}, make([]byte, 1<<20)); err != nil {
		die("copy: %v", err)
	}
	if err := out.Sync(); err != nil {
		die("fsync: %v", err)
	}
	if err := out.Close(); err != nil {
		die("%v", err)
	}
}

// setCache puts the files under each path (a file or a directory) into the
// page cache (read them through) or, with drop, takes them out of it
// (POSIX_FADV_DONTNEED after sync(2), no privilege needed), so every
// transfer's source starts in the same state: a blob added with direct I/O
// is not cached, the plain stream's file just written is.
func setCache(drop bool, paths ...string) {
	buf := make([]byte, 1<<20)
	for _, root := range paths {
		_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			f, err := os.Open(path)
			if err != nil {
				return nil
			}
			defer f.Close()
			if drop {
				_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
				return nil
			}
			_, _ = io.CopyBuffer(io.Discard, onlyReader{f}, buf)
			return nil
		})
	}
}

// transfers runs a transfer in each mode n times, the modes taking turns
// (blob, stream, blob, stream, ...) so that a change in the machine's load
// falls on all of them alike. For each mode it returns the runs, the median
// one (by time) first.
func transfers(n int, modes []string, seedStore, file, devStore string, hash [32]byte, size uint64) map[string][]deviceResult {
	all := map[string][]deviceResult{}
	for range n {
		for _, m := range modes {
			setCache(*cold, seedStore, file)
			benchutil.Settle()
			r := transfer(m, seedStore, file, devStore+"-"+m, hash, size)
			if *verbose {
				fmt.Printf("# %s_%s run: %.1f MiB/s in %.2f s, CPU-seconds device %.2f, seed %.2f, whole machine %.2f\n",
					m, benchutil.Label(size), benchutil.MiB(int64(size))/r.Seconds, r.Seconds, r.DeviceCPU, r.SeedCPU, r.MachineCPU)
			}
			all[m] = append(all[m], r)
		}
	}
	for _, m := range modes {
		rs := all[m]
		sorted := slices.Clone(rs)
		slices.SortFunc(sorted, func(a, b deviceResult) int { return cmp.Compare(a.Seconds, b.Seconds) })
		med := sorted[len(sorted)/2]
		secs := make([]float64, len(rs))
		for i, r := range rs {
			secs[i] = benchutil.MiB(int64(size)) / r.Seconds
		}
		benchutil.RunsLine(m+"_"+benchutil.Label(size)+" transfer", secs, "MiB/s", 3)
		fmt.Printf("# %s_%s median run: %.1f MiB/s, CPU-seconds device %.2f, seed %.2f\n",
			m, benchutil.Label(size), benchutil.MiB(int64(size))/med.Seconds, med.DeviceCPU, med.SeedCPU)
		// Something else running on the machine makes these figures noisy: say so.
		other := med.MachineCPU - med.KernelCPU - med.DeviceCPU - med.SeedCPU
		avail := med.Seconds * float64(runtime.NumCPU())
		if med.KernelCPU >= 0.05 {
			fmt.Printf("# %s_%s: kernel threads (writeback, journal) used %.2f CPU-seconds during the median run, not counted in its cpu_seconds\n",
				m, benchutil.Label(size), med.KernelCPU)
		}
		if avail >= 0.5 && other > 0.1*avail { // /proc counts in 10 ms ticks
			fmt.Printf("# warning: other processes used %.2f of the %.2f CPU-seconds the machine had during the median %s run (load average %s): figures are noisy\n",
				other, avail, m, benchutil.Loadavg())
		}
		all[m] = append([]deviceResult{med}, rs...)
	}
	return all
}

// pairedRatios prints a's throughput over b's turn by turn (a run and the
// one right after it met about the same load) and their median: a second
// view of the ratio of medians, steadier when the machine's speed drifts.
// The runs follow the median in a and b (see transfers).
func pairedRatios(na string, a []deviceResult, nb string, b []deviceResult) {
	a, b = a[1:], b[1:]
	rs := make([]float64, min(len(a), len(b)))
	for i := range rs {
		rs[i] = b[i].Seconds / a[i].Seconds
	}
	fmt.Printf("# %s / %s turn by turn:", na, nb)
	for _, r := range rs {
		fmt.Printf(" %.2f", r)
	}
	slices.Sort(rs)
	fmt.Printf(" (median %.3f)\n", rs[len(rs)/2])
}

func runBench() {
	root, err := os.MkdirTemp(*workDir, "seedfleet-blobs-bench-")
	if err != nil {
		log.Fatal(err)
	}
	cleanupFn = func() { os.RemoveAll(root) }
	defer cleanupOnce.Do(cleanupFn)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		cleanupOnce.Do(cleanupFn)
		os.Exit(1)
	}()

	want := benchutil.Parts(*only)
	fmt.Printf("# blobs benchmark: GOMAXPROCS=%d, %d CPUs, %s, load average %s; seed and device are separate processes (a new pair per transfer)\n",
		runtime.GOMAXPROCS(0), runtime.NumCPU(), runtime.Version(), benchutil.Loadavg())
	if want("add") || want("blob") || want("stream") || want("tcp") || want("rss") {
		runLarge(root, want)
	}
	if want("many") {
		runMany(root)
	}
	fmt.Printf("# load average at the end: %s\n", benchutil.Loadavg())
}

// runLarge measures the 1 GiB transfer, the add and the RSS figures.
func runLarge(root string, want func(string) bool) {
	big, small := uint64(1<<30), uint64(256<<20)
	runs := 5
	if *smoke {
		big, small, runs = 8<<20, 4<<20, 1
	}
	if *runsArg > 0 {
		runs = *runsArg
	}
	lb, ls := benchutil.Label(big), benchutil.Label(small)
	fmt.Printf("# large blobs: %d run(s) of each figure\n", runs)
	fmt.Printf("# targets: transfer >= 380 MiB/s and >= 70%% of the plain libp2p stream; add <= 1.5x plain hashing; RSS flat, <= 64 MiB above idle\n")

	start := time.Now()
	bigFile, smallFile := filepath.Join(root, "big.bin"), filepath.Join(root, "small.bin")
	writeRandom(bigFile, big, 1)
	writeRandom(smallFile, small, 2)
	fmt.Printf("# fixtures: %s and %s of random bytes in %.1fs\n", lb, ls, time.Since(start).Seconds())

	// Hash, then add into a fresh store; the last run's store is the seed's.
	fmt.Printf("# hash and add read a file that was just written: it is in the page cache (nothing is dropped); add includes its fsyncs\n")
	fmt.Printf("# before every measured add, copy and transfer run, dirty pages are synced (sync(2)) so no run pays for an earlier one's writeback\n")
	var hashSecs, addSecs, addCPUs []float64
	var bigHash [32]byte
	seedStore := ""
	for i := range runs {
		t0 := time.Now()
		plain := hashFile(bigFile)
		hashSecs = append(hashSecs, time.Since(t0).Seconds())
		if seedStore != "" {
			os.RemoveAll(seedStore)
		}
		seedStore = filepath.Join(root, fmt.Sprintf("seed-%d", i))
		st, err := blobs.Open(seedStore)
		if err != nil {
			die("%v", err)
		}
		benchutil.Settle()
		stopProfile := benchutil.StartProfile(*profile, fmt.Sprintf("add-%d", i))
		cpu0 := benchutil.SelfCPU()
		t0 = time.Now()
		h, size, err := st.AddFile(bigFile, nil)
		addSecs = append(addSecs, time.Since(t0).Seconds())
		addCPUs = append(addCPUs, benchutil.SelfCPU()-cpu0)
		stopProfile()
		if err != nil {
			die("add: %v", err)
		}
		if h != plain || size != big {
			die("add: hash %x size %d, plain BLAKE3 says %x size %d", h[:8], size, plain[:8], big)
		}
		bigHash = h
		if err := st.Close(); err != nil {
			die("%v", err)
		}
	}
	var copySecs []float64
	for range runs {
		dst := filepath.Join(root, "copy.bin")
		benchutil.Settle()
		t0 := time.Now()
		copyFile(bigFile, dst)
		copySecs = append(copySecs, time.Since(t0).Seconds())
		os.Remove(dst)
	}
	st, err := blobs.Open(seedStore)
	if err != nil {
		die("%v", err)
	}
	smallHash, _, err := st.AddFile(smallFile, nil)
	if err != nil {
		die("add: %v", err)
	}
	st.Close()
	if want("add") {
		benchutil.RunsLine("hash_"+lb, hashSecs, "s", 3)
		benchutil.RunsLine("blob_"+lb+" add", addSecs, "s", 3)
		benchutil.RunsLine("copy_"+lb+"_fsync", copySecs, "s", 3)
		h, a, c := benchutil.Median(hashSecs), benchutil.Median(addSecs), benchutil.Median(copySecs)
		benchutil.Bench("hash_"+lb+"_seconds", benchutil.Round(h, 3), "s")
		benchutil.Bench("blob_"+lb+"_add_seconds", benchutil.Round(a, 3), "s")
		benchutil.Bench("blob_"+lb+"_add_ratio_vs_hash", benchutil.Round(a/h, 3), "ratio")
		benchutil.Bench("blob_"+lb+"_add_cpu_seconds", benchutil.Round(benchutil.Median(addCPUs), 3), "s")
		benchutil.Bench("copy_"+lb+"_fsync_seconds", benchutil.Round(c, 3), "s")
		benchutil.Bench("blob_"+lb+"_add_ratio_vs_copy_fsync", benchutil.Round(a/c, 3), "ratio")
	}

	devStore := func(name string) string { return filepath.Join(root, "device-"+name) }
	if *cold {
		fmt.Printf("# transfers: the seed's store and the plain stream's file are dropped from the page cache before every run (-cold)\n")
	} else {
		fmt.Printf("# transfers: the seed's store and the plain stream's file are read into the page cache before every run (-cold drops them instead)\n")
	}
	var modes []string
	if want("blob") || want("rss") {
		modes = append(modes, "blob")
	}
	if want("stream") {
		modes = append(modes, "stream")
	}
	if *against != "" && want("blob") {
		modes = append(modes, againstMode)
		fmt.Printf("# %s: the blob transfer with seed and device from %s\n", againstMode, *against)
	}
	if len(modes) > 1 {
		fmt.Printf("# %s runs take turns, so all meet the same load\n", strings.Join(modes, ", "))
	}
	var blobMiBps, streamMiBps float64
	big1 := transfers(runs, modes, seedStore, bigFile, devStore(lb), bigHash, big)
	if rs := big1["blob"]; rs != nil {
		r := rs[0]
		blobMiBps = benchutil.MiB(int64(big)) / r.Seconds
		if want("blob") {
			benchutil.Bench("blob_"+lb+"_transfer_mibps", benchutil.Round(blobMiBps, 1), "MiB/s")
			benchutil.Bench("blob_"+lb+"_transfer_cpu_seconds", benchutil.Round(r.DeviceCPU+r.SeedCPU, 2), "s")
			benchutil.Bench("blob_"+lb+"_transfer_cpu_seconds_device", benchutil.Round(r.DeviceCPU, 2), "s")
			benchutil.Bench("blob_"+lb+"_transfer_cpu_seconds_seed", benchutil.Round(r.SeedCPU, 2), "s")
			benchutil.Bench("blob_"+lb+"_transfer_wire_bytes", float64(r.Fetch.BytesReceived), "bytes")
			benchutil.Bench("blob_"+lb+"_transfer_device_written_bytes", float64(r.WrittenBytes), "bytes")
			benchutil.Bench("blob_"+lb+"_transfer_device_write_syscalls", float64(r.WriteCalls), "calls")
			benchutil.Bench("blob_"+lb+"_seed_rss_above_idle_mib", benchutil.Round(benchutil.MiB(r.SeedPeakRSS-r.SeedIdleRSS), 1), "MiB")
		}
		if want("rss") {
			small := transfers(runs, []string{"blob"}, seedStore, smallFile, devStore(ls), smallHash, small)["blob"]
			peak := func(rs []deviceResult) (above, idle float64, reset bool) {
				reset = true
				for _, r := range rs[1:] {
					above = max(above, benchutil.MiB(r.PeakRSS-r.IdleRSS))
					idle = max(idle, benchutil.MiB(r.IdleRSS))
					reset = reset && r.HWMReset
				}
				return above, idle, reset
			}
			sa, si, sr := peak(small)
			ba, bi, br := peak(rs)
			if sr && br {
				fmt.Printf("# rss: idle = device VmRSS after host and store are open; VmHWM is then reset (clear_refs 5), so peak is the transfer's; largest of the runs\n")
			} else {
				fmt.Printf("# could not reset VmHWM (/proc/self/clear_refs): peaks include the device's start-up\n")
			}
			benchutil.Bench("blob_"+ls+"_rss_above_idle_mib", benchutil.Round(sa, 1), "MiB")
			benchutil.Bench("blob_"+lb+"_rss_above_idle_mib", benchutil.Round(ba, 1), "MiB")
			benchutil.Bench("blob_"+ls+"_rss_idle_mib", benchutil.Round(si, 1), "MiB")
			benchutil.Bench("blob_"+lb+"_rss_idle_mib", benchutil.Round(bi, 1), "MiB")
			benchutil.Bench("blob_"+ls+"_transfer_mibps", benchutil.Round(benchutil.MiB(int64(small[0].Bytes))/small[0].Seconds, 1), "MiB/s")
		}
	}
	if rs := big1["stream"]; rs != nil {
		r := rs[0]
		streamMiBps = benchutil.MiB(int64(big)) / r.Seconds
		benchutil.Bench("libp2p_"+lb+"_stream_mibps", benchutil.Round(streamMiBps, 1), "MiB/s")
		benchutil.Bench("libp2p_"+lb+"_stream_cpu_seconds", benchutil.Round(r.DeviceCPU+r.SeedCPU, 2), "s")
		benchutil.Bench("libp2p_"+lb+"_stream_cpu_seconds_device", benchutil.Round(r.DeviceCPU, 2), "s")
		benchutil.Bench("libp2p_"+lb+"_stream_cpu_seconds_seed", benchutil.Round(r.SeedCPU, 2), "s")
	}
	if want("tcp") {
		r := transfers(runs, []string{"tcp"}, seedStore, bigFile, devStore(lb), bigHash, big)["tcp"][0]
		benchutil.Bench("tcp_"+lb+"_mibps", benchutil.Round(benchutil.MiB(int64(big))/r.Seconds, 1), "MiB/s")
		benchutil.Bench("tcp_"+lb+"_cpu_seconds", benchutil.Round(r.DeviceCPU+r.SeedCPU, 2), "s")
	}
	if want("blob") && want("stream") {
		pairedRatios("blob_"+lb, big1["blob"], "stream_"+lb, big1["stream"])
		benchutil.Bench("blob_"+lb+"_transfer_ratio_vs_libp2p", benchutil.Round(blobMiBps/streamMiBps, 3), "ratio")
	}
	if rs := big1[againstMode]; rs != nil {
		pairedRatios("blob_"+lb, big1["blob"], againstMode+"_"+lb, rs)
		benchutil.Bench("blob_"+lb+"_transfer_ratio_vs_against", benchutil.Round(blobMiBps/(benchutil.MiB(int64(big))/rs[0].Seconds), 3), "ratio")
	}
}
