package pebblelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestErrorsAreLoggedAndCounted: Pebble's error logs reach the log with the
// store named, and are counted; its informational ones are dropped.
func TestErrorsAreLoggedAndCounted(t *testing.T) {
	var out bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&out, nil)), "vaults")
	l.Infof("flushed %d tables", 3)
	if out.Len() != 0 || l.Errors() != 0 {
		t.Fatalf("an informational log was kept: %q, %d", out.String(), l.Errors())
	}
	l.Errorf("WAL %s: %s", "000007.log", "invalid chunk")
	if l.Errors() != 1 || !strings.Contains(out.String(), "store=vaults") || !strings.Contains(out.String(), "000007.log: invalid chunk") {
		t.Fatalf("an error log: %q, %d counted", out.String(), l.Errors())
	}
}
