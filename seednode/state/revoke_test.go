//go:build cgo

package state

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// TestRevokedDeviceChangeIsAbsentEverywhere: the laptop revokes the tablet;
// the tablet, not knowing yet, changes a document offline and tries to sync
// the change to the laptop directly and (a copy of its home) to the seed;
// the same entries handed straight to the seed's and the laptop's stores are
// refused too. After everyone syncs, the laptop, the phone and the seed hold
// none of the tablet's later entries, and the laptop's and the phone's
// documents are equal, keep the tablet's change from before the revocation
// and lack its later one.
func TestRevokedDeviceChangeIsAbsentEverywhere(t *testing.T) {
	homes, ns := agentDevices(t, "laptop", "phone", "tablet")
	laptop, phone, tablet := homes[0], homes[1], homes[2]
	seed, _ := startSeedNode(t, ns)
	seedAddr := seed.Addrs()[0].String()
	const doc = "conversations/c1"
	say := func(h *client.Home, from, text string, extra Path) {
		t.Helper()
		mustChange(t, mustOpen(t, h, ns, doc), func(tx *Tx) error {
			return firstErr(tx.Append(Path{"messages"}, map[string]any{"from": from, "text": text}), tx.Set(extra, text))
		})
	}
	say(laptop, "laptop", "hello", Path{"title"})
	syncAll := func() {
		for _, h := range []*client.Home{laptop, phone, laptop} { // the laptop again: it then has everything
			syncWith(t, h, ns, seedAddr)
		}
	}
	syncWith(t, laptop, ns, seedAddr)
	syncWith(t, tablet, ns, seedAddr)
	say(tablet, "tablet", "before revocation", Path{"tablet_early"})
	syncWith(t, tablet, ns, seedAddr)
	syncAll()

	revoked, err := laptop.RevokeDevice("tablet")
	if err != nil {
		t.Fatal(err)
	}
	revokedAt := revoked.Revoked[0].RevokedAt
	syncAll()

	// The tablet has not heard of it: its change is stored on the tablet.
	say(tablet, "tablet", "after revocation", Path{"tablet_late"})
	late := entriesSince(t, tablet.Store, ns, tablet.Author(), revokedAt)
	if len(late) == 0 {
		t.Fatal("the tablet did not store its change")
	}
	tablet, tabletCopy := copyHome(t, tablet)

	// The tablet syncs with the laptop directly, its copy with the seed:
	// both learn of the revocation.
	laptopAddr, stopServing := serve(t, laptop, ns)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := tablet.Sync(ctx, ns, laptopAddr, client.SyncOptions{}); !errors.Is(err, client.ErrDeviceRevoked) {
		t.Fatalf("the revoked tablet's sync with the laptop: %v, want ErrDeviceRevoked", err)
	}
	stopServing()
	if _, err := tabletCopy.Sync(ctx, ns, seedAddr, client.SyncOptions{}); !errors.Is(err, client.ErrDeviceRevoked) {
		t.Fatalf("the revoked tablet's sync with the seed: %v, want ErrDeviceRevoked", err)
	}
	// A tablet that ignored the revocation and pushed its entries anyway
	// reaches what a session hands them to: the store, which refuses them.
	for name, s := range map[string]*vault.Store{"seed": seed.Store(), "laptop": laptop.Store} {
		res, err := s.Insert(late, vault.NewOrigin(), true)
		if err != nil || res.Stored != 0 || res.Refused != len(late) || !errors.Is(res.FirstRefusal, identity.ErrKeyRevoked) {
			t.Fatalf("the %s's store took the revoked tablet's entries: %+v, %v", name, res, err)
		}
	}

	syncAll()
	for name, s := range map[string]*vault.Store{"seed": seed.Store(), "laptop": laptop.Store, "phone": phone.Store} {
		if n := len(entriesSince(t, s, ns, tablet.Author(), revokedAt)); n != 0 {
			t.Errorf("the %s holds %d entries the tablet wrote after its revocation", name, n)
		}
		if n := len(entriesSince(t, s, ns, tablet.Author(), 0)); n == 0 {
			t.Errorf("the %s lost the tablet's entries from before its revocation", name)
		}
	}
	want, wantHeads := docState(t, mustOpen(t, laptop, ns, doc))
	assertSameDoc(t, "the phone's document", mustOpen(t, phone, ns, doc), want, wantHeads)
	for _, s := range []string{"hello", "before revocation", "tablet_early"} {
		if !strings.Contains(want, s) {
			t.Errorf("the document lacks %q: %s", s, want)
		}
	}
	for _, s := range []string{"after revocation", "tablet_late"} {
		if strings.Contains(want, s) {
			t.Errorf("the document holds the revoked tablet's %q: %s", s, want)
		}
	}
}

// entriesSince lists the items of ns in s that author wrote at or after
// the time since (µs).
func entriesSince(t *testing.T, s *vault.Store, ns vault.NamespaceID, author vault.AuthorID, since uint64) []vault.Item {
	t.Helper()
	items, err := s.List(ns, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []vault.Item
	for _, it := range items {
		if it.Entry.Author == author && it.Entry.Timestamp >= since {
			out = append(out, it)
		}
	}
	return out
}

// copyHome closes h, copies its directory and opens both: two homes of
// the same device, with the same key and store.
func copyHome(t *testing.T, h *client.Home) (*client.Home, *client.Home) {
	t.Helper()
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(h.Dir)); err != nil {
		t.Fatal(err)
	}
	// CopyFS makes files readable by all: keys keep their modes.
	err := filepath.WalkDir(h.Dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(h.Dir, path)
		return os.Chmod(filepath.Join(dir, rel), info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []*client.Home
	for _, d := range []string{h.Dir, dir} {
		o, err := client.Open(d)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { o.Close() })
		out = append(out, o)
	}
	return out[0], out[1]
}

// serve makes h answer sync sessions for ns on loopback until the
// returned stop is called (or the test ends); it returns h's address.
func serve(t *testing.T, h *client.Home, ns vault.NamespaceID) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan string, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := h.Serve(ctx, client.ServeOptions{Vaults: []vault.NamespaceID{ns}, Listen: []string{"/ip4/127.0.0.1/tcp/0"},
			NoRendezvous: true, Reachable: func(a []string) {
				if len(a) > 0 {
					select {
					case addrs <- a[0]:
					default:
					}
				}
			}})
		if err != nil && ctx.Err() == nil {
			t.Errorf("serve: %v", err)
		}
	}()
	stop := func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	select {
	case a := <-addrs:
		return a, stop
	case <-time.After(time.Minute):
		stop()
		t.Fatal("the device never reported an address")
		return "", nil
	}
}
