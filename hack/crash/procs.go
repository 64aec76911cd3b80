package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one seedfleet process this driver started. Only processes in
// the registry are ever signalled, by the handle exec gave us (a pidfd on
// Linux, so a reused PID is never hit).
type proc struct {
	name   string
	cmd    *exec.Cmd
	out    syncBuffer // stdout and stderr
	done   chan struct{}
	err    error
	killed bool // SIGKILLed by us while running
	mu     sync.Mutex
}

var (
	procsMu sync.Mutex
	procs   = map[*proc]bool{}
)

// syncBuffer is a bytes.Buffer that the exec copy goroutines and readers share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	// onLine sees each complete line written (may be nil).
	onLine  func(string)
	partial []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Write(p)
	if s.onLine != nil {
		s.partial = append(s.partial, p...)
		for {
			i := bytes.IndexByte(s.partial, '\n')
			if i < 0 {
				break
			}
			s.onLine(string(s.partial[:i]))
			s.partial = s.partial[i+1:]
		}
	}
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs the seedfleet binary with args; onLine (optional) sees every
// line of its output as it comes.
func start(name string, onLine func(string), args ...string) (*proc, error) {
	p := &proc{name: name, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.out.onLine = onLine
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	// Never let a child linger after us, even if we are killed ourselves.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	procsMu.Lock()
	procs[p] = true
	procsMu.Unlock()
	go func() {
		err := p.cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		procsMu.Lock()
		delete(procs, p)
		procsMu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// running reports whether the process has not exited yet.
func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL if the process still runs and waits for it to exit. It
// reports whether the signal hit a running process (a kill to count).
func (p *proc) kill() bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	hit := false
	if p.running() && p.cmd.Process.Signal(syscall.SIGKILL) == nil {
		p.killed, hit = true, true
	}
	p.mu.Unlock()
	<-p.done
	return hit
}

// interrupt asks the process to stop (SIGINT), as Ctrl-C would, and waits
// up to grace before killing it.
func (p *proc) interrupt(grace time.Duration) {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill()
	}
}

// wait waits for the process and returns its error (nil for exit status 0).
func (p *proc) wait() error {
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// wasKilled reports whether we SIGKILLed the process while it ran.
func (p *proc) wasKilled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.killed
}

// killAll kills every process we started that still runs.
func killAll() {
	procsMu.Lock()
	all := make([]*proc, 0, len(procs))
	for p := range procs {
		all = append(all, p)
	}
	procsMu.Unlock()
	for _, p := range all {
		p.kill()
	}
}

// errKilled marks a command that we killed before it finished.
var errKilled = errors.New("killed")

// run runs one command to its end (killing it after timeout) and returns
// its output; err is errKilled if something killed it on purpose.
func run(timeout time.Duration, name string, track func(*proc), args ...string) (string, error) {
	p, err := start(name, nil, args...)
	if err != nil {
		return "", err
	}
	if track != nil {
		track(p)
		defer track(nil)
	}
	t := time.AfterFunc(timeout, func() { p.kill() })
	err = p.wait()
	timedOut := !t.Stop()
	out := p.out.String()
	switch {
	case timedOut:
		return out, fmt.Errorf("%s: no answer in %s: %s", name, timeout, strings.TrimSpace(out))
	case p.wasKilled():
		return out, errKilled
	case err != nil:
		return out, fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(out))
	}
	return out, nil
}

// freePorts picks n free TCP ports and one free UDP port on 127.0.0.1. They
// are free when picked; a seed that finds one taken later gets new ones.
func freePorts(n int) (tcp []int, udp int, err error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, 0, err
		}
		ls = append(ls, l)
		tcp = append(tcp, l.Addr().(*net.TCPAddr).Port)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, 0, err
	}
	defer pc.Close()
	return tcp, pc.LocalAddr().(*net.UDPAddr).Port, nil
}

// seed is one seed process on loopback with fixed ports, so that it comes
// back at the same address after a kill (devices' live syncs reconnect).
type seed struct {
	name       string
	data       string
	vaultsFile string
	extra      []string // more flags, e.g. --host-vault

	mu    sync.Mutex
	p     *proc
	tcp   []int // p2p TCP, WebSocket, admin
	udp   int   // QUIC
	addr  string
	admin string
}

var (
	tcpAddrRE   = regexp.MustCompile(`listening on (/ip4/127\.0\.0\.1/tcp/\d+/p2p/\w+)\s*$`)
	adminAddrRE = regexp.MustCompile(`admin API on (http://127\.0\.0\.1:\d+)`)
)

func newSeed(name, root string, extra ...string) (*seed, error) {
	s := &seed{name: name, data: filepath.Join(root, name), vaultsFile: filepath.Join(root, name+".vaults"), extra: extra}
	if err := os.WriteFile(s.vaultsFile, nil, 0o644); err != nil {
		return nil, err
	}
	return s, s.pickPorts()
}

func (s *seed) pickPorts() error {
	tcp, udp, err := freePorts(3)
	if err != nil {
		return err
	}
	s.tcp, s.udp = tcp, udp
	return nil
}

// errRefused is a seed that exited before it was up: it refused to start.
type errRefused struct{ output string }

func (e *errRefused) Error() string {
	return "the seed exited at start: " + strings.TrimSpace(e.output)
}

// start starts the seed on its data directory and waits until it prints its
// TCP multiaddr and admin address (within timeout). A seed that exits first
// returns *errRefused; taken ports are replaced and the start retried.
func (s *seed) start(timeout time.Duration) error {
	for attempt := 0; ; attempt++ {
		err := s.startOnce(timeout)
		var ref *errRefused
		if attempt < 3 && errors.As(err, &ref) && strings.Contains(ref.output, "address already in use") {
			if err := s.pickPorts(); err != nil {
				return err
			}
			continue
		}
		return err
	}
}

func (s *seed) startOnce(timeout time.Duration) error {
	up := make(chan struct{})
	var addr, admin string
	var once sync.Once
	var mu sync.Mutex
	onLine := func(line string) {
		mu.Lock()
		defer mu.Unlock()
		if m := tcpAddrRE.FindStringSubmatch(line); m != nil {
			addr = m[1]
		}
		if m := adminAddrRE.FindStringSubmatch(line); m != nil {
			admin = m[1]
		}
		if addr != "" && admin != "" {
			once.Do(func() { close(up) })
		}
	}
	args := append([]string{"seednode", "--data", s.data, "--vaults-file", s.vaultsFile,
		"--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", s.tcp[0]),
		"--listen-ws", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/ws", s.tcp[1]),
		"--listen-quic", fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", s.udp),
		"--admin-listen", fmt.Sprintf("127.0.0.1:%d", s.tcp[2]),
	}, s.extra...)
	p, err := start(s.name, onLine, args...)
	if err != nil {
		return err
	}
	select {
	case <-up:
	case <-p.done:
		return &errRefused{output: p.out.String()}
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("%s: not up within %s: %s", s.name, timeout, p.out.String())
	}
	mu.Lock()
	defer mu.Unlock()
	s.mu.Lock()
	s.p, s.addr, s.admin = p, addr, admin
	s.mu.Unlock()
	return nil
}

// kill SIGKILLs the seed; it reports whether it was running.
func (s *seed) kill() bool {
	s.mu.Lock()
	p := s.p
	s.mu.Unlock()
	return p.kill()
}

// proc is the current seed process (nil before the first start).
func (s *seed) proc() *proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p
}

// Addr is the seed's TCP multiaddr with its peer ID.
func (s *seed) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// ctxSleep sleeps for d or until ctx ends; it reports whether ctx is still live.
func ctxSleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
