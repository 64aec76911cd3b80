package admin

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// fakeSource is a Source whose answers the tests set.
type fakeSource struct {
	mu         sync.Mutex
	status     Status
	statusErr  error
	readyErr   error
	hosted     HostedVaults
	setErr     error
	setCalls   int
	statusHook func(ctx context.Context) // called at the start of Status
}

func (f *fakeSource) Status(ctx context.Context) (Status, error) {
	f.mu.Lock()
	hook := f.statusHook
	f.mu.Unlock()
	if hook != nil {
		hook(ctx)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status, f.statusErr
}

func (f *fakeSource) Ready(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readyErr
}

func (f *fakeSource) HostedVaults() HostedVaults {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hosted
}

func (f *fakeSource) SetHostedVaults(_ context.Context, hv HostedVaults) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setCalls++
	if f.setErr != nil {
		return f.setErr
	}
	f.hosted = hv
	return nil
}

func (f *fakeSource) setReady(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.readyErr = err
}

func (f *fakeSource) calls() (int, HostedVaults) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.setCalls, f.hosted
}

// nsID returns a valid canonical namespace ID.
func nsID(b byte) string { return vault.NamespaceID{b, 0xa5, b}.String() }

// peerID returns a valid peer ID derived from b.
func peerID(b byte) string {
	id, err := identity.PeerID(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize)).Public().(ed25519.PublicKey))
	if err != nil {
		panic(err)
	}
	return id.String()
}

// peerAddr returns a canonical replica peer multiaddr for peerID(b).
func peerAddr(b byte) string { return fmt.Sprintf("/ip4/127.0.0.%d/tcp/7400/p2p/%s", b, peerID(b)) }

const testToken = "test-token"

// startServer runs a real Server on 127.0.0.1:0 until the test ends.
func startServer(t *testing.T, src Source, reg *prometheus.Registry, opts ...Option) *Server {
	t.Helper()
	opts = append([]Option{WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	s, err := New("127.0.0.1:0", src, reg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

type response struct {
	code   int
	header http.Header
	body   string
}

func send(t *testing.T, method, url, body string, header map[string]string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(data)}
}

var testStatus = Status{
	PeerID:    "12D3KooWTest",
	Addrs:     []string{"/ip4/127.0.0.1/tcp/7400/p2p/12D3KooWTest"},
	Version:   "v0.1.0",
	StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	DHT:       DHTStatus{Mode: "server", RoutingTableSize: 17, ReprovideLagSeconds: 1.5},
	Relay:     RelayStatus{Mode: "agents", AllowedPeers: 3},
	Vaults: []VaultStatus{{
		Namespace: nsID(1), Entries: 10, Bytes: 2048, BlobsComplete: 2, BlobsMissing: 1,
		LastSync: time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC), Peers: 2, Fingerprint: "00ff",
		Replicas: []ReplicaStatus{
			{Peer: "12D3KooWOther", LastSync: time.Date(2026, 1, 2, 3, 6, 0, 0, time.UTC)},
			{Peer: "12D3KooWDown", LastError: "dial backoff"},
		},
	}},
}

func TestEndpoints(t *testing.T) {
	t.Parallel()
	jsonCT, textCT := "application/json", "text/plain; charset=utf-8"
	cases := []struct {
		name       string
		setup      func(*fakeSource)
		method     string
		path       string
		wantCode   int
		wantCT     string
		wantBody   string // exact, if set
		wantSubstr []string
		wantAllow  string
	}{
		{name: "healthz", method: "GET", path: PathHealthz, wantCode: 200, wantCT: textCT, wantBody: "ok\n"},
		{name: "healthz while not ready", setup: func(f *fakeSource) { f.readyErr = errors.New("syncing") },
			method: "GET", path: PathHealthz, wantCode: 200, wantBody: "ok\n"},
		{name: "healthz HEAD", method: "HEAD", path: PathHealthz, wantCode: 200, wantCT: textCT, wantBody: ""},
		{name: "readyz ready", method: "GET", path: PathReadyz, wantCode: 200, wantCT: textCT, wantBody: "ready\n"},
		{name: "readyz not ready", setup: func(f *fakeSource) { f.readyErr = errors.New("loading 3 vaults") },
			method: "GET", path: PathReadyz, wantCode: 503, wantCT: textCT, wantBody: "loading 3 vaults\n"},
		{name: "readyz empty reason", setup: func(f *fakeSource) { f.readyErr = errors.New("") },
			method: "GET", path: PathReadyz, wantCode: 503, wantBody: "not ready\n"},
		{name: "status", method: "GET", path: PathStatus, wantCode: 200, wantCT: jsonCT,
			wantSubstr: []string{`"peerID":"12D3KooWTest"`, `"ready":true`, `"routingTableSize":17`, `"blobsComplete":2`, `"lastSync":"2026-01-02T03:05:00Z"`,
				`"fingerprint":"00ff"`, `"replicas":[{"peer":"12D3KooWOther","lastSync":"2026-01-02T03:06:00Z"},{"peer":"12D3KooWDown","lastError":"dial backoff"}]`}},
		{name: "status error", setup: func(f *fakeSource) { f.statusErr = errors.New("store closed") },
			method: "GET", path: PathStatus, wantCode: 500, wantCT: jsonCT, wantBody: `{"error":"status: store closed"}` + "\n"},
		{name: "status unencodable", setup: func(f *fakeSource) { f.status.DHT.ReprovideLagSeconds = jsonNaN() },
			method: "GET", path: PathStatus, wantCode: 500, wantCT: jsonCT, wantSubstr: []string{`"error":"encoding response`}},
		{name: "hosted vaults", setup: func(f *fakeSource) { f.hosted = HostedVaults{Vaults: []string{nsID(1), nsID(2)}} },
			method: "GET", path: PathHostedVaults, wantCode: 200, wantCT: jsonCT,
			wantBody: `{"vaults":["` + nsID(1) + `","` + nsID(2) + `"]}` + "\n"},
		{name: "hosted vaults with peers", setup: func(f *fakeSource) {
			f.hosted = HostedVaults{Vaults: []string{nsID(1)}, Peers: map[string][]string{nsID(1): {peerAddr(1)}}}
		},
			method: "GET", path: PathHostedVaults, wantCode: 200, wantCT: jsonCT,
			wantBody: `{"vaults":["` + nsID(1) + `"],"peers":{"` + nsID(1) + `":["` + peerAddr(1) + `"]}}` + "\n"},
		{name: "hosted vaults empty", method: "GET", path: PathHostedVaults, wantCode: 200, wantBody: `{"vaults":[]}` + "\n"},
		{name: "POST healthz", method: "POST", path: PathHealthz, wantCode: 405, wantAllow: "GET, HEAD"},
		{name: "PUT readyz", method: "PUT", path: PathReadyz, wantCode: 405, wantAllow: "GET, HEAD"},
		{name: "DELETE status", method: "DELETE", path: PathStatus, wantCode: 405, wantAllow: "GET, HEAD"},
		{name: "POST metrics", method: "POST", path: PathMetrics, wantCode: 405, wantAllow: "GET, HEAD"},
		{name: "POST hosted vaults", method: "POST", path: PathHostedVaults, wantCode: 405, wantAllow: "GET, HEAD, PUT"},
		{name: "DELETE hosted vaults", method: "DELETE", path: PathHostedVaults, wantCode: 405, wantAllow: "GET, HEAD, PUT"},
		{name: "unknown path", method: "GET", path: "/nope", wantCode: 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := &fakeSource{status: testStatus}
			if tc.setup != nil {
				tc.setup(src)
			}
			s := startServer(t, src, prometheus.NewRegistry())
			r := send(t, tc.method, s.URL()+tc.path, "", nil)
			if r.code != tc.wantCode {
				t.Fatalf("code %d, want %d (body %q)", r.code, tc.wantCode, r.body)
			}
			if tc.wantCT != "" && r.header.Get("Content-Type") != tc.wantCT {
				t.Errorf("Content-Type %q, want %q", r.header.Get("Content-Type"), tc.wantCT)
			}
			if tc.wantBody != "" || tc.method == "HEAD" {
				if r.body != tc.wantBody {
					t.Errorf("body %q, want %q", r.body, tc.wantBody)
				}
			}
			for _, sub := range tc.wantSubstr {
				if !strings.Contains(r.body, sub) {
					t.Errorf("body %s lacks %s", r.body, sub)
				}
			}
			if tc.wantAllow != "" && r.header.Get("Allow") != tc.wantAllow {
				t.Errorf("Allow %q, want %q", r.header.Get("Allow"), tc.wantAllow)
			}
			if n, _ := src.calls(); n != 0 {
				t.Errorf("SetHostedVaults called %d times", n)
			}
		})
	}
}

func jsonNaN() float64 {
	var zero float64
	return zero / zero
}

func TestStatusJSON(t *testing.T) {
	t.Parallel()
	src := &fakeSource{status: testStatus}
	src.status.Ready, src.status.ReadyReason = true, "stale" // the server overrides these from Ready
	src.readyErr = errors.New("DHT bootstrapping")
	s := startServer(t, src, nil)
	r := send(t, "GET", s.URL()+PathStatus, "", nil)
	if r.code != 200 {
		t.Fatalf("code %d: %s", r.code, r.body)
	}
	var got Status
	if err := json.Unmarshal([]byte(r.body), &got); err != nil {
		t.Fatal(err)
	}
	want := testStatus
	want.Ready, want.ReadyReason = false, "DHT bootstrapping"
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("status\n got %s\nwant %s", gotJSON, wantJSON)
	}
	// Every key is lowerCamelCase, zero times are left out.
	var raw map[string]any
	_ = json.Unmarshal([]byte(r.body), &raw)
	for _, k := range []string{"peerID", "addrs", "version", "startedAt", "ready", "readyReason", "dht", "relay", "vaults"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("key %q missing in %s", k, r.body)
		}
	}
	dht := raw["dht"].(map[string]any)
	if _, ok := dht["lastReprovide"]; ok {
		t.Errorf("zero lastReprovide not omitted: %s", r.body)
	}
	if _, ok := dht["reprovideLagSeconds"]; !ok {
		t.Errorf("reprovideLagSeconds missing: %s", r.body)
	}

	// An empty Status leaves out the empty parts but keeps peerID and ready.
	empty, _ := json.Marshal(Status{})
	if string(empty) != `{"peerID":"","ready":false}` {
		t.Errorf("empty status: %s", empty)
	}
}

func TestReadinessFlips(t *testing.T) {
	t.Parallel()
	src := &fakeSource{status: testStatus, readyErr: errors.New("opening store")}
	s := startServer(t, src, nil)
	c := NewClient(s.URL())
	ctx := context.Background()
	steps := []struct {
		readyErr   error
		wantReason string // "" means ready
	}{
		{errors.New("opening store"), "opening store"},
		{nil, ""},
		{errors.New("draining for shutdown"), "draining for shutdown"},
		{nil, ""},
	}
	for i, st := range steps {
		src.setReady(st.readyErr)
		err := c.Ready(ctx)
		r := send(t, "GET", s.URL()+PathReadyz, "", nil)
		status, serr := c.Status(ctx)
		if serr != nil {
			t.Fatalf("step %d: Status: %v", i, serr)
		}
		if st.wantReason == "" {
			if err != nil || r.code != 200 || !status.Ready || status.ReadyReason != "" {
				t.Errorf("step %d: want ready: err %v, code %d, status %v %q", i, err, r.code, status.Ready, status.ReadyReason)
			}
			continue
		}
		var herr *HTTPError
		if !errors.Is(err, ErrNotReady) || !errors.As(err, &herr) || herr.Message != st.wantReason ||
			!strings.Contains(err.Error(), st.wantReason) || !strings.Contains(err.Error(), "503") {
			t.Errorf("step %d: Ready error %v, want ErrNotReady with reason %q", i, err, st.wantReason)
		}
		if r.code != 503 || r.body != st.wantReason+"\n" || status.Ready || status.ReadyReason != st.wantReason {
			t.Errorf("step %d: code %d body %q, status %v %q", i, r.code, r.body, status.Ready, status.ReadyReason)
		}
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	mine := prometheus.NewCounter(prometheus.CounterOpts{Name: "seedfleet_admin_test_given_total", Help: "on the given registry"})
	reg.MustRegister(mine)
	mine.Add(7)
	global := prometheus.NewCounter(prometheus.CounterOpts{Name: "seedfleet_admin_test_global_total", Help: "on the global registry"})
	prometheus.DefaultRegisterer.MustRegister(global)
	t.Cleanup(func() { prometheus.DefaultRegisterer.Unregister(global) })

	cases := []struct {
		name    string
		opts    []Option
		want    []string
		notWant []string
	}{
		{name: "registry only", want: []string{"seedfleet_admin_test_given_total 7"},
			notWant: []string{"seedfleet_admin_test_global_total", "go_goroutines", "process_"}},
		{name: "runtime metrics", opts: []Option{WithRuntimeMetrics()},
			want:    []string{"seedfleet_admin_test_given_total 7", "go_goroutines", "process_cpu_seconds_total"},
			notWant: []string{"seedfleet_admin_test_global_total"}},
		// A second server on the same registry: the collectors are already there.
		{name: "runtime metrics again", opts: []Option{WithRuntimeMetrics()},
			want:    []string{"seedfleet_admin_test_given_total 7", "go_goroutines"},
			notWant: []string{"seedfleet_admin_test_global_total"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, &fakeSource{}, reg, tc.opts...)
			r := send(t, "GET", s.URL()+PathMetrics, "", nil)
			if r.code != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
				t.Fatalf("code %d, Content-Type %q", r.code, r.header.Get("Content-Type"))
			}
			for _, w := range tc.want {
				if !strings.Contains(r.body, w) {
					t.Errorf("metrics lack %q", w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(r.body, w) {
					t.Errorf("metrics contain %q", w)
				}
			}
		})
	}
}

func TestPutHostedVaults(t *testing.T) {
	t.Parallel()
	good := []string{nsID(1), nsID(2), nsID(3)}
	list := func(v ...string) string { b, _ := json.Marshal(HostedVaults{Vaults: v}); return string(b) }
	cases := []struct {
		name     string
		body     string
		wantCode int
		wantErr  []string      // substrings of the JSON error message
		want     *HostedVaults // what the Source gets, if not the body as sent
	}{
		{name: "valid", body: list(good...), wantCode: 204},
		{name: "valid empty list", body: `{"vaults": []}`, wantCode: 204},
		{name: "valid, trailing whitespace", body: list(good...) + "\n\n", wantCode: 204},
		{name: "empty body", body: "", wantCode: 400, wantErr: []string{"empty request body"}},
		{name: "bad JSON", body: `{"vaults": [`, wantCode: 400, wantErr: []string{"invalid JSON"}},
		{name: "not an object", body: `["` + nsID(1) + `"]`, wantCode: 400, wantErr: []string{"invalid JSON"}},
		{name: "wrong type", body: `{"vaults": "` + nsID(1) + `"}`, wantCode: 400, wantErr: []string{"invalid JSON", "vaults"}},
		{name: "unknown field", body: `{"vaults": [], "replicas": 3}`, wantCode: 400, wantErr: []string{"unknown field", `"replicas"`}},
		{name: "missing vaults", body: `{}`, wantCode: 400, wantErr: []string{`missing "vaults"`}},
		{name: "null vaults", body: `{"vaults": null}`, wantCode: 400, wantErr: []string{`missing "vaults"`}},
		{name: "trailing data", body: list(good...) + `{"vaults": []}`, wantCode: 400, wantErr: []string{"after the JSON object"}},
		{name: "bad namespace ID at index 2", body: list(nsID(1), nsID(2), "not-a-vault", nsID(4)), wantCode: 400,
			wantErr: []string{"vaults[2]", `"not-a-vault"`, "52 lowercase base32", "got 11 characters"}},
		{name: "bad characters", body: list(strings.Repeat("1", 52)), wantCode: 400,
			wantErr: []string{"vaults[0]", "outside a-z, 2-7"}},
		{name: "too long ID is cut in the message", body: list(nsID(1) + nsID(2)), wantCode: 400,
			wantErr: []string{"vaults[0]", "…", "got 104 characters"}},
		{name: "uppercase", body: list(nsID(1), strings.ToUpper(nsID(2))), wantCode: 400,
			wantErr: []string{"vaults[1]", strings.ToUpper(nsID(2)), "canonical", nsID(2)}},
		{name: "spaces", body: list(" " + nsID(1)), wantCode: 400, wantErr: []string{"vaults[0]", "canonical"}},
		{name: "duplicate", body: list(nsID(1), nsID(2), nsID(1)), wantCode: 400, wantErr: []string{"vaults[2]", "duplicate of vaults[0]"}},
		{name: "too large body", body: `{"vaults": ["` + strings.Repeat("a", MaxRequestBody) + `"]}`, wantCode: 400,
			wantErr: []string{"exceeds 1048576 bytes"}},
		{name: "valid with peers", body: withPeers(map[string][]string{nsID(1): {peerAddr(1), peerAddr(2)}}, good...), wantCode: 204},
		{name: "peers, two addresses of one peer", body: withPeers(map[string][]string{nsID(2): {
			"/ip4/127.0.0.1/tcp/1/p2p/" + peerID(1), "/ip4/127.0.0.1/udp/1/quic-v1/p2p/" + peerID(1)}}, good...), wantCode: 204},
		{name: "peers, canonical form and empty lists dropped", body: withPeers(map[string][]string{
			nsID(1): {"/ip4/127.0.0.1/tcp/0007400/p2p/" + peerID(1)}, nsID(2): {}}, good...), wantCode: 204,
			want: &HostedVaults{Vaults: good, Peers: map[string][]string{nsID(1): {"/ip4/127.0.0.1/tcp/7400/p2p/" + peerID(1)}}}},
		{name: "peers of a vault not hosted", body: withPeers(map[string][]string{nsID(7): {peerAddr(1)}}, good...), wantCode: 400,
			wantErr: []string{`peers["` + nsID(7) + `"]`, `not in "vaults"`}},
		{name: "peer not a multiaddr", body: withPeers(map[string][]string{nsID(1): {peerAddr(1), "seed-1:7400"}}, good...), wantCode: 400,
			wantErr: []string{`peers["` + nsID(1) + `"][1]`, `"seed-1:7400"`, "not a multiaddr"}},
		{name: "peer without p2p", body: withPeers(map[string][]string{nsID(1): {"/ip4/127.0.0.1/tcp/7400"}}, good...), wantCode: 400,
			wantErr: []string{`peers["` + nsID(1) + `"][0]`, "must end in /p2p/<peer ID>"}},
		{name: "peer with only p2p", body: withPeers(map[string][]string{nsID(1): {"/p2p/" + peerID(1)}}, good...), wantCode: 400,
			wantErr: []string{`peers["` + nsID(1) + `"][0]`, "needs an address before /p2p/"}},
		{name: "duplicate peer address", body: withPeers(map[string][]string{nsID(1): {peerAddr(1), peerAddr(2), peerAddr(1)}}, good...), wantCode: 400,
			wantErr: []string{`peers["` + nsID(1) + `"][2]`, "duplicate of", "[0]"}},
		{name: "too many peers", body: withPeers(map[string][]string{nsID(1): manyPeers(MaxPeersPerVault + 1)}, good...), wantCode: 400,
			wantErr: []string{`peers["` + nsID(1) + `"]`, "17 peer addresses", "at most 16"}},
		{name: "most peers allowed", body: withPeers(map[string][]string{nsID(1): manyPeers(MaxPeersPerVault)}, good...), wantCode: 204},
		{name: "valid with options", body: withOptions(map[string]VaultOptions{nsID(1): {MaxEntries: 2, MaxBytes: 1 << 20}, nsID(2): {NoRelay: true}}, good...),
			wantCode: 204},
		{name: "options, all-zero dropped", body: withOptions(map[string]VaultOptions{nsID(1): {}, nsID(2): {NoRelay: true}}, good...), wantCode: 204,
			want: &HostedVaults{Vaults: good, Options: map[string]VaultOptions{nsID(2): {NoRelay: true}}}},
		{name: "options of a vault not hosted", body: withOptions(map[string]VaultOptions{nsID(7): {MaxEntries: 2}}, good...), wantCode: 400,
			wantErr: []string{`options["` + nsID(7) + `"]`, `not in "vaults"`}},
		{name: "options, negative quota", body: `{"vaults": ["` + nsID(1) + `"], "options": {"` + nsID(1) + `": {"maxEntries": -1}}}`, wantCode: 400,
			wantErr: []string{"invalid JSON", "maxEntries"}},
		{name: "options, unknown option", body: `{"vaults": ["` + nsID(1) + `"], "options": {"` + nsID(1) + `": {"relay": "none"}}}`, wantCode: 400,
			wantErr: []string{"unknown field", `"relay"`}},
		{name: "peers not an object", body: `{"vaults": [], "peers": ["x"]}`, wantCode: 400, wantErr: []string{"invalid JSON", "peers"}},
		{name: "too large after the object", body: `{"vaults": []}` + strings.Repeat(" ", MaxRequestBody), wantCode: 400,
			wantErr: []string{"exceeds 1048576 bytes"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := &fakeSource{hosted: HostedVaults{Vaults: []string{nsID(9)}}}
			s := startServer(t, src, nil, WithToken(testToken))
			r := send(t, "PUT", s.URL()+PathHostedVaults, tc.body, map[string]string{"Content-Type": "application/json",
				"Authorization": "Bearer " + testToken})
			if r.code != tc.wantCode {
				t.Fatalf("code %d, want %d: %s", r.code, tc.wantCode, r.body)
			}
			calls, hosted := src.calls()
			if tc.wantCode == 204 {
				var want HostedVaults
				_ = json.Unmarshal([]byte(tc.body), &want)
				if tc.want != nil {
					want = *tc.want
				}
				if calls != 1 || !reflect.DeepEqual(hosted, want) || r.body != "" {
					t.Errorf("calls %d, hosted %+v, body %q; want 1 call with %+v", calls, hosted, r.body, want)
				}
				return
			}
			if calls != 0 || len(hosted.Vaults) != 1 || hosted.Vaults[0] != nsID(9) {
				t.Errorf("bad input reached SetHostedVaults: calls %d, hosted %v", calls, hosted)
			}
			if r.header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
			}
			var er ErrorResponse
			if err := json.Unmarshal([]byte(r.body), &er); err != nil {
				t.Fatalf("error body %q: %v", r.body, err)
			}
			for _, sub := range tc.wantErr {
				if !strings.Contains(er.Error, sub) {
					t.Errorf("error %q lacks %q", er.Error, sub)
				}
			}
			if len(er.Error) > 400 {
				t.Errorf("error message is %d bytes long", len(er.Error))
			}
		})
	}
}

// withPeers returns a PUT body hosting vaults with the given peers.
func withPeers(peers map[string][]string, vaults ...string) string {
	b, _ := json.Marshal(HostedVaults{Vaults: vaults, Peers: peers})
	return string(b)
}

// withOptions returns a PUT body hosting vaults with the given options.
func withOptions(options map[string]VaultOptions, vaults ...string) string {
	b, _ := json.Marshal(HostedVaults{Vaults: vaults, Options: options})
	return string(b)
}

// manyPeers returns n distinct peer addresses.
func manyPeers(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = peerAddr(byte(i + 1))
	}
	return out
}

func TestPutHostedVaultsSourceError(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		err      error
		wantCode int
		wantBody string
	}{
		{"failure", errors.New("quota: at most 100 vaults"), 500, "set hosted vaults: quota: at most 100 vaults"},
		{"refused input", fmt.Errorf("%w: vault x: peer y is this seed's own peer ID", ErrInvalid), 400,
			"invalid hosted vaults: vault x: peer y is this seed's own peer ID"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, &fakeSource{setErr: tc.err}, nil, WithToken(testToken))
			r := send(t, "PUT", s.URL()+PathHostedVaults, `{"vaults": ["`+nsID(1)+`"]}`,
				map[string]string{"Authorization": "Bearer " + testToken})
			var er ErrorResponse
			if err := json.Unmarshal([]byte(r.body), &er); err != nil || r.code != tc.wantCode || er.Error != tc.wantBody {
				t.Errorf("code %d body %q (%v), want %d %q", r.code, r.body, err, tc.wantCode, tc.wantBody)
			}
		})
	}
}

func TestTokenAuth(t *testing.T) {
	t.Parallel()
	const token = "s3cret-token"
	body := `{"vaults": ["` + nsID(1) + `"]}`
	cases := []struct {
		name     string
		method   string
		path     string
		auth     string // Authorization header; "" for none
		wantCode int
		wantSet  bool
	}{
		{"PUT without token", "PUT", PathHostedVaults, "", 401, false},
		{"PUT wrong token", "PUT", PathHostedVaults, "Bearer wrong", 401, false},
		{"PUT token prefix", "PUT", PathHostedVaults, "Bearer s3cret", 401, false},
		{"PUT basic scheme", "PUT", PathHostedVaults, "Basic " + token, 401, false},
		{"PUT bare token", "PUT", PathHostedVaults, token, 401, false},
		{"PUT right token", "PUT", PathHostedVaults, "Bearer " + token, 204, true},
		{"PUT lowercase scheme", "PUT", PathHostedVaults, "bearer " + token, 204, true},
		{"GET hosted vaults open", "GET", PathHostedVaults, "", 200, false},
		{"GET status open", "GET", PathStatus, "", 200, false},
		{"GET readyz open", "GET", PathReadyz, "", 200, false},
		{"GET metrics open", "GET", PathMetrics, "", 200, false},
		{"GET heap profile without token", "GET", PathDebugPprof + "heap", "", 401, false},
		{"GET CPU profile wrong token", "GET", PathDebugPprof + "profile?seconds=1", "Bearer wrong", 401, false},
		{"GET profile index with token", "GET", PathDebugPprof, "Bearer " + token, 200, false},
		{"GET goroutines with token", "GET", PathDebugPprof + "goroutine?debug=1", "Bearer " + token, 200, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := &fakeSource{}
			s := startServer(t, src, nil, WithToken(token))
			hdr := map[string]string{}
			if tc.auth != "" {
				hdr["Authorization"] = tc.auth
			}
			b := ""
			if tc.method == "PUT" {
				b = body
			}
			r := send(t, tc.method, s.URL()+tc.path, b, hdr)
			if r.code != tc.wantCode {
				t.Fatalf("code %d, want %d: %s", r.code, tc.wantCode, r.body)
			}
			if calls, _ := src.calls(); (calls == 1) != tc.wantSet {
				t.Errorf("SetHostedVaults calls %d, want set %v", calls, tc.wantSet)
			}
			if r.code == 200 && strings.HasPrefix(tc.path, PathDebugPprof) && !strings.Contains(r.body, "goroutine") {
				t.Errorf("a profile page without goroutines: %.200q", r.body)
			}
			if r.code == 401 && (!strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") || !strings.Contains(r.body, "bearer token")) {
				t.Errorf("401 without a Bearer challenge or message: %v %q", r.header, r.body)
			}
		})
	}

}

// TestNoTokenNoWrites: a Server without a token serves every read but no
// write, whatever the request carries, and says why.
func TestNoTokenNoWrites(t *testing.T) {
	t.Parallel()
	body := `{"vaults": ["` + nsID(1) + `"]}`
	src := &fakeSource{}
	s := startServer(t, src, nil)
	for _, auth := range []string{"", "Bearer ", "Bearer anything"} {
		r := send(t, "PUT", s.URL()+PathHostedVaults, body, map[string]string{"Authorization": auth})
		var er ErrorResponse
		if r.code != http.StatusForbidden || json.Unmarshal([]byte(r.body), &er) != nil ||
			!strings.Contains(er.Error, "accepts no changes") || !strings.Contains(er.Error, "admin.token") {
			t.Errorf("PUT with %q to a server without a token: %d %q, want 403 saying why", auth, r.code, r.body)
		}
	}
	if calls, _ := src.calls(); calls != 0 {
		t.Errorf("SetHostedVaults called %d times", calls)
	}
	for _, path := range []string{PathHealthz, PathReadyz, PathMetrics, PathStatus, PathHostedVaults} {
		if r := send(t, "GET", s.URL()+path, "", nil); r.code != 200 {
			t.Errorf("GET %s: %d", path, r.code)
		}
	}
	if r := send(t, "GET", s.URL()+PathDebugPprof+"heap", "", map[string]string{"Authorization": "Bearer anything"}); r.code != http.StatusForbidden {
		t.Errorf("a heap profile from a server without a token: %d, want 403", r.code)
	}
}

// TestNonLoopbackNeedsToken: New refuses, before binding anything, an
// address other machines could reach unless a token guards the writes.
func TestNonLoopbackNeedsToken(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "10.1.2.3:7401", "seed.example:7401"} {
		s, err := New(addr, &fakeSource{}, nil)
		if err == nil {
			s.Close()
			t.Fatalf("New(%q) without a token accepted", addr)
		}
		if !errors.Is(err, ErrNoToken) || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "tokenFile") {
			t.Errorf("New(%q): %v, want ErrNoToken naming the address and what to do", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0", "localhost:0"} {
		s, err := New(addr, &fakeSource{}, nil)
		if err != nil {
			if strings.Contains(addr, "::1") && !errors.Is(err, ErrNoToken) {
				continue // no IPv6 loopback on this machine
			}
			t.Fatalf("New(%q): %v", addr, err)
		}
		s.Close()
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:7401": true, "127.9.9.9:1": true, "[::1]:7401": true, "localhost:7401": true, "LOCALHOST:1": true,
		"0.0.0.0:7401": false, ":7401": false, "[::]:7401": false, "192.168.1.2:7401": false, "seed-0:7401": false,
		"127.0.0.1": false, "": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestReadToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if tok, err := ReadToken(write("ok", "  s3cret\n")); err != nil || tok != "s3cret" {
		t.Errorf("ReadToken: %q %v", tok, err)
	}
	for name, tc := range map[string]struct{ content, want string }{
		"empty":    {" \n", "is empty"},
		"two":      {"a b\n", "more than one word"},
		"too long": {strings.Repeat("x", 5<<10), "not a token file"},
	} {
		p := write(name, tc.content)
		if _, err := ReadToken(p); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want an error naming %s and saying %q", name, err, p, tc.want)
		}
	}
	if _, err := ReadToken(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	cases := []struct {
		name string
		addr string
		src  Source
		opts []Option
		want string
	}{
		{"nil source", "127.0.0.1:0", nil, nil, "nil Source"},
		{"empty address", "", &fakeSource{}, nil, "empty listen address"},
		{"empty token", "127.0.0.1:0", &fakeSource{}, []Option{WithToken("")}, "empty bearer token"},
		{"nil logger", "127.0.0.1:0", &fakeSource{}, []Option{WithLogger(nil)}, "nil logger"},
		{"address in use", busy.Addr().String(), &fakeSource{}, nil, "listen"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := New(tc.addr, tc.src, nil, tc.opts...)
			if err == nil {
				s.Close()
				t.Fatalf("New accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
}

func TestRunCloseLifecycle(t *testing.T) {
	t.Parallel()
	s, err := New("127.0.0.1:0", &fakeSource{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().(*net.TCPAddr)
	if addr.Port == 0 || !addr.IP.IsLoopback() {
		t.Fatalf("Addr %v", addr)
	}
	// Listening from New on: a connection is accepted (queued) before Serve.
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatalf("dial before Serve: %v", err)
	}
	conn.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	if err := NewClient(s.URL()).Healthy(context.Background()); err != nil {
		t.Fatalf("Healthy: %v", err)
	}
	if err := s.Serve(); err == nil || !strings.Contains(err.Error(), "already serving") {
		t.Errorf("second Serve: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	for i := range 3 {
		if err := s.Close(); err != nil {
			t.Errorf("Close #%d: %v", i, err)
		}
	}
	if c, err := net.DialTimeout("tcp", addr.String(), time.Second); err == nil {
		c.Close()
		t.Error("still listening after Close")
	}
}

func TestCloseBeforeServe(t *testing.T) {
	t.Parallel()
	s, err := New("127.0.0.1:0", &fakeSource{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("still listening after Close")
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after Close: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Run after Close did not return")
	}
}

func TestCloseIsGraceful(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	src := &fakeSource{status: testStatus}
	src.statusHook = func(context.Context) {
		close(entered)
		<-release
	}
	s, err := New("127.0.0.1:0", src, nil)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()

	got := make(chan response, 1)
	go func() {
		resp, err := http.Get(s.URL() + PathStatus)
		if err != nil {
			got <- response{body: err.Error()}
			return
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		got <- response{code: resp.StatusCode, body: string(data)}
	}()
	<-entered
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned with a request in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if r := <-got; r.code != 200 || !strings.Contains(r.body, "12D3KooWTest") {
		t.Errorf("in-flight request: %d %q", r.code, r.body)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
}

// The http.Server has timeouts and a header limit; the handler also works
// behind httptest.
func TestServerLimits(t *testing.T) {
	t.Parallel()
	s, err := New("127.0.0.1:0", &fakeSource{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.srv.ReadHeaderTimeout <= 0 || s.srv.ReadTimeout <= 0 || s.srv.WriteTimeout <= 0 || s.srv.IdleTimeout <= 0 ||
		s.srv.MaxHeaderBytes <= 0 || s.srv.MaxHeaderBytes > 1<<20 {
		t.Errorf("server limits not set: %+v", s.srv)
	}
	ts := httptest.NewServer(s.srv.Handler)
	defer ts.Close()
	r := send(t, "GET", ts.URL+PathHealthz, "", nil)
	if r.code != 200 {
		t.Errorf("healthz via httptest: %d", r.code)
	}
	big := map[string]string{"X-Big": strings.Repeat("x", 100<<10)}
	s2 := startServer(t, &fakeSource{}, nil)
	if r := send(t, "GET", s2.URL()+PathHealthz, "", big); r.code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("100 KiB header: code %d, want 431", r.code)
	}
}

// verifyingSource is a Source that verifies on demand.
type verifyingSource struct {
	fakeSource
	verifies atomic.Int32
}

func (v *verifyingSource) StartVerify(context.Context) error {
	v.verifies.Add(1)
	return nil
}

// TestVerifyOnDemand: POST /v1/verify starts a verification with the token
// only; a source that cannot verify answers 501.
func TestVerifyOnDemand(t *testing.T) {
	t.Parallel()
	src := &verifyingSource{}
	s := startServer(t, src, nil, WithToken(testToken))
	for _, tc := range []struct {
		auth string
		want int
	}{{"", 401}, {"Bearer wrong", 401}, {"Bearer " + testToken, 202}} {
		r := send(t, "POST", s.URL()+PathVerify, "", map[string]string{"Authorization": tc.auth})
		if r.code != tc.want {
			t.Errorf("POST %s with %q: %d %q, want %d", PathVerify, tc.auth, r.code, r.body, tc.want)
		}
	}
	if got := src.verifies.Load(); got != 1 {
		t.Fatalf("StartVerify called %d times, want once (for the request with the token)", got)
	}
	if err := NewClient(s.URL(), WithToken(testToken)).Verify(context.Background()); err != nil {
		t.Fatalf("Client.Verify: %v", err)
	}
	if r := send(t, "POST", startServer(t, &fakeSource{}, nil, WithToken(testToken)).URL()+PathVerify, "",
		map[string]string{"Authorization": "Bearer " + testToken}); r.code != http.StatusNotImplemented {
		t.Errorf("a source that cannot verify: %d %q, want 501", r.code, r.body)
	}
}
