// Command crash is Seedfleet's crash-and-corruption suite. It builds the
// seedfleet binary, runs a seed and three devices on loopback as separate
// processes, and for N rounds writes (put, put --file, blob add + put
// --file), syncs (one-shot and --live) and kills seed and devices with
// SIGKILL at random points. A ledger keeps every acknowledged write: a put
// that exited 0 (the device holds it) and, once a one-shot sync to the seed
// exits 0 after it, the seed holds it too (the seed makes each turn's
// entries durable before it answers the turn that ends the sync). After
// every round everything restarts and the suite checks, before any device
// pushes anything back, that each device still holds what it acknowledged
// and that a fresh device syncing from the seed gets every entry the seed
// acknowledged, with the right values and byte-identical blobs; then the
// devices sync and a second fresh device must get every entry. Then the
// damage cases (damage.go) damage a stopped seed's data directory and check
// that it refuses to start with a clear error, or quarantines and heals.
//
// It prints "CRASH <figure> <n>" lines: runs (rounds), kills, acknowledged
// (entries), lost (must be 0: the run fails and lists them), repairs,
// damage_failures (must be 0) and findings (faults that lose no
// acknowledged write, each printed as a "# finding:" line).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/seedfleet/seedfleet/hack/benchutil"
)

var (
	rounds   = flag.Int("rounds", 10, "crash rounds")
	seedArg  = flag.Uint64("seed", 0, "random seed (0: from the clock; printed for reproduction)")
	smoke    = flag.Bool("smoke", false, "tiny: 2 short rounds and the damage cases (CI)")
	verbose  = flag.Bool("v", false, "print every kill, command failure and check")
	binArg   = flag.String("bin", "", "use this seedfleet binary instead of building one")
	workDir  = flag.String("workdir", "", "parent of the temp dir (default: the system temp dir); always removed unless -keep")
	keep     = flag.Bool("keep", false, "keep the temp dir (seed data, device homes, logs) for a post-mortem")
	damage   = flag.Bool("damage", true, "run the damage cases after the rounds")
	roundDur = flag.Duration("round", 0, "how long each round's workload runs (default 4s, 2s with -smoke)")
)

// bin is the seedfleet binary every process runs.
var bin string

// stats are the suite's figures.
type stats struct {
	mu       sync.Mutex
	runs     int
	kills    int
	repairs  int
	lost     []string
	failures []string // damage cases whose seed did not do what it must
	findings []string
}

var st stats

func (s *stats) kill()        { s.mu.Lock(); s.kills++; s.mu.Unlock() }
func (s *stats) repair(n int) { s.mu.Lock(); s.repairs += n; s.mu.Unlock() }

// lose records an acknowledged entry that is gone or wrong.
func (s *stats) lose(format string, args ...any) { s.record(&s.lost, "LOST", format, args...) }

// fail records a damage case that went wrong.
func (s *stats) fail(format string, args ...any) { s.record(&s.failures, "FAILED", format, args...) }

// finding records something wrong that is not a lost write.
func (s *stats) finding(format string, args ...any) {
	s.record(&s.findings, "finding", format, args...)
}

// record appends a message to list and prints it with its label.
func (s *stats) record(list *[]string, label, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.mu.Lock()
	*list = append(*list, msg)
	s.mu.Unlock()
	fmt.Printf("# %s: %s\n", label, msg)
}

func vlog(format string, args ...any) {
	if *verbose {
		fmt.Printf("#   "+format+"\n", args...)
	}
}

var (
	cleanupOnce sync.Once
	cleanupFn   = func() {}
)

// die kills our processes, removes the temp dir and exits.
func die(format string, args ...any) {
	cleanupOnce.Do(cleanupFn)
	log.Fatalf("crash: "+format, args...)
}

func main() {
	log.SetFlags(0)
	flag.Parse()
	if *smoke {
		*rounds = min(*rounds, 2)
		if *roundDur == 0 {
			*roundDur = 2 * time.Second
		}
	}
	if *roundDur == 0 {
		*roundDur = 4 * time.Second
	}
	if *seedArg == 0 {
		*seedArg = uint64(time.Now().UnixNano())
	}
	root, err := os.MkdirTemp(*workDir, "seedfleet-crash-")
	if err != nil {
		log.Fatal(err)
	}
	cleanupFn = func() {
		killAll()
		if *keep {
			fmt.Printf("# kept %s\n", root)
			return
		}
		os.RemoveAll(root)
	}
	defer cleanupOnce.Do(cleanupFn)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		cleanupOnce.Do(cleanupFn)
		os.Exit(1)
	}()

	args := fmt.Sprintf("-rounds %d -seed %d -round %s", *rounds, *seedArg, *roundDur)
	if *smoke {
		args += " -smoke"
	}
	fmt.Printf("# crash suite: %s; reproduce with: go run ./hack/crash %s\n", benchutil.Loadavg(), args)
	fmt.Printf("# (the kills land at random points in time, so a rerun meets the same choices, not the same instants)\n")
	start := time.Now()
	if *binArg != "" {
		bin = *binArg
	} else if bin, err = benchutil.BuildSeedfleet(root); err != nil {
		die("%v", err)
	}
	fmt.Printf("# seedfleet binary ready in %.1fs\n", time.Since(start).Seconds())

	c := newCluster(root, *seedArg)
	c.setUp()
	for r := 1; r <= *rounds; r++ {
		t0 := time.Now()
		c.round(r)
		c.verify(r)
		st.runs++
		fmt.Printf("# round %d: %d kills so far, %d acknowledged, %d lost, %.1fs\n",
			r, st.kills, c.ledger.len(), len(st.lost), time.Since(t0).Seconds())
	}
	if *damage {
		c.damageCases()
	}
	c.seed.kill()

	benchutil.Count("CRASH", "runs", st.runs)
	benchutil.Count("CRASH", "kills", st.kills)
	benchutil.Count("CRASH", "acknowledged", c.ledger.len())
	benchutil.Count("CRASH", "lost", len(st.lost))
	benchutil.Count("CRASH", "repairs", st.repairs)
	benchutil.Count("CRASH", "damage_failures", len(st.failures))
	benchutil.Count("CRASH", "findings", len(st.findings))
	fmt.Printf("# repairs: entries the devices had acknowledged and the seed lacked after a crash, brought over by the next sync; blobs the seed fetched again; damaged stores healed\n")
	fmt.Printf("# %.1fs in all; seed %d (go run ./hack/crash %s)\n", time.Since(start).Seconds(), *seedArg, args)
	for _, l := range st.lost {
		fmt.Fprintf(os.Stderr, "lost: %s\n", l)
	}
	for _, f := range st.failures {
		fmt.Fprintf(os.Stderr, "damage case failed: %s\n", f)
	}
	if len(st.lost)+len(st.failures) > 0 {
		die("%d acknowledged writes lost, %d damage cases failed (reproduce: go run ./hack/crash %s -keep)", len(st.lost), len(st.failures), args)
	}
}

// ---- the ledger ----

// entry is an acknowledged write.
type entry struct {
	key, device string
	round       int
	value       string // inline value
	file        string // blob source file ("" for an inline value)
	size        int64
	hash        string // short hash, as put prints it
	seedAcked   bool   // a one-shot sync to the seed exited 0 after the put
	blobChecked bool   // fetched byte-identical from the seed
	unserved    bool   // the seed lacked the blob after recovery (reported once)
}

type ledger struct {
	mu      sync.Mutex
	entries map[string]*entry
	order   []string
}

func (l *ledger) add(e *entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries[e.key] = e
	l.order = append(l.order, e.key)
}

func (l *ledger) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.order)
}

// select returns the entries keep accepts, in write order.
func (l *ledger) pick(keep func(*entry) bool) []*entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*entry
	for _, k := range l.order {
		if e := l.entries[k]; keep(e) {
			out = append(out, e)
		}
	}
	return out
}

func (l *ledger) ackBySeed(keys []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		l.entries[k].seedAcked = true
	}
}

// ---- devices and the cluster ----

type device struct {
	name, home string
	mu         sync.Mutex
	cur        *proc
	pending    []string        // acknowledged here, not yet by the seed
	known      map[string]bool // ledger keys verified present here
	seq        int
}

// track is run's hook: the command now running on this device (the chaos
// monkey's target).
func (d *device) track(p *proc) {
	d.mu.Lock()
	d.cur = p
	d.mu.Unlock()
}

func (d *device) kill() bool {
	d.mu.Lock()
	p := d.cur
	d.mu.Unlock()
	return p.kill()
}

type cluster struct {
	root   string
	rng    *rand.Rand
	rngMu  sync.Mutex
	seed   *seed
	ns     string
	ledger *ledger
	// laptop created the vault; phone writes with a write ticket; tablet
	// only reads, mostly in live sync.
	laptop, phone, tablet *device
	fresh                 int
}

func newCluster(root string, seed uint64) *cluster {
	return &cluster{root: root, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		ledger: &ledger{entries: map[string]*entry{}}}
}

func (c *cluster) intN(n int) int {
	c.rngMu.Lock()
	defer c.rngMu.Unlock()
	return c.rng.IntN(n)
}

// between is a random duration in [lo, hi).
func (c *cluster) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(c.intN(int(hi-lo)))
}

const cmdTimeout = 2 * time.Minute

// cli runs a device-less command (or one whose --home is in args) to its end.
func cli(args ...string) (string, error) {
	return run(cmdTimeout, args[0], nil, args...)
}

func (c *cluster) newDevice(name string) *device {
	return &device{name: name, home: filepath.Join(c.root, name), known: map[string]bool{}}
}

func (c *cluster) setUp() {
	c.laptop, c.phone, c.tablet = c.newDevice("laptop"), c.newDevice("phone"), c.newDevice("tablet")
	if _, err := cli("key", "create", "--home", c.laptop.home); err != nil {
		die("%v", err)
	}
	out, err := cli("vault", "create", "--home", c.laptop.home)
	if err != nil {
		die("%v", err)
	}
	c.ns = strings.TrimSpace(out)
	s, err := newSeed("seed", c.root)
	if err != nil {
		die("%v", err)
	}
	c.seed = s
	if err := os.WriteFile(s.vaultsFile, []byte(c.ns+"\n"), 0o644); err != nil {
		die("%v", err)
	}
	if err := s.start(time.Minute); err != nil {
		die("%v", err)
	}
	t, err := cli("vault", "ticket", "--home", c.laptop.home, c.ns, "--seed", s.Addr(), "--with-write")
	if err != nil {
		die("%v", err)
	}
	ticket := strings.TrimSpace(t[strings.LastIndex(strings.TrimSpace(t), "\n")+1:])
	for _, d := range []*device{c.phone, c.tablet} { // sync refuses a home with no key
		if _, err := cli("key", "create", "--home", d.home); err != nil {
			die("%s: %v", d.name, err)
		}
	}
	if _, err := cli("sync", "--home", c.phone.home, ticket, "-q"); err != nil {
		die("phone: %v", err)
	}
	if _, err := cli("sync", "--home", c.tablet.home, c.ns, s.Addr(), "-q"); err != nil {
		die("tablet: %v", err)
	}
	fmt.Printf("# vault %s on seed %s; devices laptop (created the vault), phone (write ticket), tablet (reads, live)\n", c.ns, s.Addr())
}

var (
	putHashRE = regexp.MustCompile(`hash (\w+)\)`)
	syncRE    = regexp.MustCompile(`received (\d+) entries \((\d+) new\), sent (\d+)`)
)

// round runs the workload for one round while the chaos monkey kills.
func (c *cluster) round(r int) {
	ctx, cancel := context.WithTimeout(context.Background(), *roundDur)
	defer cancel()
	if c.seed.proc() == nil || !c.seed.proc().running() {
		if err := c.seed.start(time.Minute); err != nil {
			die("round %d: %v", r, err)
		}
	}
	var wg sync.WaitGroup
	for _, d := range []*device{c.laptop, c.phone} {
		wg.Add(1)
		go func() { defer wg.Done(); c.writer(ctx, r, d) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); c.live(ctx, c.tablet) }()
	monkeyDone := make(chan struct{})
	go func() { defer close(monkeyDone); c.monkey(ctx, r) }()
	<-ctx.Done()
	<-monkeyDone
	// The round ends with a kill of everything still running.
	for _, d := range []*device{c.laptop, c.phone, c.tablet} {
		if d.kill() {
			st.kill()
			vlog("round %d end: killed %s", r, d.name)
		}
	}
	wg.Wait()
	if c.seed.kill() {
		st.kill()
		vlog("round %d end: killed the seed", r)
	}
}

// monkey SIGKILLs the seed or a device's running command now and then; a
// killed seed comes back after a moment.
func (c *cluster) monkey(ctx context.Context, r int) {
	for ctxSleep(ctx, c.between(150*time.Millisecond, 1200*time.Millisecond)) {
		switch x := c.intN(100); {
		case x < 30:
			if !c.seed.kill() {
				continue
			}
			st.kill()
			vlog("round %d: killed the seed", r)
			if !ctxSleep(ctx, c.between(100*time.Millisecond, 800*time.Millisecond)) {
				return
			}
			if err := c.seed.start(time.Minute); err != nil {
				die("round %d: restart the seed: %v", r, err)
			}
		default:
			d := []*device{c.laptop, c.phone, c.tablet}[x%3]
			if d.kill() {
				st.kill()
				vlog("round %d: killed %s", r, d.name)
			}
		}
	}
}

// writer runs one writing device's workload: puts, blob puts, syncs.
func (c *cluster) writer(ctx context.Context, r int, d *device) {
	for ctx.Err() == nil {
		switch x := c.intN(100); {
		case x < 55:
			c.put(r, d, "")
		case x < 65:
			c.put(r, d, c.blobFile(r, d))
		case x < 75:
			f := c.blobFile(r, d)
			if _, err := run(cmdTimeout, d.name+" blob add", d.track, "blob", "add", "--home", d.home, f); err != nil {
				c.failed(ctx, d, "blob add", err)
				continue
			}
			c.put(r, d, f)
		case x < 92:
			c.sync(ctx, d)
		default:
			p, err := start(d.name+" sync --live", nil, "sync", "--home", d.home, c.ns, c.seed.Addr(), "--live", "-q")
			if err != nil {
				die("%v", err)
			}
			d.track(p)
			ctxSleep(ctx, c.between(300*time.Millisecond, 1500*time.Millisecond))
			p.interrupt(5 * time.Second)
			d.track(nil)
		}
	}
}

// failed reports a device command that failed on its own (not killed by
// us, not during the round's end).
func (c *cluster) failed(ctx context.Context, d *device, what string, err error) {
	if err == errKilled || ctx.Err() != nil {
		return
	}
	st.finding("%s: %s failed without being killed: %v", d.name, what, err)
}

// blobFile writes a new random file of 2 KiB to 1.5 MiB (a blob value).
func (c *cluster) blobFile(r int, d *device) string {
	d.seq++
	name := filepath.Join(c.root, "files", fmt.Sprintf("r%03d-%s-%04d.bin", r, d.name, d.seq))
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		die("%v", err)
	}
	b := make([]byte, 2<<10+c.intN(1536<<10))
	c.rngMu.Lock()
	for i := 0; i < len(b); i += 8 {
		v := c.rng.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	c.rngMu.Unlock()
	if err := os.WriteFile(name, b, 0o644); err != nil {
		die("%v", err)
	}
	return name
}

// put writes one entry (inline, or the file as a blob) and records it if
// the command exited 0.
func (c *cluster) put(r int, d *device, file string) {
	d.seq++
	key := fmt.Sprintf("crash/r%03d/%s/%04d", r, d.name, d.seq)
	e := &entry{key: key, device: d.name, round: r, file: file}
	args := []string{"put", "--home", d.home, c.ns, key}
	if file == "" {
		e.value = fmt.Sprintf("v-%s-%d-%x", d.name, d.seq, c.intN(1<<30))
		e.value += strings.Repeat("x", c.intN(300))
		e.size = int64(len(e.value))
		args = append(args, e.value)
	} else {
		fi, err := os.Stat(file)
		if err != nil {
			die("%v", err)
		}
		e.size = fi.Size()
		args = append(args, "--file", file)
	}
	out, err := run(cmdTimeout, d.name+" put", d.track, args...)
	if err != nil {
		if err != errKilled {
			st.finding("%s: put %s failed without being killed: %v", d.name, key, err)
		}
		return
	}
	m := putHashRE.FindStringSubmatch(out)
	if m == nil {
		die("%s: put printed %q", d.name, out)
	}
	e.hash = m[1]
	c.ledger.add(e)
	d.mu.Lock()
	d.pending = append(d.pending, key)
	d.mu.Unlock()
}

// sync runs a one-shot sync of d with the seed; if it exits 0, every entry
// d acknowledged before it is acknowledged by the seed too. It returns the
// entries sent and whether it succeeded.
func (c *cluster) sync(ctx context.Context, d *device) (sent int, ok bool) {
	d.mu.Lock()
	before := slices.Clone(d.pending)
	d.mu.Unlock()
	out, err := run(cmdTimeout, d.name+" sync", d.track, "sync", "--home", d.home, c.ns, c.seed.Addr(), "-q", "--no-dht", "--no-rendezvous")
	if err != nil {
		vlog("%s: sync: %v", d.name, firstLine(err.Error()))
		return 0, false
	}
	if strings.Contains(out, "the peer refused") {
		st.finding("%s: the seed refused entries: %s", d.name, out)
		return 0, false
	}
	m := syncRE.FindStringSubmatch(out)
	if m == nil {
		die("%s: sync printed %q", d.name, out)
	}
	sent, _ = strconv.Atoi(m[3])
	c.ledger.ackBySeed(before)
	d.mu.Lock()
	d.pending = slices.DeleteFunc(d.pending, func(k string) bool { return slices.Contains(before, k) })
	d.mu.Unlock()
	return sent, true
}

// live keeps a device in live sync with the seed until the round ends;
// after a kill it starts again.
func (c *cluster) live(ctx context.Context, d *device) {
	for ctx.Err() == nil {
		p, err := start(d.name+" sync --live", nil, "sync", "--home", d.home, c.ns, c.seed.Addr(), "--live", "-q")
		if err != nil {
			die("%v", err)
		}
		d.track(p)
		select {
		case <-p.done:
		case <-ctx.Done():
		}
		if p.running() {
			return // the round's end kills it
		}
		d.track(nil)
		ctxSleep(ctx, c.between(50*time.Millisecond, 400*time.Millisecond))
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
