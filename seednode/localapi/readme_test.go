//go:build cgo

package localapi

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/internal/p2ptest"
)

// TestReadmeCurl runs the README's curl examples of the local API against a
// real API: if they stop being true, this fails.
func TestReadmeCurl(t *testing.T) {
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			p2ptest.Unavailable(t, tool+" is not installed")
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(readme), "### Local API")
	_, rest, _ = strings.Cut(rest, "```sh\n")
	block, _, ok := strings.Cut(rest, "```")
	if !ok || !strings.HasPrefix(block, "S=~/.seedfleet/api.sock") {
		t.Fatalf("the README's Local API section has no sh block starting with S=~/.seedfleet/api.sock")
	}
	homes, _ := agentDevices(t, "laptop")
	a := startAPI(t, homes[0], Options{})
	// Every curl fails on an HTTP error; the watch runs for two seconds.
	script := `curl() {
	if [[ "$*" == */watch/* ]]; then command curl -sS --max-time 2 "$@" || [ $? = 28 ]
	else command curl --fail-with-body -sS --max-time 30 "$@"; fi
	echo
}
` + strings.Replace(block, "S=~/.seedfleet/api.sock", "S="+a.srv.Path(), 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", "-e", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("the README's curl examples: %v\n%s", err, out)
	}
	for _, want := range []string{"\n\"dark\"\n", `{"documents":["conversations/c1","preferences","profile"],"vault":"agent"}`,
		`"message":"increment visits"`, "event: state\ndata: {\"heads\":["} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	for target, want := range map[string]string{
		"/v1/vaults/agent/docs/preferences":      `{"ui":{"lang":"en","theme":"dark"}}`,
		"/v1/vaults/agent/docs/profile":          `{"bio":"Hello, ","name":"Ada","visits":2}`,
		"/v1/vaults/agent/docs/conversations/c1": `{"messages":[{"from":"ada","text":"hi"}]}`,
	} {
		if got := a.ok(http.MethodGet, target, "", ""); got != want {
			t.Errorf("%s: %s, want %s", target, got, want)
		}
	}
}
