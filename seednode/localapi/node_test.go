//go:build cgo

package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"reflect"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/internal/p2ptest"
	"github.com/seedfleet/seedfleet/seednode/state"
)

// TestNodeClient: a client in another language (node, with nothing but its
// own http module) sets, reads, patches, increments and watches a document
// through the socket; the Go SDK reads what it wrote.
func TestNodeClient(t *testing.T) {
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		p2ptest.Unavailable(t, "node is not installed (CI must install it: see .ci/run)")
	}
	homes, ns := agentDevices(t, "laptop")
	a := startAPI(t, homes[0], Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stdout, err := exec.CommandContext(ctx, nodeBin, "testdata/client.mjs", a.srv.Path()).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node: %v\n%s", err, stderr)
	}
	var got struct {
		Read    any
		Missing struct {
			Status            int
			HasError, HasHint bool
		}
		Watched []any
		Final   any
	}
	if err := json.Unmarshal(stdout, &got); err != nil {
		t.Fatalf("node printed %s: %v", stdout, err)
	}
	want := map[string]any{"name": "Ada", "prefs": map[string]any{"theme": "dark"}, "tags": []any{"js", "node"}, "visits": 2.0}
	if !reflect.DeepEqual(got.Read, map[string]any{"name": "Ada"}) || !reflect.DeepEqual(got.Final, want) {
		t.Fatalf("node read %v, then %v", got.Read, got.Final)
	}
	if got.Missing.Status != 404 || !got.Missing.HasError || !got.Missing.HasHint {
		t.Fatalf("node's request for a missing path: %+v", got.Missing)
	}
	if len(got.Watched) < 2 || !reflect.DeepEqual(got.Watched[0], []any{"js"}) {
		t.Fatalf("node watched %v", got.Watched)
	}
	d, err := state.Open(homes[0], ns, "profile")
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := d.Get(nil, &doc); err != nil || !reflect.DeepEqual(doc, want) {
		t.Fatalf("the Go SDK reads %v (%v)", doc, err)
	}
}
