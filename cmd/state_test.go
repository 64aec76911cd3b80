//go:build cgo

package cmd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/node"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// TestStateCommands: set, get, edit, append, incr, text, del and history on
// the agent's vault, as a user types them.
func TestStateCommands(t *testing.T) {
	ctx := context.Background()
	home := filepath.Join(t.TempDir(), "laptop")
	if _, errOut, code := run(t, ctx, "agent", "init", "--home", home, "--name", "laptop"); code != 0 {
		t.Fatalf("agent init: %s", errOut)
	}
	patch := filepath.Join(t.TempDir(), "patch.json")
	if err := os.WriteFile(patch, []byte(`{"ui":{"lang":"en","font":null}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"set", "agent", "profile", "name", `"Ada"`},
		{"set", "agent", "preferences", "ui.theme", `"dark"`},
		{"set", "agent", "preferences", "ui.font", `"mono"`},
		{"edit", "agent", "preferences", "--file", patch},
		{"append", "agent", "conversations/c1", "messages", `{"from":"ada","text":"hi"}`},
		{"append", "agent", "conversations/c1", "messages", `{"from":"bot","text":"hello"}`},
		{"incr", "agent", "profile", "visits"},
		{"incr", "agent", "profile", "visits", "4"},
		{"text", "agent", "profile", "name", "--insert", " Lovelace"},
		{"text", "agent", "profile", "name", "--at", "0", "--delete", "1", "--insert", "a"},
		{"set", "agent", "profile", "tmp", `1`},
		{"del", "agent", "profile", "tmp"},
	} {
		if out, errOut, code := run(t, ctx, append(append([]string{"state"}, args...), "--home", home)...); code != 0 {
			t.Fatalf("state %s: exit %d %q %q", strings.Join(args, " "), code, out, errOut)
		}
	}
	for _, c := range []struct{ args, want string }{
		{"profile", `{"name":"ada Lovelace","visits":5}`},
		{"preferences", `{"ui":{"lang":"en","theme":"dark"}}`},
		{"preferences ui.theme", `"dark"`},
		{"conversations/c1 messages.1.text", `"hello"`},
	} {
		out, errOut, code := run(t, ctx, append(append([]string{"state", "get", "agent"}, strings.Fields(c.args)...), "--home", home)...)
		if code != 0 || strings.TrimSpace(out) != c.want {
			t.Errorf("state get %s: %q %q, want %s", c.args, out, errOut, c.want)
		}
	}
	out, errOut, code := run(t, ctx, "state", "history", "agent", "profile", "--home", home)
	if code != 0 || strings.Count(out, "laptop") != 7 || !strings.Contains(out, "increment visits") {
		t.Fatalf("history: %q %q", out, errOut)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"set", "agent", "profile", "name", "Ada"}, "not JSON"},
		{[]string{"incr", "agent", "profile", "name"}, "not a counter"},
		{[]string{"get", "agent", "profile", "missing"}, "no value"},
		{[]string{"set", "agent", "bad name", "x", "1"}, "document name"},
		{[]string{"append", "agent", "preferences", "ui", `1`}, "not a list"},
		// The standard documents' schemas refuse a bad value, naming the field.
		{[]string{"set", "agent", "profile", "visits", `"many"`}, "document profile does not match its schema: at visits: got string, want integer"},
		{[]string{"append", "agent", "conversations/c1", "messages", `{"text":"anon"}`}, "at messages.2: missing property 'from'"},
	} {
		if _, errOut, code := run(t, ctx, append(append([]string{"state"}, c.args...), "--home", home)...); code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("state %s: exit %d %q, want a refusal saying %q", strings.Join(c.args, " "), code, errOut, c.want)
		}
	}
}

// TestStateWatch: `state watch` on the phone prints the document again when
// the laptop's change arrives through the seed.
func TestStateWatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	laptop, phone := filepath.Join(t.TempDir(), "laptop"), filepath.Join(t.TempDir(), "phone")
	if _, errOut, code := run(t, ctx, "agent", "init", "--home", laptop, "--name", "laptop"); code != 0 {
		t.Fatalf("agent init: %s", errOut)
	}
	ns := approveDirectly(t, laptop, phone, "phone")
	n, err := node.New(node.Config{DataDir: t.TempDir(), Listen: []string{"/ip4/127.0.0.1/tcp/0"}, AdminListen: "off",
		DHT: node.DHTConfig{Mode: config.DHTOff}, HostedVaults: []vault.NamespaceID{ns}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	seed := n.Addrs()[0].String()
	for _, home := range []string{laptop, phone} {
		if _, errOut, code := run(t, ctx, "sync", "agent", seed, "-q", "--no-dht", "--no-rendezvous", "--home", home); code != 0 {
			t.Fatalf("sync: %s", errOut)
		}
	}
	root := newRoot()
	pr, pw := io.Pipe()
	var errOut bytes.Buffer
	root.SetOut(pw)
	root.SetErr(&errOut)
	root.SetArgs([]string{"state", "watch", "agent", "profile", "--peer", seed, "--home", phone})
	watchCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		_ = root.ExecuteContext(watchCtx)
		pw.Close()
		close(done)
	}()
	defer func() { stop(); <-done }()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	if first := <-lines; first != "{}" {
		t.Fatalf("watch printed %q first, want {} (%s)", first, errOut.String())
	}
	for i := 0; ; i++ {
		if _, errText, code := run(t, ctx, "state", "set", "agent", "profile", "n", strconv.Itoa(i), "--home", laptop); code != 0 {
			t.Fatalf("state set: %s", errText)
		}
		if _, errText, code := run(t, ctx, "sync", "agent", seed, "-q", "--no-dht", "--no-rendezvous", "--home", laptop); code != 0 {
			t.Fatalf("sync: %s", errText)
		}
		select {
		case line := <-lines:
			if !strings.HasPrefix(line, `{"n":`) {
				t.Fatalf("watch printed %q", line)
			}
			return
		case <-time.After(3 * time.Second): // the live session may still be connecting
		case <-ctx.Done():
			t.Fatalf("the watcher printed nothing new: %s", errOut.String())
		}
	}
}

// approveDirectly makes newHome a device of the agent of rootHome, without
// the pairing protocol (which has tests of its own), and returns the agent
// vault.
func approveDirectly(t *testing.T, rootHome, newHome, name string) vault.NamespaceID {
	t.Helper()
	key, err := client.CreateKey(newHome)
	if err != nil {
		t.Fatal(err)
	}
	r, err := client.Open(rootHome)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a, err := r.Agent()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ApproveDevice(name, key.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	h, err := client.Open(newHome)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.JoinAgent(a.DID, a.Namespace, name, nil); err != nil {
		t.Fatal(err)
	}
	return a.Namespace
}
