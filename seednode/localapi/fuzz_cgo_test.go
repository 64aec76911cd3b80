//go:build cgo

package localapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/seedfleet/seedfleet/seednode/client"
)

// FuzzHandler: any method, path, query and body against a real home is
// answered, never with a panic or a 500: hostile requests are the client's
// error, and whatever was stored stays readable.
func FuzzHandler(f *testing.F) {
	for _, c := range [][3]string{
		{"PUT", "/v1/vaults/agent/docs/p?path=a.b", `{"x":[1,2,{"y":"z"}]}`},
		{"POST", "/v1/vaults/agent/docs/p", `[{"op":"append","path":"a.b","value":3},{"op":"text","path":"s","insert":"hé"}]`},
		{"POST", "/v1/vaults/agent/docs/p", `{"op":"incr","path":"a.b.2.y","delta":-9223372036854775808}`},
		{"PATCH", "/v1/vaults/agent/docs/p?path=a", `{"b":null,"c":{"d":1e308}}`},
		{"DELETE", "/v1/vaults/agent/docs/p?path=a.b.0", ``},
		{"GET", "/v1/vaults/agent/docs/p?path=a.b.9999999999999999999", ``},
		{"GET", "/v1/vaults/agent%2F%00/history/p", ``},
		{"GET", "/v1/vaults/agent/docs", ``},
	} {
		f.Add(c[0], c[1], c[2])
	}
	h, err := client.Open(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	if _, err := h.InitAgent("laptop"); err != nil {
		f.Fatal(err)
	}
	hd := NewHandler(h, Options{})
	f.Cleanup(func() { hd.Close(); h.Close() })
	f.Fuzz(func(t *testing.T, method, target, body string) {
		if !strings.HasPrefix(target, "/") || strings.HasPrefix(target, "/v1/vaults/agent/watch/") {
			return // not a request line a client sends; a watch streams until its client goes
		}
		req, err := http.NewRequest(method, "http://localhost"+target, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", MergePatchType)
		rec := httptest.NewRecorder()
		hd.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, target, body, rec.Code, rec.Body)
		}
	})
}
