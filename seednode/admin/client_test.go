package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// scripted answers the i-th request (from 0) with codes[min(i, len-1)].
type scripted struct {
	codes    []int
	attempts atomic.Int32
	mu       sync.Mutex
	bodies   []string // request bodies received
	auth     []string // Authorization headers received
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := int(s.attempts.Add(1)) - 1
	data, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.bodies = append(s.bodies, string(data))
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	s.mu.Unlock()
	code := s.codes[min(i, len(s.codes)-1)]
	switch {
	case code == http.StatusNoContent:
		w.WriteHeader(code)
	case code == http.StatusOK && r.URL.Path == PathStatus:
		writeJSON(w, code, testStatus)
	case code == http.StatusOK && r.URL.Path == PathHostedVaults:
		writeJSON(w, code, HostedVaults{Vaults: []string{nsID(1)}})
	case code == http.StatusOK:
		writeText(w, code, "ok")
	case r.URL.Path == PathReadyz:
		writeText(w, code, "still syncing")
	default:
		writeError(w, code, "scripted failure "+http.StatusText(code))
	}
}

func TestClientRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := []struct {
		name         string
		codes        []int
		call         func(*Client) error
		wantAttempts int
		wantErr      []string // substrings; nil means success
		minElapsed   time.Duration
		check        func(*testing.T, error)
	}{
		{name: "503 twice then 200", codes: []int{503, 503, 200},
			call:         func(c *Client) error { st, err := c.Status(ctx); checkStatus(t, st, err); return err },
			wantAttempts: 3, minElapsed: 300 * time.Millisecond}, // 100 ms + 200 ms
		{name: "500 then 204 on PUT", codes: []int{500, 204},
			call:         func(c *Client) error { return c.SetHostedVaults(ctx, HostedVaults{Vaults: []string{nsID(1)}}) },
			wantAttempts: 2, minElapsed: 100 * time.Millisecond},
		{name: "502 always", codes: []int{502},
			call:         func(c *Client) error { _, err := c.HostedVaults(ctx); return err },
			wantAttempts: 3, wantErr: []string{"GET /v1/hosted-vaults", "502 Bad Gateway", "scripted failure", "after 3 attempts"}},
		{name: "400 not retried", codes: []int{400, 200},
			call:         func(c *Client) error { _, err := c.Status(ctx); return err },
			wantAttempts: 1, wantErr: []string{"GET /status", "400 Bad Request", "scripted failure Bad Request"},
			check: func(t *testing.T, err error) {
				var herr *HTTPError
				if !errors.As(err, &herr) || herr.StatusCode != 400 || herr.Endpoint != PathStatus || herr.Method != "GET" {
					t.Errorf("not an HTTPError for GET /status 400: %#v", err)
				}
				if strings.Contains(err.Error(), "attempts") {
					t.Errorf("a single attempt reported as several: %v", err)
				}
			}},
		{name: "400 on PUT not retried", codes: []int{400},
			call:         func(c *Client) error { return c.SetHostedVaults(ctx, HostedVaults{Vaults: []string{"x"}}) },
			wantAttempts: 1, wantErr: []string{"PUT /v1/hosted-vaults", "400"}},
		{name: "401 not retried", codes: []int{401},
			call:         func(c *Client) error { return c.SetHostedVaults(ctx, HostedVaults{}) },
			wantAttempts: 1, wantErr: []string{"PUT /v1/hosted-vaults", "401 Unauthorized"}},
		{name: "404 not retried", codes: []int{404},
			call:         func(c *Client) error { return c.Healthy(ctx) },
			wantAttempts: 1, wantErr: []string{"GET /healthz", "404"}},
		{name: "readyz 503 is an answer", codes: []int{503, 200},
			call:         func(c *Client) error { return c.Ready(ctx) },
			wantAttempts: 1, wantErr: []string{"GET /readyz", "503", "still syncing"},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, ErrNotReady) {
					t.Errorf("%v is not ErrNotReady", err)
				}
			}},
		{name: "500 on readyz is retried", codes: []int{500, 200},
			call:         func(c *Client) error { return c.Ready(ctx) },
			wantAttempts: 2},
		{name: "ErrNotReady only for readyz", codes: []int{503},
			call:         func(c *Client) error { return c.Healthy(ctx) },
			wantAttempts: 3, wantErr: []string{"GET /healthz", "503"},
			check: func(t *testing.T, err error) {
				if errors.Is(err, ErrNotReady) {
					t.Errorf("a 503 from /healthz matched ErrNotReady")
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := &scripted{codes: tc.codes}
			ts := httptest.NewServer(h)
			defer ts.Close()
			start := time.Now()
			err := tc.call(NewClient(ts.URL, WithToken("tok")))
			elapsed := time.Since(start)
			if got := int(h.attempts.Load()); got != tc.wantAttempts {
				t.Errorf("attempts %d, want %d", got, tc.wantAttempts)
			}
			if elapsed < tc.minElapsed {
				t.Errorf("took %v, want at least %v of backoff", elapsed, tc.minElapsed)
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("error: %v", err)
				}
			} else if err == nil {
				t.Fatalf("no error")
			}
			for _, sub := range tc.wantErr {
				if !strings.Contains(err.Error(), sub) {
					t.Errorf("error %q lacks %q", err, sub)
				}
			}
			if tc.check != nil {
				tc.check(t, err)
			}
			// Retried PUTs resend the whole body and the token.
			h.mu.Lock()
			defer h.mu.Unlock()
			for i := range h.bodies {
				if h.bodies[i] != h.bodies[0] {
					t.Errorf("attempt %d body %q, first %q", i, h.bodies[i], h.bodies[0])
				}
				if strings.HasPrefix(tc.name, "500 then 204") && h.auth[i] != "Bearer tok" {
					t.Errorf("attempt %d Authorization %q", i, h.auth[i])
				}
			}
		})
	}
}

func checkStatus(t *testing.T, st Status, err error) {
	t.Helper()
	if err == nil && (st.PeerID != testStatus.PeerID || len(st.Vaults) != 1 || st.Vaults[0].Namespace != nsID(1)) {
		t.Errorf("status %+v", st)
	}
}

func TestClientRetriesConnectionErrors(t *testing.T) {
	t.Parallel()
	// A server that accepts and drops every connection.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepts atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepts.Add(1)
			c.Close()
		}
	}()
	c := NewClient("http://"+ln.Addr().String(), WithRetry(3, 20*time.Millisecond))
	_, err = c.Status(context.Background())
	ln.Close()
	if err == nil || !strings.Contains(err.Error(), "GET /status") || !strings.Contains(err.Error(), "after 3 attempts") {
		t.Errorf("error %v", err)
	}
	if n := accepts.Load(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}

	// Nothing listening: refused three times, then the error names the endpoint.
	start := time.Now()
	err = c.Healthy(context.Background())
	if err == nil || !strings.Contains(err.Error(), "GET /healthz") || !strings.Contains(err.Error(), "after 3 attempts") {
		t.Errorf("error %v", err)
	}
	if el := time.Since(start); el < 60*time.Millisecond {
		t.Errorf("refused connection not retried with backoff (%v)", el)
	}
}

func TestClientTimeout(t *testing.T) {
	t.Parallel()
	var attempts atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer ts.Close()

	if got := NewClient(ts.URL).cfg.timeout; got != 5*time.Second {
		t.Errorf("default timeout %v", got)
	}
	c := NewClient(ts.URL, WithTimeout(100*time.Millisecond))
	start := time.Now()
	_, err := c.Status(context.Background())
	elapsed := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "GET /status") ||
		!strings.Contains(err.Error(), "no response within 100ms") {
		t.Errorf("error %v", err)
	}
	if elapsed < 100*time.Millisecond || elapsed > time.Second {
		t.Errorf("took %v", elapsed)
	}
	if n := attempts.Load(); n != 1 {
		t.Errorf("%d attempts; a slow server is not retried", n)
	}
}

func TestClientRespectsContext(t *testing.T) {
	t.Parallel()
	h := &scripted{codes: []int{503}}
	ts := httptest.NewServer(h)
	defer ts.Close()
	c := NewClient(ts.URL, WithRetry(5, time.Second))

	// The context ends during the backoff: no waiting for the full second.
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Status(ctx)
	if el := time.Since(start); el > 700*time.Millisecond {
		t.Errorf("took %v after the context ended", el)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "503") {
		t.Errorf("error %v", err)
	}
	if n := h.attempts.Load(); n != 1 {
		t.Errorf("%d attempts", n)
	}

	// A context already done sends nothing.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if err := c.Healthy(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v", err)
	}
	if n := h.attempts.Load(); n != 1 {
		t.Errorf("%d attempts after a canceled call", n)
	}
}

func TestClientResponseLimit(t *testing.T) {
	t.Parallel()
	var attempts atomic.Int32
	size := 0
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		body := `{"vaults":["` + nsID(1) + `"]}`
		if size < 0 { // endless
			_, _ = io.WriteString(w, body)
			chunk := []byte(strings.Repeat(" ", 64<<10))
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			return
		}
		_, _ = io.WriteString(w, body+strings.Repeat(" ", size-len(body)))
	}))
	defer ts.Close()
	// An endless body must end in the size error, well before the timeout.
	c := NewClient(ts.URL, WithTimeout(3*time.Second))
	for _, tc := range []struct {
		size    int
		wantErr bool
	}{{MaxResponseBody, false}, {MaxResponseBody + 1, true}, {3 * MaxResponseBody, true}, {-1, true}} {
		size = tc.size
		attempts.Store(0)
		got, err := c.HostedVaults(context.Background())
		if tc.wantErr {
			if err == nil || !strings.Contains(err.Error(), "exceeds 4194304 bytes") || !strings.Contains(err.Error(), "GET /v1/hosted-vaults") {
				t.Errorf("size %d: error %v", tc.size, err)
			}
		} else if err != nil || len(got.Vaults) != 1 || got.Vaults[0] != nsID(1) {
			t.Errorf("size %d: %v %v", tc.size, got, err)
		}
		if n := attempts.Load(); n != 1 {
			t.Errorf("size %d: %d attempts", tc.size, n)
		}
	}
}

func TestClientBadJSON(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "<html>proxy page</html>")
	}))
	defer ts.Close()
	_, err := NewClient(ts.URL).Status(context.Background())
	if err == nil || !strings.Contains(err.Error(), "GET /status: decoding response") {
		t.Errorf("error %v", err)
	}
}

// The client against the real server: every call, the token, base URL forms.
func TestClientAgainstServer(t *testing.T) {
	t.Parallel()
	src := &fakeSource{status: testStatus}
	s := startServer(t, src, nil, WithToken("tok"))
	ctx := context.Background()
	host := strings.TrimPrefix(s.URL(), "http://")
	for _, base := range []string{s.URL(), s.URL() + "/", host} {
		c := NewClient(base, WithToken("tok"))
		if err := c.Healthy(ctx); err != nil {
			t.Fatalf("%s: Healthy: %v", base, err)
		}
		if err := c.Ready(ctx); err != nil {
			t.Fatalf("%s: Ready: %v", base, err)
		}
		st, err := c.Status(ctx)
		want := testStatus
		want.Ready = true
		gotJSON, _ := json.Marshal(st)
		wantJSON, _ := json.Marshal(want)
		if err != nil || string(gotJSON) != string(wantJSON) {
			t.Fatalf("%s: Status %s, %v; want %s", base, gotJSON, err, wantJSON)
		}
		hv := HostedVaults{Vaults: []string{nsID(3), nsID(4)}, Peers: map[string][]string{nsID(4): {peerAddr(1), peerAddr(2)}}}
		if err := c.SetHostedVaults(ctx, hv); err != nil {
			t.Fatalf("%s: SetHostedVaults: %v", base, err)
		}
		got, err := c.HostedVaults(ctx)
		if err != nil || !reflect.DeepEqual(got, hv) {
			t.Fatalf("%s: HostedVaults %+v, %v; want %+v", base, got, err, hv)
		}
		if err := c.SetHostedVaults(ctx, HostedVaults{}); err != nil {
			t.Fatalf("%s: SetHostedVaults(nil): %v", base, err)
		}
		if got, err := c.HostedVaults(ctx); err != nil || got.Vaults == nil || len(got.Vaults) != 0 || got.Peers != nil {
			t.Fatalf("%s: HostedVaults after clearing: %#v, %v", base, got, err)
		}
	}

	// Wrong or missing token: 401, one attempt, nothing changed.
	before, _ := src.calls()
	for _, c := range []*Client{NewClient(s.URL(), WithToken("nope")), NewClient(s.URL())} {
		err := c.SetHostedVaults(ctx, HostedVaults{Vaults: []string{nsID(5)}})
		var herr *HTTPError
		if !errors.As(err, &herr) || herr.StatusCode != 401 || !strings.Contains(err.Error(), "bearer token") {
			t.Errorf("error %v", err)
		}
	}
	// Bad entries: the server's message reaches the caller.
	for _, tc := range []struct {
		hv      HostedVaults
		wantErr string
	}{
		{HostedVaults{Vaults: []string{nsID(1), nsID(2), "bogus"}}, `vaults[2] = "bogus"`},
		{HostedVaults{Vaults: []string{nsID(1)}, Peers: map[string][]string{nsID(2): {peerAddr(1)}}}, `not in "vaults"`},
	} {
		err := NewClient(s.URL(), WithToken("tok")).SetHostedVaults(ctx, tc.hv)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "400") {
			t.Errorf("error %v, want a 400 with %q", err, tc.wantErr)
		}
	}
	if after, _ := src.calls(); after != before {
		t.Errorf("SetHostedVaults called %d times by refused requests", after-before)
	}
}

// TestClientProfile: the client fetches a runtime profile with the token
// (pprof's gzip format) and is refused one without it.
func TestClientProfile(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "client_profile_test_total"}))
	s := startServer(t, &fakeSource{}, reg, WithToken(testToken))
	ctx := context.Background()
	data, err := NewClient(s.URL(), WithToken(testToken)).Profile(ctx, "heap")
	if err != nil || len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		t.Fatalf("heap profile with the token: %d bytes, %v; want gzip data", len(data), err)
	}
	if _, err := NewClient(s.URL()).Profile(ctx, "heap"); err == nil {
		t.Fatal("a heap profile without the token was served")
	}
	if m, err := NewClient(s.URL()).Metrics(ctx); err != nil || !strings.Contains(string(m), "client_profile_test_total") {
		t.Fatalf("metrics: %d bytes, %v", len(m), err)
	}
}
