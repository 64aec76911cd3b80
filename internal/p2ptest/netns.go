package p2ptest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// InCI reports whether the tests run under CI: the CI environment variable
// is true (as CI services and .ci/run set it).
func InCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// Unavailable ends a test that cannot run here: a skip with the reason on a
// developer's machine, a failure with the reason under CI.
func Unavailable(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("cannot run under CI: %s (CI=true makes this a failure, not a skip)", reason)
	}
	t.Skip(reason)
}

// RequireNetns ends the test through Unavailable unless it can create
// network namespaces: root, iproute2's ip and the other tools named (e.g.
// "iptables") installed, and a probe namespace created and deleted.
func RequireNetns(t testing.TB, tools ...string) {
	t.Helper()
	if why := netnsUnavailable(tools); why != "" {
		Unavailable(t, why)
	}
}

func netnsUnavailable(tools []string) string {
	if os.Geteuid() != 0 {
		return "needs root to create network namespaces"
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " not installed (.ci/run installs iproute2 and iptables)"
		}
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	name := "sfprobe" + hex.EncodeToString(b[:])
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return "cannot create network namespaces here: " + err.Error() + ": " + string(out)
	}
	_ = exec.Command("ip", "netns", "del", name).Run()
	return ""
}
