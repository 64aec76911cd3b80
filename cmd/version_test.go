package cmd

import (
	"bytes"
	"testing"

	"github.com/seedfleet/seedfleet/internal/version"
)

// TestVersion: `seedfleet version` and `seedfleet --version` print the same
// line, naming the build's version.
func TestVersion(t *testing.T) {
	want := "seedfleet " + version.String() + "\n"
	for _, args := range [][]string{{"version"}, {"--version"}} {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if out.String() != want {
			t.Errorf("%v printed %q, want %q", args, out.String(), want)
		}
	}
}
