package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/internal/dirlock"
	"github.com/seedfleet/seedfleet/internal/p2ptest"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/ticket"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// run runs `seedfleet ARGS` as the binary would, and returns its output,
// what the user sees of its error, and its exit code.
func run(t *testing.T, ctx context.Context, args ...string) (out, errOut string, code int) {
	t.Helper()
	root := newRoot()
	var o, e bytes.Buffer
	root.SetOut(&o)
	root.SetErr(&e)
	root.SetArgs(args)
	code = report(&e, ctx, root.ExecuteContext(ctx))
	return o.String(), e.String(), code
}

func newDeviceHome(t *testing.T) string {
	t.Helper()
	home := filepath.Join(t.TempDir(), "laptop")
	if _, errOut, code := run(t, context.Background(), "key", "create", "--home", home); code != 0 {
		t.Fatalf("key create: %s", errOut)
	}
	return home
}

// TestMissingHomeIsRefused: a mistyped --home is not made into a new device
// by the commands that read or write a home; they say how to create one.
func TestMissingHomeIsRefused(t *testing.T) {
	ctx := context.Background()
	var ns vault.NamespaceID
	copy(ns[:], "some vault of some other device!")
	blob, err := ticket.NewBlobTicket([32]byte{1}, 10, ticket.FormatRaw, []peer.AddrInfo{loopbackPeer(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"list", ns.String()},
		{"vault", "list"},
		{"put", ns.String(), "k", "v"},
		{"get", ns.String(), "k"},
		{"sync", ns.String()},
		{"blob", "get", blob.String()},
		{"serve", ns.String(), "--listen", "/ip4/127.0.0.1/tcp/0"},
		{"agent", "show"},
	} {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			home := filepath.Join(t.TempDir(), "lpatop")
			_, errOut, code := run(t, ctx, append(args, "--home", home)...)
			if code != 1 || !strings.Contains(errOut, "no device home in "+home) ||
				!strings.Contains(errOut, "seedfleet key create --home "+home) {
				t.Fatalf("exit %d, %q: want a refusal saying how to create the home", code, errOut)
			}
			if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the mistyped home was created: %v", err)
			}
		})
	}
	// The commands that make an identity create the home.
	home := filepath.Join(t.TempDir(), "new")
	if out, errOut, code := run(t, ctx, "vault", "create", "--home", home); code != 0 || len(strings.TrimSpace(out)) == 0 {
		t.Fatalf("vault create in a new home: exit %d, %q %q", code, out, errOut)
	}
}

// TestUnknownNamespace: a namespace the home does not know is named as such
// and the user is pointed at vault list, rather than listing nothing.
func TestUnknownNamespace(t *testing.T) {
	home := newDeviceHome(t)
	var ns vault.NamespaceID
	copy(ns[:], "some vault of some other device!")
	for _, args := range [][]string{
		{"list", ns.String()},
		{"get", ns.String(), "k"},
		{"put", ns.String(), "k", "v"},
	} {
		_, errOut, code := run(t, context.Background(), append(args, "--home", home)...)
		if code != 1 || !strings.Contains(errOut, "does not know the vault") || !strings.Contains(errOut, "seedfleet vault list --home "+home) {
			t.Errorf("%s: exit %d, %q", args[0], code, errOut)
		}
	}
	// A vault it created is listed by vault list, writable.
	created, _, _ := run(t, context.Background(), "vault", "create", "--home", home)
	out, errOut, code := run(t, context.Background(), "vault", "list", "--home", home)
	if code != 0 || !strings.Contains(out, strings.TrimSpace(created)) || !strings.Contains(out, "yes") {
		t.Fatalf("vault list: exit %d, %q %q", code, out, errOut)
	}
}

// TestHeldHomeNamesItsHolder: a home another command holds is refused with
// that command's name and PID, and what to do.
func TestHeldHomeNamesItsHolder(t *testing.T) {
	home := newDeviceHome(t)
	h, err := client.Open(home, client.HeldBy("seedfleet sync --live"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	_, errOut, code := run(t, context.Background(), "vault", "list", "--home", home)
	want := fmt.Sprintf("in use by seedfleet sync --live (pid %d)", os.Getpid())
	if code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, "another --home") {
		t.Fatalf("exit %d, %q: want %q and what to do", code, errOut, want)
	}
}

// TestHeldSeedDataDir: a second seed on a data directory is told which
// process holds it.
func TestHeldSeedDataDir(t *testing.T) {
	dir := t.TempDir()
	lock, err := dirlock.Acquire(dir, "seed node")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	_, errOut, code := run(t, context.Background(), "seednode", "--data", dir)
	want := fmt.Sprintf("seed data directory %s is in use by seed node (pid %d)", dir, os.Getpid())
	if code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, "--data") {
		t.Fatalf("exit %d, %q: want %q", code, errOut, want)
	}
}

// TestBusyAdminPort: a seed whose admin address is taken suggests
// --admin-listen. (A taken libp2p port is not an error: the seed starts on
// the transports that could listen.)
func TestBusyAdminPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Bounded: a seed that started after all would run until its context ends.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, errOut, code := run(t, ctx, "seednode", "--data", t.TempDir(),
		"--listen", "/ip4/127.0.0.1/tcp/0", "--listen-quic", "/ip4/127.0.0.1/udp/0/quic-v1",
		"--listen-ws", "/ip4/127.0.0.1/tcp/0/ws", "--admin-listen", l.Addr().String())
	if code != 1 || !strings.Contains(errOut, "address already in use") || !strings.Contains(errOut, "--admin-listen 127.0.0.1:0") {
		t.Fatalf("exit %d, %q: want a hint of --admin-listen", code, errOut)
	}
}

// TestInterruptedBlobGet: Ctrl-C during a fetch is reported as an
// interruption (with the resume hint) and exits 130, whatever the
// transport said when the context ended.
func TestInterruptedBlobGet(t *testing.T) {
	home := newDeviceHome(t)
	blob, err := ticket.NewBlobTicket([32]byte{1}, 1<<20, ticket.FormatRaw, []peer.AddrInfo{loopbackPeer(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // as a signal would
	_, errOut, code := run(t, ctx, "blob", "get", blob.String(), "--home", home)
	if code != exitInterrupted || !strings.HasPrefix(errOut, "interrupted") || !strings.Contains(errOut, "resume") {
		t.Fatalf("exit %d, %q: want 130 and \"interrupted\"", code, errOut)
	}
	if strings.Contains(errOut, "error:") {
		t.Fatalf("an interruption reported as an error: %q", errOut)
	}
}

// TestBadPeerAddress: a truncated peer ID is reported with what was parsed
// and what a valid address looks like.
func TestBadPeerAddress(t *testing.T) {
	home := newDeviceHome(t)
	created, _, _ := run(t, context.Background(), "vault", "create", "--home", home)
	ns := strings.TrimSpace(created)
	for name, args := range map[string][]string{
		"sync":   {"sync", ns, "/ip4/127.0.0.1/tcp/7400/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEpX"},
		"ticket": {"vault", "ticket", ns, "--seed", "/ip4/127.0.0.1/tcp/7400"},
		"serve":  {"serve", ns, "--via", "127.0.0.1:7400"},
	} {
		_, errOut, code := run(t, context.Background(), append(args, "--home", home)...)
		if code != 1 || !strings.Contains(errOut, "ending in /p2p/<peer ID>, e.g. /ip4/127.0.0.1/tcp/7400/p2p/") {
			t.Errorf("%s: exit %d, %q", name, code, errOut)
		}
	}
	_, errOut, _ := run(t, context.Background(), "serve", ns, "--listen", "/ip4/127.0.0.1/tcp/x", "--home", home)
	if !strings.Contains(errOut, `--listen "/ip4/127.0.0.1/tcp/x"`) || !strings.Contains(errOut, "/ip4/127.0.0.1/tcp/0") {
		t.Errorf("serve --listen: %q", errOut)
	}
}

// TestArgumentErrorsPrintUsage: `put NS` alone says what is missing and
// prints put's usage.
func TestArgumentErrorsPrintUsage(t *testing.T) {
	_, errOut, code := run(t, context.Background(), "put", "some-namespace")
	if code != 1 || !strings.Contains(errOut, "received 1") || !strings.Contains(errOut, "seedfleet put NAMESPACE KEY [VALUE]") ||
		!strings.Contains(errOut, "--file") {
		t.Fatalf("exit %d, %q: want the error and put's usage", code, errOut)
	}
}

// loopbackPeer is a listening peer on 127.0.0.1 that serves nothing.
func loopbackPeer(t *testing.T) peer.AddrInfo {
	h := p2ptest.NewHost(t, true)
	return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
}
