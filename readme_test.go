package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/internal/p2ptest"
)

// TestReadmeWalkthrough runs the README's walk-through, as pasted by a
// newcomer, against a freshly built binary: if the README stops being true,
// this fails. The only edits: the prebuilt binary instead of `go build`, and
// free ports instead of the default ones so a seed already running on this
// machine does not interfere.
func TestReadmeWalkthrough(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		p2ptest.Unavailable(t, "bash not installed")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	script := walkthrough(t, string(readme))
	dir := t.TempDir()
	bin := filepath.Join(dir, "seedfleet-bin")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	port := strconv.Itoa(p2ptest.FreePort(t))
	for old, repl := range map[string]string{
		"go build -o ./seedfleet .": "cp " + bin + " ./seedfleet",
		"--host-vault \"$NS\"": "--host-vault \"$NS\" --listen /ip4/127.0.0.1/tcp/" + port +
			" --listen-quic /ip4/127.0.0.1/udp/0/quic-v1 --listen-ws /ip4/127.0.0.1/tcp/0/ws --admin-listen 127.0.0.1:0",
		"/tcp/7400/p2p": "/tcp/" + port + "/p2p",
	} {
		if !strings.Contains(script, old) {
			t.Fatalf("walk-through no longer contains %q; update this test with the README", old)
		}
		script = strings.ReplaceAll(script, old, repl)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-c", script)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so a seed left in the background by a failing
	// script is ended with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	if err == nil {
		defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }() // the group may be gone already
		err = cmd.Wait()
	}
	if err != nil {
		t.Fatalf("walk-through failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"listening on /ip4/127.0.0.1/tcp/" + port + "/p2p/",
		"sent 2;",                 // the laptop's sync pushed both entries
		"received 2 entries",      // the phone got them
		"notes/tomorrow",          // list shows them
		"buy oat milk",            // get prints the value
		"water the plants",        // the live session delivered the later write
		"the phone has the photo", // a blob value went laptop -> seed -> phone
		"received 3 entries",      // the tablet synced from a doc ticket
		"a private note",          // the paired watch decrypts the laptop's value
		"approved: this device is did:key:",
		"watch   active",        // the device list after pairing
		"the watch was refused", // its sync after revocation fails with a clear error
		"this device was revoked from the agent",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("walk-through output lacks %q:\n%s", want, out.String())
		}
	}
}

func walkthrough(t *testing.T, readme string) string {
	t.Helper()
	_, rest, ok := strings.Cut(readme, "## Walk-through")
	if !ok {
		t.Fatal("README has no walk-through section")
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	if !ok {
		t.Fatal("walk-through has no sh block")
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("walk-through sh block is not closed")
	}
	return block
}
