package cmd

import (
	"strings"
	"testing"
)

// TestOperatorRefusesPollIntervalOutOfRange: the operator stops before it
// talks to any API server when --poll-interval is out of range, and the
// error names the flag and the range.
func TestOperatorRefusesPollIntervalOutOfRange(t *testing.T) {
	for _, v := range []string{"0s", "500ms", "2h"} {
		c := newOperatorCmd()
		c.SetArgs([]string{"--poll-interval", v, "--kubeconfig", "/nonexistent"})
		c.SilenceUsage, c.SilenceErrors = true, true
		err := c.Execute()
		if err == nil || !strings.Contains(err.Error(), "--poll-interval") || !strings.Contains(err.Error(), "1s to 1h") {
			t.Errorf("--poll-interval %s: error %v, want one naming the flag and its range", v, err)
		}
	}
	// In range, it gets as far as the kubeconfig.
	c := newOperatorCmd()
	c.SetArgs([]string{"--poll-interval", "1m", "--kubeconfig", "/nonexistent"})
	c.SilenceUsage, c.SilenceErrors = true, true
	if err := c.Execute(); err == nil || strings.Contains(err.Error(), "--poll-interval") {
		t.Errorf("--poll-interval 1m: error %v, want a kubeconfig error", err)
	}
}
