//go:build cgo

// Command state measures agent state (seednode/state) end to end: a real
// seed node in a child process on loopback, real device homes with Pebble
// in a temporary directory, and prints BENCH <name> <value> <unit> lines:
// live propagation between 8 devices editing one document, opening a
// document built from 100,000 changes, what that document takes in the
// vault next to Automerge's own save(), and the bytes and round trips of
// bringing one changed document of 1,000 over. Targets are printed as #
// lines next to the figures.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"time"

	"github.com/seedfleet/seedfleet/hack/benchutil"
)

var (
	role    = flag.String("role", "", "internal: seed")
	dirArg  = flag.String("dir", "", "internal: the seed's data directory")
	nsArg   = flag.String("ns", "", "internal: the hosted vault")
	smoke   = flag.Bool("smoke", false, "tiny sizes: checks the driver works (CI)")
	workDir = flag.String("workdir", "", "where homes and the seed's data go (default: a temp dir, removed afterwards)")
	only    = flag.String("only", "", "comma-separated parts to run: live,open,docs (default all)")
	verbose = flag.Bool("v", false, "print the live part's latencies second by second on stderr")
	profile = flag.String("cpuprofile", "", "write CPU profiles of the seed and the devices' process to this prefix")

	duration  = flag.Duration("duration", 2*time.Minute, "live: how long the devices write")
	devices   = flag.Int("devices", 8, "live: devices editing the document")
	rate      = flag.Float64("rate", 6, "live: changes per second each device makes")
	snapEvery = flag.Int("snapshotevery", 0, "live: each device's changes between its snapshots (0: the default, state.DefaultSnapshotEvery varied as a device varies it; negative: none)")
	changes   = flag.Int("changes", 100_000, "open: changes the document is built from")
	docs      = flag.Int("docs", 1000, "docs: documents of the agent")
)

func main() {
	log.SetFlags(0)
	flag.Parse()
	if *role == "seed" {
		runSeed()
		return
	}
	if *smoke {
		setDefault("duration", "3s")
		setDefault("changes", "1000")
		setDefault("docs", "100")
	}
	root := *workDir
	if root == "" {
		d, err := os.MkdirTemp("", "seedfleet-state-bench-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(d)
		root = d
	}
	want := benchutil.Parts(*only)
	fmt.Printf("# agent state benchmark: GOMAXPROCS=%d, %s, load %s\n", runtime.GOMAXPROCS(0), runtime.Version(), benchutil.Loadavg())
	if want("live") {
		benchLive(root)
	}
	if want("open") {
		benchOpen(root)
	}
	if want("docs") {
		benchDocs(root)
	}
}

// setDefault sets flag name to v unless the command line set it.
func setDefault(name, v string) {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	if !set {
		if err := flag.Set(name, v); err != nil {
			log.Fatal(err)
		}
	}
}

// progress prints a # line on stderr (long steps show they are alive).
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "# "+format+"\n", args...)
}
