//go:build cgo

package localapi

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/internal/agenttest"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

func openHome(t testing.TB) *client.Home {
	t.Helper()
	return agenttest.Home(t)
}

func agentDevices(t testing.TB, names ...string) ([]*client.Home, vault.NamespaceID) {
	t.Helper()
	return agenttest.Devices(t, names...)
}

// startSeed runs a seed hosting ns on loopback and returns its address.
func startSeed(t *testing.T, ns vault.NamespaceID) string {
	t.Helper()
	n, _ := agenttest.Seed(t, ns)
	return n.Addrs()[0].String()
}

func syncWith(t *testing.T, h *client.Home, ns vault.NamespaceID, seed string) {
	t.Helper()
	agenttest.Sync(t, h, ns, seed)
}

// socketDir is a private directory with a short path (a socket path has
// at most about 100 bytes).
func socketDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "api")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// api is a running API and a client for it.
type api struct {
	t    testing.TB
	srv  *Server
	http *http.Client
}

func startAPI(t testing.TB, h *client.Home, o Options) *api {
	t.Helper()
	srv, err := Start(h, filepath.Join(socketDir(t), "api.sock"), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &api{t: t, srv: srv, http: unixClient(srv.Path())}
}

func unixClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
}

// do sends a request and returns the status, the body and the headers.
func (a *api) do(method, target, contentType, body string) (int, string, http.Header) {
	a.t.Helper()
	req, err := http.NewRequest(method, "http://localhost"+target, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return resp.StatusCode, strings.TrimSpace(string(raw)), resp.Header
}

// ok sends a request that must succeed and returns its body.
func (a *api) ok(method, target, contentType, body string) string {
	a.t.Helper()
	status, out, _ := a.do(method, target, contentType, body)
	if status != http.StatusOK {
		a.t.Fatalf("%s %s %s: %d %s", method, target, body, status, out)
	}
	return out
}

// sse reads server-sent events from a watch stream.
type sse struct {
	resp   *http.Response
	events chan [2]string // name, data
}

func (a *api) watch(ctx context.Context, target string) *sse {
	a.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost"+target, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		a.t.Fatalf("watch %s: %d %s", target, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sse{resp: resp, events: make(chan [2]string, 64)}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		var name, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			case strings.HasPrefix(line, ":"):
				s.events <- [2]string{"heartbeat", ""}
			case line == "" && name != "":
				s.events <- [2]string{name, data}
				name, data = "", ""
			}
		}
	}()
	a.t.Cleanup(func() { resp.Body.Close() })
	return s
}

// next returns the next event other than a heartbeat.
func (s *sse) next(t *testing.T) (string, watchEvent) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatal("the watch stream ended")
			}
			if ev[0] == "heartbeat" {
				continue
			}
			var we watchEvent
			if ev[0] == "state" {
				if err := json.Unmarshal([]byte(ev[1]), &we); err != nil {
					t.Fatalf("event data %q: %v", ev[1], err)
				}
			}
			return ev[0], we
		case <-deadline:
			t.Fatal("no event within a minute")
		}
	}
}

// valueUntil reads state events until one carries want.
func (s *sse) valueUntil(t *testing.T, want string) watchEvent {
	t.Helper()
	for {
		name, ev := s.next(t)
		if name == "state" && string(ev.Value) == want {
			return ev
		}
	}
}

// waitUntil polls cond for up to a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
