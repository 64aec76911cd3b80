package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/seedfleet/seedfleet/hack/benchutil"
)

// procStat is what a child reports on "STAT": its memory as the kernel sees
// it (VmRSS as-is, then the Go heap still live after a forced GC) and the
// figures of its part.
type procStat struct {
	RSS        int64 // VmRSS, read before the GC below
	HWM        int64 // VmHWM
	HeapLive   int64 // bytes of Go heap in use after runtime.GC()
	Goroutines int
	Conns      int
	// relay seed: reservations open (opened − closed, from the relay's metrics)
	Reservations int `json:",omitempty"`
	// DHT: routing table size (seed), smallest of the peers' (dht-peers)
	RoutingTable int `json:",omitempty"`
	// DHT seed: failed announcements (the provider's error counter)
	ProvideErrors float64 `json:",omitempty"`
	CPU           float64
}

func selfStat() procStat {
	s := procStat{RSS: benchutil.ProcStatus("self", "VmRSS"), HWM: benchutil.ProcStatus("self", "VmHWM"), CPU: benchutil.SelfCPU()}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.HeapLive = int64(ms.HeapAlloc)
	s.Goroutines = runtime.NumGoroutine()
	return s
}

// reply prints one protocol line: "<tag> <json>".
func reply(tag string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s %s\n", tag, b)
}

// commands runs handle for each line on stdin until it closes (the parent
// is done, or gone).
func commands(handle func(cmd string, args []string)) {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 {
			handle(f[0], f[1:])
		}
	}
}

// exitWithParent ends this process when stdin closes (for roles that do
// not read commands).
func exitWithParent() {
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
}

type child struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	exited chan struct{}
}

var (
	childrenMu sync.Mutex
	children   = map[int]*child{}
)

// spawn starts this binary with -role and args; its stdout lines arrive on
// c.lines, its stderr is ours.
func spawn(name string, args ...string) *child {
	args = append([]string{"-role", name, "-cpuprofile", *profile}, args...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		die("%v", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		die("%v", err)
	}
	if err := cmd.Start(); err != nil {
		die("start %s: %v", name, err)
	}
	c := &child{name: name, cmd: cmd, stdin: stdin, lines: make(chan string, 1024), exited: make(chan struct{})}
	childrenMu.Lock()
	children[cmd.Process.Pid] = c
	childrenMu.Unlock()
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			default: // nobody reads: drop
			}
		}
		close(c.lines)
		_ = cmd.Wait()
		close(c.exited)
	}()
	return c
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// expect returns the rest of the next line that starts with tag.
func (c *child) expect(tag string, within time.Duration) string {
	t := time.NewTimer(within)
	defer t.Stop()
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				die("%s (pid %d) exited while we waited for %s", c.name, c.pid(), tag)
			}
			if line == tag {
				return ""
			}
			if rest, ok := strings.CutPrefix(line, tag+" "); ok {
				return rest
			}
			fmt.Printf("# %s: %s\n", c.name, line)
		case <-t.C:
			die("%s (pid %d): no %s within %s", c.name, c.pid(), tag, within)
		}
	}
}

func (c *child) send(line string) {
	if _, err := fmt.Fprintln(c.stdin, line); err != nil {
		die("%s: %v", c.name, err)
	}
}

// ask sends a command and decodes the JSON answer tagged tag.
func (c *child) ask(cmd, tag string, within time.Duration, v any) {
	c.send(cmd)
	if err := json.Unmarshal([]byte(c.expect(tag, within)), v); err != nil {
		die("%s: %s: %v", c.name, tag, err)
	}
}

func (c *child) stat() procStat {
	var s procStat
	c.ask("STAT", "STAT", 30*time.Second, &s)
	return s
}

// stop closes the child's stdin and waits for it to exit (killing it after 15 s).
func (c *child) stop() {
	c.stdin.Close()
	select {
	case <-c.exited:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
	childrenMu.Lock()
	delete(children, c.pid())
	childrenMu.Unlock()
}

// killChildren kills every child process still running, by the PID we
// started it with, and reaps them (for up to 5 s).
func killChildren() {
	childrenMu.Lock()
	defer childrenMu.Unlock()
	for _, c := range children {
		_ = c.cmd.Process.Kill()
	}
	deadline := time.After(5 * time.Second)
	for pid, c := range children {
		select {
		case <-c.exited:
		case <-deadline:
		}
		delete(children, pid)
	}
}
