//go:build cgo

package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/state"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// settings is a document without a schema: any JSON goes.
const settings = "/v1/vaults/agent/docs/app/settings"

// TestOperations: every operation through the socket, read back through the
// API and through the Go SDK on the same home.
func TestOperations(t *testing.T) {
	homes, ns := agentDevices(t, "laptop")
	a := startAPI(t, homes[0], Options{})

	a.ok(http.MethodPut, settings+"?path=ui.theme", "application/json", `"dark"`)
	a.ok(http.MethodPut, settings+"?path=ui.font", "", `"mono"`)
	a.ok(http.MethodPatch, settings, MergePatchType, `{"ui":{"lang":"en","font":null}}`)
	a.ok(http.MethodPost, settings, "application/json", `{"op":"append","path":"tags","value":"go"}`)
	a.ok(http.MethodPost, settings, "application/json", `{"op":"incr","path":"visits"}`)
	a.ok(http.MethodPost, settings, "application/json", `{"op":"incr","path":"visits","delta":4}`)
	a.ok(http.MethodPost, settings, "application/json", `{"op":"text","path":"bio","insert":"writes engines"}`)
	a.ok(http.MethodPost, settings, "application/json", `{"op":"text","path":"bio","at":0,"delete":1,"insert":"W"}`)
	a.ok(http.MethodPut, settings+"?path=tmp", "", `1`)
	a.ok(http.MethodDelete, settings+"?path=tmp", "", "")
	changed := a.ok(http.MethodPost, settings, "", `[{"op":"append","path":"tags","value":"rust"},{"op":"set","path":"ui.size","value":1.5}]`)

	want := `{"bio":"Writes engines","tags":["go","rust"],"ui":{"lang":"en","size":1.5,"theme":"dark"},"visits":5}`
	status, got, hdr := a.do(http.MethodGet, settings, "", "")
	if status != http.StatusOK || got != want {
		t.Fatalf("GET: %d %s; want %s", status, got, want)
	}
	var resp struct{ Heads []string }
	if err := json.Unmarshal([]byte(changed), &resp); err != nil || len(resp.Heads) == 0 {
		t.Fatalf("change answer %s: %v", changed, err)
	}
	if h := hdr.Get(HeadsHeader); h != strings.Join(resp.Heads, ",") {
		t.Fatalf("heads header %q; the last change answered %v", h, resp.Heads)
	}
	if got := a.ok(http.MethodGet, settings+"?path=tags.1", "", ""); got != `"rust"` {
		t.Fatalf("GET tags.1: %s", got)
	}

	// What the API stored is in the vault: a fresh SDK handle reads it.
	d, err := state.Open(homes[0], ns, "app/settings")
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := d.JSON(nil); string(raw) != want {
		t.Fatalf("the SDK reads %s", raw)
	}
	var hist struct {
		Changes []historyEntry `json:"changes"`
	}
	if err := json.Unmarshal([]byte(a.ok(http.MethodGet, "/v1/vaults/agent/history/app/settings", "", "")), &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist.Changes) != 11 || hist.Changes[0].Device != "laptop" || hist.Changes[0].Message != "set ui.theme" ||
		hist.Changes[10].Message != "append tags; set ui.size" {
		t.Fatalf("history: %+v", hist.Changes)
	}

	a.ok(http.MethodPut, "/v1/vaults/agent/docs/conversations/c1?path=title", "", `"hello"`)
	if got := a.ok(http.MethodGet, "/v1/vaults/agent/docs", "", ""); got != `{"documents":["app/settings","conversations/c1"],"vault":"agent"}` {
		t.Fatalf("list: %s", got)
	}
}

// TestProjectVault: agent%2FPROJECT names a project vault, as agent/PROJECT
// does on the command line.
func TestProjectVault(t *testing.T) {
	homes, _ := agentDevices(t, "laptop")
	p, err := homes[0].CreateProject("work")
	if err != nil {
		t.Fatal(err)
	}
	a := startAPI(t, homes[0], Options{})
	a.ok(http.MethodPut, "/v1/vaults/agent%2Fwork/docs/notes?path=todo", "", `["ship"]`)
	d, err := state.Open(homes[0], p.Namespace, "notes")
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := d.JSON(nil); string(raw) != `{"todo":["ship"]}` {
		t.Fatalf("the project's document: %s", raw)
	}
	a.ok(http.MethodGet, "/v1/vaults/"+p.Namespace.String()+"/docs/notes", "", "")
	agent, _ := homes[0].Agent()
	want := fmt.Sprintf(`{"vaults":[{"name":"agent","id":"%s"},{"name":"agent/work","id":"%s"}]}`, agent.Namespace, p.Namespace)
	if got := a.ok(http.MethodGet, "/v1/vaults", "", ""); got != want {
		t.Fatalf("vaults: %s, want %s", got, want)
	}
	if got := a.ok(http.MethodGet, "/v1/vaults/agent/docs", "", ""); got != `{"documents":[],"vault":"agent"}` {
		t.Fatalf("the agent vault lists %s", got)
	}
}

// TestErrors: what a request gets wrong is a 4xx with a JSON error and a
// hint, and a refused change stores nothing.
func TestErrors(t *testing.T) {
	homes, _ := agentDevices(t, "laptop")
	a := startAPI(t, homes[0], Options{MaxBody: 1 << 10})
	a.ok(http.MethodPut, settings, "", `{"ui":{"theme":"dark"},"tags":["a"],"n":1}`)
	before := a.ok(http.MethodGet, settings, "", "")
	_, _, hdr := a.do(http.MethodGet, settings, "", "")
	for _, c := range []struct {
		name, method, target, ctype, body string
		status                            int
		says                              string
	}{
		{"invalid JSON", http.MethodPut, settings + "?path=x", "", `{"a":`, 400, "not JSON"},
		{"unquoted string", http.MethodPut, settings + "?path=x", "", `dark`, 400, "not JSON"},
		{"root not an object", http.MethodPut, settings, "", `[1]`, 409, "root"},
		{"empty path segment", http.MethodGet, settings + "?path=ui..theme", "", "", 400, "empty segment"},
		{"path into a string", http.MethodGet, settings + "?path=ui.theme.x", "", "", 404, "ui.theme"},
		{"nothing at path", http.MethodGet, settings + "?path=nope", "", "", 404, "no value"},
		{"list index", http.MethodPut, settings + "?path=tags.7", "", `1`, 409, "not an index"},
		{"append to a map", http.MethodPost, settings, "", `{"op":"append","path":"ui","value":1}`, 409, "not a list"},
		{"incr a string", http.MethodPost, settings, "", `{"op":"incr","path":"ui.theme"}`, 409, "not a counter"},
		{"text of a number", http.MethodPost, settings, "", `{"op":"text","path":"n","insert":"x"}`, 409, "not text"},
		{"text out of range", http.MethodPost, settings, "", `{"op":"text","path":"ui.theme","at":99,"insert":"x"}`, 409, "outside"},
		{"delete missing", http.MethodDelete, settings + "?path=nope", "", "", 404, "no value"},
		{"delete root", http.MethodDelete, settings, "", "", 400, "root"},
		{"batch fails whole", http.MethodPost, settings, "", `[{"op":"set","path":"ok","value":1},{"op":"incr","path":"tags"}]`, 409, "op 1"},
		{"unknown op", http.MethodPost, settings, "", `{"op":"move","path":"a"}`, 400, "move"},
		{"unknown field", http.MethodPost, settings, "", `{"op":"set","path":"a","value":1,"vlaue":2}`, 400, "vlaue"},
		{"set without value", http.MethodPost, settings, "", `{"op":"set","path":"a"}`, 400, "value"},
		{"two values", http.MethodPost, settings, "", `{"op":"incr","path":"n"} {"op":"incr","path":"n"}`, 400, "more than one"},
		{"patch content type", http.MethodPatch, settings, "application/json", `{"a":1}`, 415, MergePatchType},
		{"body too large", http.MethodPut, settings + "?path=big", "", `"` + strings.Repeat("x", 2<<10) + `"`, 413, "too large"},
		{"bad document name", http.MethodGet, "/v1/vaults/agent/docs/a/~s", "", "", 400, "only letters"},
		{"document name characters", http.MethodGet, "/v1/vaults/agent/docs/a%20b", "", "", 400, "only letters"},
		{"bad vault", http.MethodGet, "/v1/vaults/nope/docs/x", "", "", 400, "agent/PROJECT"},
		{"unknown project", http.MethodGet, "/v1/vaults/agent%2Fnope/docs/x", "", "", 404, "no such project"},
		{"unknown namespace", http.MethodGet, "/v1/vaults/" + strings.Repeat("a", 52) + "/docs/x", "", "", 404, "does not know"},
		{"method", http.MethodPost, "/v1/vaults/agent/history/app/settings", "", "", 405, "POST"},
		{"route", http.MethodGet, "/v2/anything", "", "", 404, "no such route"},
		{"schema", http.MethodPut, "/v1/vaults/agent/docs/preferences?path=ui.theme", "", `5`, 422, "does not match its schema"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, out, _ := a.do(c.method, c.target, c.ctype, c.body)
			var e struct{ Error, Hint string }
			if err := json.Unmarshal([]byte(out), &e); err != nil || e.Error == "" || e.Hint == "" {
				t.Fatalf("%d %s: not a JSON error with a hint (%v)", status, out, err)
			}
			if status != c.status || !strings.Contains(e.Error, c.says) {
				t.Fatalf("%d %s; want %d saying %q", status, out, c.status, c.says)
			}
		})
	}
	status, after, hdr2 := a.do(http.MethodGet, settings, "", "")
	if status != 200 || after != before || hdr2.Get(HeadsHeader) != hdr.Get(HeadsHeader) {
		t.Fatalf("refused requests changed the document: %s (%s) → %s (%s)", before, hdr.Get(HeadsHeader), after, hdr2.Get(HeadsHeader))
	}
}

// TestConcurrentRequests: requests from many clients at once on one
// document and several others all land.
func TestConcurrentRequests(t *testing.T) {
	homes, _ := agentDevices(t, "laptop")
	a := startAPI(t, homes[0], Options{MaxDocuments: 4})
	const clients, each = 8, 10
	var wg sync.WaitGroup
	var landed atomic.Int64
	errs := make(chan error, 2*clients*each)
	for c := range clients {
		wg.Go(func() {
			for i := range each {
				doc := fmt.Sprintf("/v1/vaults/agent/docs/d%d", (c+i)%6)
				for _, target := range []string{settings, doc} {
					status, out, _ := a.do(http.MethodPost, target, "", `{"op":"incr","path":"n"}`)
					switch {
					case status == http.StatusOK && target == settings:
						landed.Add(1)
					case status == http.StatusOK, status == http.StatusServiceUnavailable:
						// 503: every open document was in use; a client retries
					default:
						errs <- fmt.Errorf("%s: %d %s", target, status, out)
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := a.ok(http.MethodGet, settings+"?path=n", "", ""); got != fmt.Sprint(landed.Load()) || landed.Load() < clients {
		t.Fatalf("counter %s after %d increments answered 200", got, landed.Load())
	}
	var list struct{ Documents []string }
	_ = json.Unmarshal([]byte(a.ok(http.MethodGet, "/v1/vaults/agent/docs", "", "")), &list)
	if !slices.Contains(list.Documents, "d5") || len(list.Documents) != 7 {
		t.Fatalf("documents %v", list.Documents)
	}
}

// TestWatch: a watch stream gets the state now, after a change through the
// API, and after a change another device made and sync brought; it ends
// with an "end" event when the API closes.
func TestWatch(t *testing.T) {
	homes, ns := agentDevices(t, "laptop", "phone")
	laptop, phone := homes[0], homes[1]
	seed := startSeed(t, ns)
	a := startAPI(t, laptop, Options{})
	a.ok(http.MethodPut, settings+"?path=ui.theme", "", `"light"`)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	whole := a.watch(ctx, "/v1/vaults/agent/watch/app/settings")
	theme := a.watch(ctx, "/v1/vaults/agent/watch/app/settings?path=ui.theme")
	missing := a.watch(ctx, "/v1/vaults/agent/watch/app/settings?path=ui.lang")
	if _, ev := whole.next(t); string(ev.Value) != `{"ui":{"theme":"light"}}` || len(ev.Heads) != 1 {
		t.Fatalf("first event %+v", ev)
	}
	theme.valueUntil(t, `"light"`)
	if name, ev := missing.next(t); name != "state" || ev.Value != nil {
		t.Fatalf("watching a missing path: %s %+v", name, ev)
	}

	a.ok(http.MethodPut, settings+"?path=ui.theme", "", `"dark"`)
	theme.valueUntil(t, `"dark"`)
	whole.valueUntil(t, `{"ui":{"theme":"dark"}}`)

	// The phone edits the document; sync brings its change to the laptop.
	syncWith(t, laptop, ns, seed)
	syncWith(t, phone, ns, seed)
	d, err := state.Open(phone, ns, "app/settings")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Change(func(tx *state.Tx) error { return tx.Set(state.Path{"ui", "lang"}, "en") }); err != nil {
		t.Fatal(err)
	}
	syncWith(t, phone, ns, seed)
	syncWith(t, laptop, ns, seed)
	missing.valueUntil(t, `"en"`)
	ev := whole.valueUntil(t, `{"ui":{"lang":"en","theme":"dark"}}`)
	wantHeads, _ := d.Heads()
	if !slices.Equal(ev.Heads, wantHeads) {
		t.Fatalf("the laptop's heads %v, the phone's %v", ev.Heads, wantHeads)
	}
	if got := a.ok(http.MethodGet, settings+"?path=ui.lang", "", ""); got != `"en"` {
		t.Fatalf("a read after the sync: %s", got)
	}

	a.srv.Close()
	if name, _ := whole.next(t); name != "end" {
		t.Fatalf("after Close: event %q", name)
	}
}

// TestWatchHeartbeat: a stream with nothing to say still sends comments,
// and a client that goes away frees its watch.
func TestWatchHeartbeat(t *testing.T) {
	homes, _ := agentDevices(t, "laptop")
	a := startAPI(t, homes[0], Options{Heartbeat: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	s := a.watch(ctx, "/v1/vaults/agent/watch/app/settings")
	if name, _ := s.next(t); name != "state" {
		t.Fatalf("first event %q", name)
	}
	for ev := range s.events {
		if ev[0] == "heartbeat" {
			break
		}
	}
	cancel()
	for range s.events {
	}
	ns, err := a.srv.hd.vault("agent")
	if err != nil {
		t.Fatal(err)
	}
	od, err := a.srv.hd.docs.acquire(ns, "app/settings")
	if err != nil {
		t.Fatal(err)
	}
	defer a.srv.hd.docs.release(od)
	waitUntil(t, "the watcher unsubscribed", func() bool {
		a.srv.hd.docs.mu.Lock()
		defer a.srv.hd.docs.mu.Unlock()
		return len(od.subs) == 0
	})
}

// TestNoAgent: a home that acts for no agent says how to make it one.
func TestNoAgent(t *testing.T) {
	a := startAPI(t, openHome(t), Options{})
	for _, target := range []string{"/v1/vaults", "/v1/vaults/agent/docs", "/v1/vaults/agent/docs/profile"} {
		status, out, _ := a.do(http.MethodGet, target, "", "")
		if status != http.StatusNotFound || !strings.Contains(out, "agent init") {
			t.Errorf("%s: %d %s", target, status, out)
		}
	}
}

// TestWatchThroughServe: as under `seedfleet serve`, the laptop serves the
// agent's vault; the phone syncs its change to the laptop, and the
// laptop's watch stream shows it.
func TestWatchThroughServe(t *testing.T) {
	homes, ns := agentDevices(t, "laptop", "phone")
	laptop, phone := homes[0], homes[1]
	a := startAPI(t, laptop, Options{})
	a.ok(http.MethodPut, settings+"?path=ui", "", `{"theme":"dark"}`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan string, 1)
	served := make(chan error, 1)
	go func() {
		served <- laptop.Serve(ctx, client.ServeOptions{Vaults: []vault.NamespaceID{ns}, Listen: []string{"/ip4/127.0.0.1/tcp/0"},
			NoRendezvous: true, Reachable: func(as []string) {
				select {
				case addrs <- as[0]:
				default:
				}
			}})
	}()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-served:
		t.Fatalf("serve: %v", err)
	}
	defer func() {
		cancel()
		if err := <-served; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("serve: %v", err)
		}
	}()
	syncWith(t, phone, ns, addr)
	s := a.watch(ctx, "/v1/vaults/agent/watch/app/settings?path=ui")
	s.valueUntil(t, `{"theme":"dark"}`)
	d, err := state.Open(phone, ns, "app/settings")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Change(func(tx *state.Tx) error { return tx.Set(state.Path{"ui", "lang"}, "en") }); err != nil {
		t.Fatal(err)
	}
	syncWith(t, phone, ns, addr)
	s.valueUntil(t, `{"lang":"en","theme":"dark"}`)
}
