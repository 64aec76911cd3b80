package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/pairing"
	"github.com/seedfleet/seedfleet/seednode/sealed"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

func openHome(t *testing.T) *Home {
	t.Helper()
	h, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func newAgent(t *testing.T) (*Home, vault.NamespaceID) {
	t.Helper()
	h := openHome(t)
	a, err := h.InitAgent("laptop")
	if err != nil {
		t.Fatal(err)
	}
	return h, a.Namespace
}

func TestAgentNamespaceIsDerivedFromTheRoot(t *testing.T) {
	h, ns := newAgent(t)
	a, err := h.Agent()
	if err != nil || a.Root == nil {
		t.Fatalf("agent %+v, %v", a, err)
	}
	k1, _ := AgentNamespaceKey(a.Root)
	k2, _ := AgentNamespaceKey(a.Root)
	if !k1.Equal(k2) || vault.NamespaceID(k1.Public().(ed25519.PublicKey)) != ns {
		t.Fatal("the agent vault's namespace is not the HKDF derivation of the root key")
	}
	other, _ := identity.Generate()
	k3, _ := AgentNamespaceKey(other)
	if k3.Equal(k1) {
		t.Fatal("two roots derive the same namespace")
	}
	if _, err := h.InitAgent("again"); err == nil {
		t.Fatal("a second agent on one device was accepted")
	}
}

func TestPrivateValues(t *testing.T) {
	h, ns := newAgent(t)
	small := []byte("a small private value")
	big := bytes.Repeat([]byte("0123456789abcdef"), 10000) // a sealed blob
	for path, v := range map[string][]byte{"notes": []byte("named like the dir"), "notes/a": small, "notes/b": big, "other/c": small} {
		se, err := h.PutPrivate(ns, path, v)
		if err != nil {
			t.Fatalf("put %s: %v", path, err)
		}
		if bytes.Contains(se.Key, []byte(path)) {
			t.Fatalf("stored key of %s contains the path", path)
		}
	}
	vals, err := h.GetPrivate(ns, "notes/b")
	if err != nil || len(vals) != 1 || !vals[0].Blob {
		t.Fatalf("get big: %+v, %v", vals, err)
	}
	var out bytes.Buffer
	if err := h.ExportPrivate(vals[0], &out); err != nil || !bytes.Equal(out.Bytes(), big) {
		t.Fatalf("export big: %v (%d bytes)", err, out.Len())
	}
	list, err := h.ListPrivate(ns, "notes/", 0)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, v := range list {
		paths = append(paths, v.Path)
	}
	if len(paths) != 2 || !(paths[0] == "notes/a" || paths[1] == "notes/a") || !(paths[0] == "notes/b" || paths[1] == "notes/b") {
		t.Fatalf("list notes/: %v, want notes/a and notes/b only", paths)
	}
	if all, _ := h.ListPrivate(ns, "", 0); len(all) != 4 {
		t.Fatalf("list all: %d values, want 4 (system entries hidden)", len(all))
	}
	if _, err := h.ListPrivate(ns, "not", 0); !errors.Is(err, sealed.ErrInvalidPath) {
		t.Fatalf("list by partial segment: %v", err)
	}
}

// An authorized device can still write garbage: the reader says which value
// it cannot open instead of failing the whole read.
func TestTamperedCiphertextIsReported(t *testing.T) {
	h, ns := newAgent(t)
	kr, err := h.Keyring(ns)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := sealed.StoredKey(kr.Names(), "x")
	box, _ := sealed.SealValue(kr.Epochs[kr.Current].Content, kr.Current, ns, key, namedPlaintext("x", []byte("v")))
	box[len(box)-1] ^= 1
	if _, err := h.putPrivateRef(ns, key, vault.HashOf(box), uint64(len(box)), box); err != nil {
		t.Fatal(err)
	}
	vals, err := h.GetPrivate(ns, "x")
	if err != nil || len(vals) != 1 || !errors.Is(vals[0].Err, sealed.ErrDecrypt) {
		t.Fatalf("tampered value: %+v, %v; want ErrDecrypt", vals, err)
	}
	// A value moved under another key does not open either (the key is bound).
	other, _ := sealed.StoredKey(kr.Names(), "y")
	good, _ := sealed.SealValue(kr.Epochs[kr.Current].Content, kr.Current, ns, key, namedPlaintext("y", []byte("v")))
	if _, err := h.putPrivateRef(ns, other, vault.HashOf(good), uint64(len(good)), good); err != nil {
		t.Fatal(err)
	}
	if vals, _ := h.GetPrivate(ns, "y"); len(vals) != 1 || !errors.Is(vals[0].Err, sealed.ErrDecrypt) {
		t.Fatalf("value moved to another key: %+v", vals)
	}
}

// An envelope stored for this device but sealed to another one is refused
// with a clear error.
func TestEnvelopeForAnotherDevice(t *testing.T) {
	h, ns := newAgent(t)
	doc, a, err := h.AgentDocument()
	if err != nil {
		t.Fatal(err)
	}
	phone := openHome(t)
	phoneKey := phone.Key.Public().(ed25519.PublicKey)
	if _, err := h.ApproveDevice("phone", phoneKey); err != nil {
		t.Fatal(err)
	}
	doc, _, _ = h.AgentDocument()
	// Epoch 9 for the phone's slot, sealed to the laptop.
	env, _ := sealed.SealEnvelope(h.Key.Public().(ed25519.PublicKey), ns, sealed.EnvelopePayload{Epoch: 9})
	e := vault.Entry{Namespace: ns, Key: vault.EnvelopeKey(9, vault.AuthorID(phoneKey)), Author: vault.AuthorID(doc.Root),
		Hash: vault.HashOf(env), Size: uint64(len(env)), Timestamp: nowMicro()}
	se, _ := vault.Sign(e, a.Root, vault.AgentConsent(), nil)
	if err := h.insert(vault.Item{Entry: se, Content: env}); err != nil {
		t.Fatal(err)
	}
	// The phone gets the vault's entries as they are.
	items, _ := h.Store.List(ns, nil, 0)
	if res, err := phone.Store.Insert(items, 0, true); err != nil || res.Refused != 0 {
		t.Fatalf("copy to the phone: %+v, %v", res, err)
	}
	if _, err := phone.Keyring(ns); !errors.Is(err, sealed.ErrNotForMe) {
		t.Fatalf("phone's keyring with a foreign envelope: %v, want ErrNotForMe", err)
	}
}

// A wrong pairing code stores nothing: the document keeps its version and
// the would-be device gets no envelope.
func TestWrongPairingCodeStoresNothing(t *testing.T) {
	h, ns := newAgent(t)
	before, _, _ := h.AgentDocument()
	phone := openHome(t)
	hp, err := p2p.NewHost(p2p.HostOptions{Key: phone.Key, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer hp.Close()
	ha, err := p2p.NewHost(p2p.HostOptions{Key: h.Key})
	if err != nil {
		t.Fatal(err)
	}
	defer ha.Close()
	code, _ := pairing.NewCode()
	wrong, _ := pairing.NewCode()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go phone.AwaitPairing(ctx, hp, code, "phone")
	time.Sleep(100 * time.Millisecond)
	_, _, err = h.ApprovePairing(ctx, ha, peer.AddrInfo{ID: hp.ID(), Addrs: hp.Addrs()}, wrong, nil)
	if !errors.Is(err, pairing.ErrWrongCode) {
		t.Fatalf("approve with a wrong code: %v, want ErrWrongCode", err)
	}
	after, _, _ := h.AgentDocument()
	if after.Version != before.Version || len(after.Devices) != 1 {
		t.Fatalf("document changed after a wrong code: version %d -> %d", before.Version, after.Version)
	}
	envs, _ := h.Store.List(ns, vault.EnvelopePrefix(), 0)
	for _, it := range envs {
		if _, dev, _ := vault.ParseEnvelopeKey(it.Entry.Key); dev == vault.AuthorID(phone.Key.Public().(ed25519.PublicKey)) {
			t.Fatal("an envelope was sealed to the device that gave a wrong code")
		}
	}
	if _, err := phone.Agent(); !errors.Is(err, ErrNoAgent) {
		t.Fatalf("the waiting device joined after a wrong code: %v", err)
	}
}

// The keyring a home keeps follows the vault's system entries: a revocation
// (a new epoch) is seen at once, values sealed afterwards use the new
// epoch, and a device whose envelopes arrive later (as a sync brings them)
// gets its keyring then, not the refusal it got before.
func TestKeyringFollowsNewEpochs(t *testing.T) {
	h, ns := newAgent(t)
	kr, err := h.Keyring(ns)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := h.Keyring(ns); again != kr {
		t.Fatal("the keyring is opened again with no change to the vault's system entries")
	}
	first := kr.Current
	phone := openHome(t)
	copyVault := func() {
		t.Helper()
		items, _ := h.Store.List(ns, nil, 0)
		if res, err := phone.Store.Insert(items, 0, true); err != nil || res.Refused != 0 {
			t.Fatalf("copy to the phone: %+v, %v", res, err)
		}
	}
	copyVault()
	if _, err := phone.Keyring(ns); !errors.Is(err, ErrNoEnvelope) {
		t.Fatalf("the phone's keyring before its approval: %v, want ErrNoEnvelope", err)
	}
	if _, err := h.ApproveDevice("phone", phone.Key.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	copyVault()
	if pkr, err := phone.Keyring(ns); err != nil || pkr.Current != first {
		t.Fatalf("the phone's keyring once its envelope arrived: %+v, %v", pkr, err)
	}
	tablet := openHome(t)
	if _, err := h.ApproveDevice("tablet", tablet.Key.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.RevokeDevice("tablet"); err != nil {
		t.Fatal(err)
	}
	kr, err = h.Keyring(ns)
	if err != nil || kr.Current != first+1 {
		t.Fatalf("after a revocation the keyring's epoch is %d (%v), want %d", kr.Current, err, first+1)
	}
	if _, err := h.PutPrivate(ns, "after/revocation", []byte("sealed with the new epoch")); err != nil {
		t.Fatal(err)
	}
	copyVault()
	vals, err := phone.GetPrivate(ns, "after/revocation")
	if err != nil || len(vals) != 1 || vals[0].Err != nil || vals[0].Epoch != first+1 || string(vals[0].Value) != "sealed with the new epoch" {
		t.Fatalf("the phone reads the value sealed after the revocation: %+v, %v", vals, err)
	}
}
