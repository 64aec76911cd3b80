//go:build cgo

package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/seedfleet/seedfleet/hack/benchutil"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/node"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// runSeed is the child process: a seed node hosting -ns on loopback until
// its stdin closes.
func runSeed() {
	defer benchutil.StartProfile(*profile, "seed")()
	ns, err := vault.ParseNamespaceID(*nsArg)
	if err != nil {
		log.Fatal(err)
	}
	n, err := node.New(node.Config{DataDir: *dirArg, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, AdminListen: "off",
		DHT: node.DHTConfig{Mode: config.DHTOff}, HostedVaults: []vault.NamespaceID{ns}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("ADDR %s\n", n.Addrs()[0])
	_, _ = io.Copy(io.Discard, os.Stdin) // serve until the parent closes stdin
	if err := n.Close(); err != nil {
		log.Fatal(err)
	}
}

// seedProc is the seed child process.
type seedProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
}

func startSeed(dir string, ns vault.NamespaceID) *seedProc {
	cmd := exec.Command(os.Args[0], "-role", "seed", "-dir", dir, "-ns", ns.String(), "-cpuprofile", *profile)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		log.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ADDR ") {
		log.Fatalf("the seed did not start: %q %v", line, err)
	}
	return &seedProc{cmd: cmd, stdin: stdin, addr: strings.TrimSpace(strings.TrimPrefix(line, "ADDR "))}
}

// cpu is the seed process's CPU-seconds so far.
func (s *seedProc) cpu() float64 { return benchutil.ProcCPU(s.cmd.Process.Pid) }

func (s *seedProc) stop() {
	s.stdin.Close()
	if err := s.cmd.Wait(); err != nil {
		log.Printf("seed: %v", err)
	}
}

// agent is an agent's devices (homes in dir) and its private vault.
type agent struct {
	homes []*client.Home
	ns    vault.NamespaceID
}

// newAgent makes an agent on a first home and approves n-1 more homes as
// its devices; they still have to sync the vault (syncAll) before they
// can read it.
func newAgent(dir string, n int) *agent {
	a := &agent{}
	for i := range n {
		h, err := client.Open(filepath.Join(dir, fmt.Sprintf("device-%d", i)))
		if err != nil {
			log.Fatal(err)
		}
		a.homes = append(a.homes, h)
	}
	info, err := a.homes[0].InitAgent("device-0")
	if err != nil {
		log.Fatal(err)
	}
	a.ns = info.Namespace
	for i, h := range a.homes[1:] {
		name := fmt.Sprintf("device-%d", i+1)
		if _, err := a.homes[0].ApproveDevice(name, h.Key.Public().(ed25519.PublicKey)); err != nil {
			log.Fatal(err)
		}
		if err := h.JoinAgent(info.DID, info.Namespace, name, nil); err != nil {
			log.Fatal(err)
		}
	}
	return a
}

// syncAll syncs the first device with the seed, then every other one.
func (a *agent) syncAll(seed string) {
	for _, h := range a.homes {
		syncOnce(h, a.ns, seed)
	}
}

func syncOnce(h *client.Home, ns vault.NamespaceID, seed string) vault.SyncStats {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st, err := h.Sync(ctx, ns, seed, client.SyncOptions{})
	if err != nil {
		log.Fatalf("sync: %v", err)
	}
	return st
}

func (a *agent) close() {
	for _, h := range a.homes {
		h.Close()
	}
}
