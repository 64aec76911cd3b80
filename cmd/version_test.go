package cmd

import (
	"bytes"
	"strings"
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

// TestLogLevelFlag: --log-level takes the seed's CamelCase levels in any
// case, and names them when refusing another.
func TestLogLevelFlag(t *testing.T) {
	for _, tc := range []struct {
		level string
		ok    bool
	}{{"Debug", true}, {"warn", true}, {"ERROR", true}, {"verbose", false}} {
		root := newRoot()
		var out, errOut bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&errOut)
		root.SetArgs([]string{"version", "--log-level", tc.level})
		err := root.Execute()
		if (err == nil) != tc.ok {
			t.Errorf("--log-level %s: %v", tc.level, err)
		}
		if err != nil && !strings.Contains(err.Error(), "Debug, Info, Warn or Error") {
			t.Errorf("--log-level %s: %v does not name the levels", tc.level, err)
		}
	}
}
