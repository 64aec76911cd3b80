//go:build cgo

package cmd

import (
	"bufio"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/seednode/client"
)

// TestServeLocalAPI: `seedfleet serve` answers the local API on api.sock in
// the home (mode 0600) while it runs, a second serve refuses to take the
// socket over, and the socket is gone when serve stops.
func TestServeLocalAPI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	home := filepath.Join(t.TempDir(), "laptop")
	if _, errOut, code := run(t, ctx, "agent", "init", "--home", home, "--name", "laptop"); code != 0 {
		t.Fatalf("agent init: %s", errOut)
	}
	h, err := client.Open(home)
	if err != nil {
		t.Fatal(err)
	}
	a, err := h.Agent()
	h.Close()
	if err != nil {
		t.Fatal(err)
	}

	root := newRoot()
	pr, pw := io.Pipe()
	var errOut strings.Builder
	root.SetOut(pw)
	root.SetErr(&errOut)
	root.SetArgs([]string{"serve", "agent", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-rendezvous", "--home", home})
	serveCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		_ = root.ExecuteContext(serveCtx)
		pw.Close()
		close(done)
	}()
	defer func() { stop(); <-done }()
	sock := ""
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "local API on "); ok {
			sock = p
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if sock != filepath.Join(home, "api.sock") {
		t.Fatalf("serve printed the socket %q (%s)", sock, errOut.String())
	}
	if fi, err := os.Lstat(sock); err != nil || fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v", fi, err)
	}

	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	req, _ := http.NewRequest(http.MethodPut, "http://localhost/v1/vaults/agent/docs/profile?path=name", strings.NewReader(`"Ada"`))
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %v %v", resp, err)
	}
	resp, err := hc.Get("http://localhost/v1/vaults/agent/docs/profile")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(body)) != `{"name":"Ada"}` {
		t.Fatalf("GET: %s", body)
	}

	other := newDeviceHome(t)
	_, otherErr, code := run(t, ctx, "serve", a.Namespace.String(), "--listen", "/ip4/127.0.0.1/tcp/0", "--no-rendezvous",
		"--api-socket", sock, "--home", other)
	if code != 1 || !strings.Contains(otherErr, "live process answers") {
		t.Fatalf("a second serve on the socket: exit %d %s", code, otherErr)
	}

	stop()
	<-done
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the socket after serve stopped: %v", err)
	}
	out, errText, code := run(t, ctx, "state", "get", "agent", "profile", "name", "--home", home)
	if code != 0 || strings.TrimSpace(out) != `"Ada"` {
		t.Fatalf("state get after serve: %q %s", out, errText)
	}
}
