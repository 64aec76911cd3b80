package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/seednode/blobs"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/pairing"
	"github.com/seedfleet/seedfleet/seednode/sealed"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// device is a device home with a libp2p host on loopback for pairing.
type device struct {
	*client.Home
	host host.Host
}

func newDevice(t *testing.T) *device {
	t.Helper()
	h, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	hst, err := p2p.NewHost(p2p.HostOptions{Key: h.Key, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hst.Close() })
	return &device{Home: h, host: hst}
}

// pair runs the real pairing flow: newDev waits with a fresh code, root
// approves it, newDev joins and syncs from the seed.
func pair(t *testing.T, root, newDev *device, name string, seedAddr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, err := pairing.NewCode()
	if err != nil {
		t.Fatal(err)
	}
	joined := make(chan error, 1)
	go func() {
		_, err := newDev.AwaitPairing(ctx, newDev.host, code, name)
		joined <- err
	}()
	req, key, err := root.ApprovePairing(ctx, root.host, peer.AddrInfo{ID: newDev.host.ID(), Addrs: newDev.host.Addrs()}, code, nil)
	if err != nil {
		t.Fatalf("approve: %v", err)
	}
	if req.Name != name || !key.Equal(newDev.Key.Public()) {
		t.Fatalf("approved %q %x, want %q and the new device's key", req.Name, key, name)
	}
	if err := <-joined; err != nil {
		t.Fatalf("await pairing: %v", err)
	}
	a, err := newDev.Agent()
	if err != nil || a.Device != name || len(a.Seeds) != 1 || a.Seeds[0] != seedAddr {
		t.Fatalf("joined agent %+v, %v", a, err)
	}
	syncOK(t, newDev, a.Namespace, seedAddr)
}

func syncOK(t *testing.T, d *device, ns vault.NamespaceID, addr string) vault.SyncStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := d.Sync(ctx, ns, addr, client.SyncOptions{})
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return st
}

// read returns the single value of path, decrypted.
func read(t *testing.T, d *device, ns vault.NamespaceID, path string) ([]byte, error) {
	t.Helper()
	vals, err := d.GetPrivate(ns, path)
	if err != nil {
		return nil, err
	}
	if len(vals) != 1 {
		t.Fatalf("%s: %d values, want 1", path, len(vals))
	}
	if vals[0].Err != nil {
		return nil, vals[0].Err
	}
	if vals[0].Path != path {
		t.Fatalf("value stored under %q decrypts as path %q", path, vals[0].Path)
	}
	if vals[0].Blob {
		var b bytes.Buffer
		err := d.ExportPrivate(vals[0], &b)
		return b.Bytes(), err
	}
	return vals[0].Value, nil
}

func mustRead(t *testing.T, d *device, ns vault.NamespaceID, path string, want []byte) {
	t.Helper()
	got, err := read(t, d, ns, path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %s: %d bytes, not the %d written", path, len(got), len(want))
	}
}

// grepDir reports which needles occur in any file under dir.
func grepDir(t *testing.T, dir string, needles ...string) []string {
	t.Helper()
	var found []string
	seen := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if !seen[n] && bytes.Contains(data, []byte(n)) {
				seen[n] = true
				found = append(found, n+" in "+filepath.Base(p))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestAgentEndToEnd is the agent story through a real seed: device A makes
// the agent, pairs B, both write and read each other's values through the
// seed, whose data directory holds no plaintext; A revokes B, and the seed
// refuses B's next write, B cannot read what is written afterwards, while
// A and a newly paired C can read everything.
func TestAgentEndToEnd(t *testing.T) {
	seedDir := t.TempDir()
	seed := startNode(t, Config{DataDir: seedDir, AdminListen: "off"})
	seedAddr := seed.Addrs()[0].String()

	A := newDevice(t)
	info, err := A.InitAgent("laptop")
	if err != nil {
		t.Fatal(err)
	}
	ns := info.Namespace
	if err := A.SetAgentSeeds([]string{seedAddr}); err != nil {
		t.Fatal(err)
	}
	// A project vault, listed in the agent's encrypted catalog.
	work, err := A.CreateProject("work")
	if err != nil {
		t.Fatal(err)
	}
	seed.SetHostedVaults([]vault.NamespaceID{ns, work.Namespace})
	workPlan := []byte("work-plaintext-2e9d: the project plan")
	if _, err := A.PutPrivate(work.Namespace, "plan", workPlan); err != nil {
		t.Fatal(err)
	}
	syncOK(t, A, work.Namespace, seedAddr)

	// Values a seed must never see: inline, a blob, and the paths themselves.
	alpha := []byte("alpha-plaintext-7f3c: the laptop's note")
	big := bytes.Repeat([]byte("bigblob-plaintext-91d2 "), 12000) // ~270 KiB: a sealed blob
	bravo := []byte("bravo-plaintext-c4e8: the phone's note")
	for path, v := range map[string][]byte{"notes/alpha-secret-name": alpha, "files/big-secret-name": big} {
		if _, err := A.PutPrivate(ns, path, v); err != nil {
			t.Fatalf("put %s: %v", path, err)
		}
	}
	syncOK(t, A, ns, seedAddr)

	B := newDevice(t)
	pair(t, A, B, "phone", seedAddr)
	mustRead(t, B, ns, "notes/alpha-secret-name", alpha)
	// B discovers the project in the catalog and syncs it.
	if ps, err := B.Projects(); err != nil || len(ps) != 1 || ps[0].Name != "work" || ps[0].Namespace != work.Namespace {
		t.Fatalf("B's view of the catalog: %+v, %v", ps, err)
	}
	syncOK(t, B, work.Namespace, seedAddr)
	mustRead(t, B, work.Namespace, "plan", workPlan)
	// The blob came as an entry only; B fetches it from the seed.
	vals, err := B.GetPrivate(ns, "files/big-secret-name")
	if err != nil || len(vals) != 1 || !vals[0].Blob {
		t.Fatalf("big value on B: %+v, %v", vals, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seedInfo, _ := p2p.ParsePeerAddr(seedAddr)
	if _, err := B.FetchBlob(ctx, []peer.AddrInfo{seedInfo}, vals[0].Entry.Hash, blobsFetchOptions(vals[0].Entry.Size)); err != nil {
		t.Fatalf("fetch the sealed blob from the seed: %v", err)
	}
	mustRead(t, B, ns, "files/big-secret-name", big)

	if _, err := B.PutPrivate(ns, "notes/bravo-secret-name", bravo); err != nil {
		t.Fatal(err)
	}
	if st := syncOK(t, B, ns, seedAddr); st.PeerRefused != 0 {
		t.Fatalf("seed refused B's write: %s", st.PeerRefusal)
	}
	syncOK(t, A, ns, seedAddr)
	mustRead(t, A, ns, "notes/bravo-secret-name", bravo)

	// The seed holds ciphertext only: no value, no path, in any file.
	seed.Store().Sync()
	if found := grepDir(t, seedDir, "alpha-plaintext", "bravo-plaintext", "bigblob-plaintext", "work-plaintext", "secret-name", "notes/", "catalog/"); len(found) > 0 {
		t.Fatalf("plaintext in the seed's data directory: %v", found)
	}

	// Revoke B.
	doc, err := A.RevokeDevice("phone")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := doc.Device(B.Key.Public().(ed25519.PublicKey)); ok || len(doc.Revoked) != 1 {
		t.Fatalf("document after revocation: %+v", doc)
	}
	syncOK(t, A, ns, seedAddr)

	// B has not heard of it: its write is stored locally. Its next sync
	// brings the new document first, which drops the write, and says why.
	if _, err := B.PutPrivate(ns, "notes/bravo-after", []byte("written after the revocation")); err != nil {
		t.Fatalf("B's local write (B does not know yet): %v", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	st, err := B.Sync(ctx2, ns, seedAddr, client.SyncOptions{})
	if !errors.Is(err, client.ErrDeviceRevoked) || !errors.Is(err, identity.ErrKeyRevoked) || st.Purged != 1 {
		t.Fatalf("revoked B's sync: purged %d, err %v; want ErrDeviceRevoked and its write dropped", st.Purged, err)
	}
	if items, _ := seed.Store().List(ns, nil, 0); len(items) == 0 {
		t.Fatal("seed lost its entries")
	} else {
		for _, it := range items {
			if it.Entry.Author == B.Author() && it.Entry.Timestamp >= doc.Revoked[0].RevokedAt {
				t.Fatal("the seed holds a write B made after its revocation")
			}
		}
	}
	// Holding the new document, B refuses to write at all.
	if _, err := B.PutPrivate(ns, "notes/bravo-again", []byte("x")); !errors.Is(err, identity.ErrKeyRevoked) {
		t.Fatalf("B's write after learning of its revocation: %v, want ErrKeyRevoked", err)
	}

	// A writes in the new epoch; B gets the entry but cannot open it.
	charlie := []byte("after-revocation-plaintext-5b1a")
	if _, err := A.PutPrivate(ns, "notes/after", charlie); err != nil {
		t.Fatal(err)
	}
	workNext := []byte("work-plaintext-after: the plan, revised")
	if _, err := A.PutPrivate(work.Namespace, "plan", workNext); err != nil {
		t.Fatal(err)
	}
	syncOK(t, A, ns, seedAddr)
	syncOK(t, A, work.Namespace, seedAddr)
	for _, v := range []vault.NamespaceID{ns, work.Namespace} {
		if _, err := B.Sync(ctx2, v, seedAddr, client.SyncOptions{}); !errors.Is(err, client.ErrDeviceRevoked) {
			t.Fatalf("revoked B's sync of %s: %v", v.Short(), err)
		}
	}
	if _, err := read(t, B, work.Namespace, "plan"); !errors.Is(err, sealed.ErrNoKey) {
		t.Fatalf("revoked B reading the project's new epoch: %v, want ErrNoKey", err)
	}
	if _, err := read(t, B, ns, "notes/after"); !errors.Is(err, sealed.ErrNoKey) {
		t.Fatalf("revoked B reading a value of the new epoch: %v, want ErrNoKey", err)
	}
	mustRead(t, B, ns, "notes/alpha-secret-name", alpha) // what it had access to stays readable
	mustRead(t, A, ns, "notes/after", charlie)

	// A newly paired C reads everything, old epochs included.
	C := newDevice(t)
	pair(t, A, C, "tablet", seedAddr)
	mustRead(t, C, ns, "notes/after", charlie)
	mustRead(t, C, ns, "notes/alpha-secret-name", alpha)
	mustRead(t, C, ns, "notes/bravo-secret-name", bravo)
	syncOK(t, C, work.Namespace, seedAddr)
	mustRead(t, C, work.Namespace, "plan", workNext)
	if vals, _ := C.GetPrivate(ns, "notes/bravo-after"); len(vals) != 0 {
		t.Fatal("the revoked device's refused write reached C")
	}
	if found := grepDir(t, seedDir, "after-revocation-plaintext", "written after"); len(found) > 0 {
		t.Fatalf("plaintext in the seed's data directory: %v", found)
	}

	// The seed's rendezvous and relay follow the document.
	waitFor(t, func() bool {
		return agentAuthorizer{seed}.Authorized(info.DID, B.Key.Public().(ed25519.PublicKey)) != nil
	})
	if err := (agentAuthorizer{seed}).Authorized(info.DID, B.Key.Public().(ed25519.PublicKey)); !errors.Is(err, identity.ErrKeyRevoked) {
		t.Fatalf("rendezvous authorizer for revoked B: %v", err)
	}
	if err := (agentAuthorizer{seed}).Authorized(info.DID, C.Key.Public().(ed25519.PublicKey)); err != nil {
		t.Fatalf("rendezvous authorizer for C: %v", err)
	}
	if seed.acl.Allowed(B.host.ID()) || !seed.acl.Allowed(C.host.ID()) {
		t.Fatal("relay ACL does not follow the agent document (B revoked, C paired)")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func blobsFetchOptions(size uint64) blobs.FetchOptions {
	return blobs.FetchOptions{Size: &size, MaxSize: size}
}
