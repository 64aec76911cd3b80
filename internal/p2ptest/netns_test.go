package p2ptest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestUnavailableFailsUnderCI runs TestHelperUnavailable in a child process
// with CI set and unset: a skip locally, a failure naming the reason in CI.
func TestUnavailableFailsUnderCI(t *testing.T) {
	for _, tc := range []struct {
		ci       string
		wantFail bool
		wantText string
	}{
		{"true", true, "cannot run under CI: no frobnicator here"},
		{"1", true, "cannot run under CI"},
		{"", false, "--- SKIP"},
		{"false", false, "--- SKIP"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperUnavailable$", "-test.v")
		cmd.Env = append(os.Environ(), "P2PTEST_HELPER=1", "CI="+tc.ci)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tc.wantFail || !strings.Contains(string(out), tc.wantText) {
			t.Errorf("CI=%q: failed %v, want %v; output lacks %q?\n%s", tc.ci, failed, tc.wantFail, tc.wantText, out)
		}
	}
}

func TestHelperUnavailable(t *testing.T) {
	if os.Getenv("P2PTEST_HELPER") == "" {
		t.Skip("only run as a child process")
	}
	Unavailable(t, "no frobnicator here")
}
