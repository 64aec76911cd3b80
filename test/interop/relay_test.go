package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/internal/p2ptest"
	"github.com/seedfleet/seedfleet/seednode/admin"
)

// jsResult is one line of js/relay-client.mjs's output.
type jsResult struct {
	Transport string `json:"transport"`
	Reserved  bool   `json:"reserved"`
	Error     string `json:"error"`
	SeedAgent string `json:"seedAgent"`
	Limited   bool   `json:"limited"`
	PingMs    int    `json:"pingMs"`
	Echo      bool   `json:"echo"`
}

// TestJSLibp2pRelay: js-libp2p reserves on a public seed over TCP and
// WebSocket, is dialed through the circuit by another js-libp2p node, and
// answers ping and a 64 KiB echo on the relayed (limited) connection; it
// sees the seed's user agent; a seed in agents mode refuses an unknown key
// with PERMISSION_DENIED.
func TestJSLibp2pRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the seed and installs js-libp2p from npm")
	}
	nodeBin := requireTool(t, "node")
	modules := npmModules(t)
	seedBin := buildSeed(t)

	public := startSeed(t, seedBin, "Public")
	results := runJSClient(t, nodeBin, modules, public.addrs, 10*time.Second)
	for _, transport := range []string{"tcp", "ws"} {
		r, ok := results[transport]
		if !ok {
			t.Fatalf("%s: the client printed no result", transport)
		}
		if !r.Reserved || r.Error != "" {
			t.Fatalf("%s: public seed: reserved=%v error=%q", transport, r.Reserved, r.Error)
		}
		if !r.Limited {
			t.Errorf("%s: the relayed connection is not limited: the client dialed the listener directly", transport)
		}
		if !r.Echo {
			t.Errorf("%s: 64 KiB echo over the circuit came back different", transport)
		}
		if !strings.HasPrefix(r.SeedAgent, "seedfleet/") || len(r.SeedAgent) == len("seedfleet/") {
			t.Errorf("%s: identify reports the seed's agent version as %q, want seedfleet/<version>", transport, r.SeedAgent)
		}
	}

	agents := startSeed(t, seedBin, "Agents")
	refused := runJSClient(t, nodeBin, modules, map[string]string{"tcp": agents.addrs["tcp"]}, 4*time.Second)
	r := refused["tcp"]
	if r.Reserved {
		t.Fatalf("agents seed: an unknown key reserved a slot")
	}
	if !strings.Contains(r.Error, "PERMISSION_DENIED") {
		t.Fatalf("agents seed: refusal reached the client as %q, want status PERMISSION_DENIED", r.Error)
	}
}

// requireTool finds a program on PATH: a skip when it is missing, a failure
// under CI=true.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	p2ptest.Unavailable(t, name+" is not installed (CI must install it: see .ci/run)")
	return ""
}

// npmModules installs js/package-lock.json once per lock file into the user's
// cache and returns the node_modules directory.
func npmModules(t *testing.T) string {
	t.Helper()
	npm := requireTool(t, "npm")
	lock, err := os.ReadFile(filepath.Join("js", "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("no cache directory for npm packages: %v", err)
	}
	dir := filepath.Join(cache, "seedfleet", "npm-"+hex.EncodeToString(sum[:8]))
	modules := filepath.Join(dir, "node_modules")
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return modules
	}
	// Install into a fresh directory and rename it into place, so an
	// interrupted install is never taken for a complete one.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".npm-install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join("js", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tmp, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("installing js-libp2p and Automerge from npm into %s (once per lock file)", dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, os.ErrExist) {
		// Another run may have finished first: its copy is as good as ours.
		if _, statErr := os.Stat(filepath.Join(dir, ".complete")); statErr != nil {
			t.Fatalf("moving the npm install into place: %v", err)
		}
	}
	return modules
}

// buildSeed builds the seedfleet binary from this tree.
func buildSeed(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "seedfleet")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/seedfleet/seedfleet")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type seedProc struct {
	peerID string
	addrs  map[string]string // transport → full multiaddr with /p2p/
}

// startSeed runs `seedfleet seednode` on loopback with the relay in mode and
// waits for its admin API to report it ready.
func startSeed(t *testing.T, bin, mode string) seedProc {
	t.Helper()
	dir := t.TempDir()
	tcpPort, wsPort, adminPort := p2ptest.FreePort(t), p2ptest.FreePort(t), p2ptest.FreePort(t)
	cfg := fmt.Sprintf(`dataDir: %s
listen:
  tcp: [/ip4/127.0.0.1/tcp/%d]
  quic: []
  webSocket: [/ip4/127.0.0.1/tcp/%d/ws]
dht:
  mode: Off
relay:
  mode: %s
admin:
  listen: 127.0.0.1:%d
`, filepath.Join(dir, "data"), tcpPort, wsPort, mode, adminPort)
	cfgFile := filepath.Join(dir, "seed.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cmd := exec.Command(bin, "seednode", "--config", cfgFile)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("seed (%s) log:\n%s", mode, log.String())
		}
	})

	client := admin.NewClient("http://127.0.0.1:" + strconv.Itoa(adminPort))
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := client.Status(ctx)
		cancel()
		if err == nil && st.Ready {
			p := seedProc{peerID: st.PeerID, addrs: map[string]string{}}
			for _, a := range st.Addrs {
				if strings.Contains(a, "/ws/") {
					p.addrs["ws"] = a
				} else if strings.Contains(a, "/tcp/") {
					p.addrs["tcp"] = a
				}
			}
			if p.addrs["tcp"] == "" || p.addrs["ws"] == "" {
				t.Fatalf("seed reports addresses %v: want one TCP and one WebSocket", st.Addrs)
			}
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("seed not ready after 30 s: %v\n%s", err, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runJSClient runs js/relay-client.mjs against addrs and returns its
// results by transport.
func runJSClient(t *testing.T, nodeBin, modules string, addrs map[string]string, reserveTimeout time.Duration) map[string]jsResult {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("js", "relay-client.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	// Node resolves packages from the script's directory upwards; the
	// modules live in the cache, so run a copy of the script beside them.
	src, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(filepath.Dir(modules), "relay-client-"+strconv.Itoa(os.Getpid())+".mjs")
	if err := os.WriteFile(run, src, 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(run)

	env, _ := json.Marshal(addrs)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Node 20 has a WebSocket global only behind this flag (22 has it always);
	// js-libp2p's WebSocket transport uses it.
	cmd := exec.CommandContext(ctx, nodeBin, "--experimental-websocket", "--no-warnings", run)
	cmd.Env = append(os.Environ(), "SEED_ADDRS="+string(env),
		"RESERVE_TIMEOUT_MS="+strconv.FormatInt(reserveTimeout.Milliseconds(), 10))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node relay-client.mjs: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	results := map[string]jsResult{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r jsResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("client output %q: %v", sc.Text(), err)
		}
		t.Logf("js-libp2p over %s: %s", r.Transport, sc.Text())
		results[r.Transport] = r
	}
	return results
}
