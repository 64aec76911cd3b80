package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	sigsjson "sigs.k8s.io/json"

	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// recordingSource is a Source that keeps the last hosted vaults it was given.
type recordingSource struct {
	mu    sync.Mutex
	calls int
	last  HostedVaults
}

func (r *recordingSource) Status(context.Context) (Status, error) { return Status{}, nil }
func (r *recordingSource) Ready(context.Context) error            { return nil }
func (r *recordingSource) HostedVaults() HostedVaults {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

func (r *recordingSource) SetHostedVaults(_ context.Context, hv HostedVaults) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	r.last = hv
	return nil
}

func (r *recordingSource) take() (int, HostedVaults) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, hv := r.calls, r.last
	r.calls, r.last = 0, HostedVaults{}
	return n, hv
}

// FuzzDecodeHostedVaults checks the body of PUT PathHostedVaults, the admin
// API's one decoded request: no panic; a body that decodes has its keys
// spelled exactly and once, is canonical (the promises SetHostedVaults is
// given) and decodes again to itself once encoded; and a real Server answers 400 with the decoder's message, or 204
// after passing the Source exactly what was decoded.
func FuzzDecodeHostedVaults(f *testing.F) {
	a, b := nsID(1), nsID(2)
	addr := "/ip4/127.0.0.1/tcp/7400/p2p/" + peerID(3)
	for _, s := range []string{
		`{"vaults": []}`,
		`{"vaults": ["` + a + `", "` + b + `"], "peers": {"` + a + `": ["` + addr + `", "/dns4/seed.example/udp/1/quic-v1/p2p/` + peerID(4) + `"]}, "options": {"` + b + `": {"maxEntries": 5, "noRelay": true}}}`,
		`{"vaults": ["` + a + `"], "peers": {"` + a + `": []}, "options": {"` + a + `": {}}}`,
		`{"vaults": ["` + strings.ToUpper(a) + `"]}`,
		`{"vaults": ["` + a + `", "` + a + `"]}`,
		`{"vaults": ["` + a + `"], "peers": {"` + b + `": ["` + addr + `"]}}`,
		`{"vaults": ["` + a + `"], "peers": {"` + a + `": ["` + addr + `", "` + addr + `"]}}`,
		`{"vaults": ["` + a + `"], "peers": {"` + a + `": ["/ip4/127.0.0.1/tcp/7400"]}}`,
		`{"vaults": null}`,
		`{"vault": []}`,
		`{"vaults": []} {}`,
		`{"vaults": [1]}`,
		`{"vaults": [], "options": {"x": {"maxBytes": -1}}}`,
		``,
		`[`,
		`{"vAults": ["` + a + `"]}`,
		`{"vaults": ["` + a + `"], "vaults": []}`,
		`{"vaults": ["` + a + `"], "options": {"` + a + `": {"maxEntries": 1, "MaxEntries": 2}}}`,
	} {
		f.Add([]byte(s))
	}
	src := &recordingSource{}
	const token = "fuzz-token"
	s, err := New("127.0.0.1:0", src, nil, WithToken(token))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })

	f.Fuzz(func(t *testing.T, body []byte) {
		hv, decodeErr := decodeHostedVaults(bytes.NewReader(body))
		if decodeErr == nil {
			// Keys match exactly and once: a body means one thing.
			var shape struct {
				Vaults  []string                `json:"vaults"`
				Peers   map[string][]string     `json:"peers"`
				Options map[string]VaultOptions `json:"options"`
			}
			if strict, err := sigsjson.UnmarshalStrict(body, &shape); err != nil || len(strict) > 0 {
				t.Fatalf("accepted a body with keys in another case, repeated or unknown: %v %v", strict, err)
			}
			checkCanonical(t, hv)
			again, err := json.Marshal(hv)
			if err != nil {
				t.Fatal(err)
			}
			back, err := decodeHostedVaults(bytes.NewReader(again))
			if err != nil || !reflect.DeepEqual(back, hv) {
				t.Fatalf("decoded body, encoded, decodes to %+v, %v; want %+v", back, err, hv)
			}
		}

		req := httptest.NewRequest(http.MethodPut, PathHostedVaults, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		s.srv.Handler.ServeHTTP(rec, req)
		calls, got := src.take()
		if decodeErr != nil {
			var resp ErrorResponse
			if rec.Code != http.StatusBadRequest || json.Unmarshal(rec.Body.Bytes(), &resp) != nil || resp.Error != decodeErr.Error() || calls != 0 {
				t.Fatalf("refused body answered %d %q (%d Source calls); want 400 with %q", rec.Code, rec.Body, calls, decodeErr)
			}
			return
		}
		if rec.Code != http.StatusNoContent || calls != 1 || !reflect.DeepEqual(got, hv) {
			t.Fatalf("accepted body answered %d %q, Source got %+v (%d calls); want 204 and %+v", rec.Code, rec.Body, got, calls, hv)
		}
	})
}

// checkCanonical checks what Source.SetHostedVaults is promised.
func checkCanonical(t *testing.T, hv HostedVaults) {
	t.Helper()
	if hv.Vaults == nil {
		t.Fatal("vaults is nil")
	}
	for i, v := range hv.Vaults {
		ns, err := vault.ParseNamespaceID(v)
		if err != nil || ns.String() != v || slices.Index(hv.Vaults, v) != i {
			t.Fatalf("vaults[%d] = %q is not a canonical, distinct namespace ID (%v)", i, v, err)
		}
	}
	for ns, addrs := range hv.Peers {
		if !slices.Contains(hv.Vaults, ns) || len(addrs) == 0 || len(addrs) > MaxPeersPerVault {
			t.Fatalf("peers[%q]: %d addresses of a vault listed: %v", ns, len(addrs), slices.Contains(hv.Vaults, ns))
		}
		for i, a := range addrs {
			info, err := p2p.ParseDialAddr(a)
			if err != nil || slices.Index(addrs, a) != i {
				t.Fatalf("peers[%q][%d] = %q: not a distinct peer address (%v)", ns, i, a, err)
			}
			if len(info.Addrs) != 1 || info.Addrs[0].String()+"/p2p/"+info.ID.String() != a {
				t.Fatalf("peers[%q][%d] = %q is not canonical", ns, i, a)
			}
		}
	}
	for ns, o := range hv.Options {
		if !slices.Contains(hv.Vaults, ns) || o == (VaultOptions{}) {
			t.Fatalf("options[%q] = %+v: of a vault not listed, or empty", ns, o)
		}
	}
}
