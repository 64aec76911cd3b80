package vault

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/seednode/identity"
)

// agentFixture is an agent vault: a root key, the namespace key, and devices.
type agentFixture struct {
	root  ed25519.PrivateKey
	nsKey ed25519.PrivateKey
	ns    NamespaceID
	doc   *identity.AgentDocument
	devs  map[string]*writer
	ts    uint64
}

func newAgentFixture(t *testing.T, rng *rand.Rand, devices ...string) *agentFixture {
	t.Helper()
	a := &agentFixture{root: newNamespaceKey(rng), nsKey: newNamespaceKey(rng), devs: map[string]*writer{}, ts: nowMicros() - 10_000_000}
	a.ns = NamespaceID(a.nsKey.Public().(ed25519.PublicKey))
	a.doc = identity.NewAgentDocument(a.root.Public().(ed25519.PublicKey), time.UnixMicro(int64(a.ts)))
	for _, name := range devices {
		w := newWriter(t, a.nsKey, rng)
		w.consent = AgentConsent()
		a.devs[name] = w
		if err := a.doc.AddDevice(name, w.authorKey.Public().(ed25519.PublicKey), time.UnixMicro(int64(a.ts))); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// docItem signs doc into the vault (root author, namespace signature).
func (a *agentFixture) docItem(t *testing.T, doc *identity.AgentDocument, signer ed25519.PrivateKey, nsKey ed25519.PrivateKey) Item {
	t.Helper()
	raw, err := doc.Sign(signer)
	if err != nil {
		t.Fatal(err)
	}
	a.ts++
	e := Entry{Namespace: a.ns, Key: AgentDocKey, Author: AuthorID(signer.Public().(ed25519.PublicKey)), Hash: HashOf(raw), Size: uint64(len(raw)), Timestamp: a.ts}
	se, err := Sign(e, signer, Consent{Kind: ConsentNamespaceSig}, nsKey)
	if err != nil {
		t.Fatal(err)
	}
	return Item{Entry: se, Content: raw}
}

func (a *agentFixture) put(t *testing.T, dev, key, value string, ts uint64) Item {
	t.Helper()
	return a.devs[dev].item(t, key, value, ts)
}

func wantRefused(t *testing.T, res InsertResult, target error, text string) {
	t.Helper()
	if res.Refused != 1 || res.Stored != 0 {
		t.Fatalf("stored %d, refused %d: want the item refused", res.Stored, res.Refused)
	}
	if !errors.Is(res.FirstRefusal, target) || !strings.Contains(res.FirstRefusal.Error(), text) {
		t.Fatalf("refusal %q, want %v mentioning %q", res.FirstRefusal, target, text)
	}
}

func TestAgentVaultEnforcesDocument(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	a := newAgentFixture(t, rng, "laptop", "phone")
	st := testStore(t, StoreOptions{})

	// Before any document, agent-consented entries have nothing to be checked against.
	wantRefused(t, insert(t, st, a.put(t, "laptop", "k", "early", a.ts)), ErrNotAuthorized, "no agent document")

	doc1 := a.docItem(t, a.doc, a.root, a.nsKey)
	if res := insert(t, st, doc1); res.Stored != 1 {
		t.Fatalf("agent document not stored: %+v", res)
	}
	if got, err := st.AgentDocument(a.ns); err != nil || got == nil || got.Version != 1 {
		t.Fatalf("AgentDocument = %v, %v", got, err)
	}
	if res := insert(t, st, a.put(t, "laptop", "k", "v1", a.ts+1), a.put(t, "phone", "k", "v2", a.ts+2)); res.Stored != 2 {
		t.Fatalf("listed devices' entries: %+v", res)
	}

	stranger := newWriter(t, a.nsKey, rng)
	stranger.consent = AgentConsent()
	wantRefused(t, insert(t, st, stranger.item(t, "k", "x", a.ts+3)), identity.ErrKeyNotListed, "not listed")
	// A capability signed by the namespace key does not bypass the document.
	capWriter := newWriter(t, a.nsKey, rng)
	wantRefused(t, insert(t, st, capWriter.item(t, "k", "x", a.ts+3)), ErrNotAuthorized, "not listed")
	// Reserved keys are the root's.
	wantRefused(t, insert(t, st, a.put(t, "laptop", string(EnvelopeKey(1, a.devs["laptop"].author)), "x", a.ts+3)), ErrNotAuthorized, "root key only")

	t.Run("forged and replayed documents", func(t *testing.T) {
		other := newNamespaceKey(rng)
		forged := a.doc.Next(time.Now())
		forged.Root = other.Public().(ed25519.PublicKey)
		cases := []struct {
			name string
			item Item
			err  error
			text string
		}{
			{"other root", a.docItem(t, forged, other, a.nsKey), identity.ErrOtherAgent, "another agent"},
			{"replayed version", a.docItem(t, a.doc, a.root, a.nsKey), identity.ErrStaleDocument, "version 1"},
		}
		// A document whose signature was tampered with.
		tampered := a.docItem(t, a.doc.Next(time.Now()), a.root, a.nsKey)
		tampered.Content = append([]byte(nil), tampered.Content...)
		tampered.Content[len(tampered.Content)-1] ^= 1
		tampered.Entry.Hash = HashOf(tampered.Content)
		tampered.Entry, _ = Sign(tampered.Entry.Entry, a.root, Consent{Kind: ConsentNamespaceSig}, a.nsKey)
		cases = append(cases, struct {
			name string
			item Item
			err  error
			text string
		}{"bad root signature", tampered, identity.ErrAgentSignature, "signature"})
		// Without the namespace's own signature, a root cannot claim a vault.
		noNS := a.docItem(t, a.doc.Next(time.Now()), a.root, a.nsKey)
		noNS.Entry.Consent = NewCapability(a.nsKey, noNS.Entry.Author, 0)
		cases = append(cases, struct {
			name string
			item Item
			err  error
			text string
		}{"capability instead of namespace signature", noNS, ErrNotAuthorized, "namespace signature"})
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				wantRefused(t, insert(t, st, c.item), c.err, c.text)
				if got, _ := st.AgentDocument(a.ns); got.Version != 1 || !got.Root.Equal(a.doc.Root) {
					t.Fatalf("held document changed to %+v", got)
				}
			})
		}
	})

	t.Run("revocation purges later entries and refuses new ones", func(t *testing.T) {
		revokedAt := a.ts + 100
		// The phone wrote once before and once after the time it is revoked at.
		if res := insert(t, st, a.put(t, "phone", "before", "ok", revokedAt-1), a.put(t, "phone", "after", "gone", revokedAt+5)); res.Stored != 2 {
			t.Fatalf("%+v", res)
		}
		before, _ := st.Stats(a.ns)
		oldDoc, _ := st.Get(a.ns, AgentDocKey)
		doc2 := a.doc.Next(time.UnixMicro(int64(revokedAt)))
		if err := doc2.Revoke(a.devs["phone"].authorKey.Public().(ed25519.PublicKey), time.UnixMicro(int64(revokedAt))); err != nil {
			t.Fatal(err)
		}
		a.ts = revokedAt
		res := insert(t, st, a.docItem(t, doc2, a.root, a.nsKey))
		if res.Stored != 1 || res.Purged != 1 {
			t.Fatalf("revoking document: %+v, want stored 1 and purged 1", res)
		}
		after, _ := st.Stats(a.ns)
		// The new document replaces the old one in its slot; one entry is purged.
		if after.Entries != before.Entries-1 || after.Bytes != before.Bytes-uint64(len("gone"))+uint64(len(res.StoredItems[0].Content))-oldDoc[0].Entry.Size {
			t.Fatalf("entries %d -> %d, bytes %d -> %d: want exactly the one entry purged", before.Entries, after.Entries, before.Bytes, after.Bytes)
		}
		checkAggregates(t, st, a.ns)
		if items, _ := st.Get(a.ns, []byte("after")); len(items) != 0 {
			t.Fatal("the entry the revoked key stamped after its revocation is still stored")
		}
		if items, _ := st.Get(a.ns, []byte("before")); len(items) != 1 {
			t.Fatal("the entry the key wrote before its revocation was purged")
		}
		wantRefused(t, insert(t, st, a.put(t, "phone", "k", "late", revokedAt+10)), identity.ErrKeyRevoked, "revoked")
		if res := insert(t, st, a.put(t, "laptop", "k", "still", revokedAt+10)); res.Stored != 1 {
			t.Fatalf("the remaining device is refused: %+v", res)
		}
	})
}

// A device that knows nothing syncs an agent vault: the document must reach
// it before the entries it authorizes, whatever their order in the trie.
func TestAgentVaultSyncsDocumentFirst(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	a := newAgentFixture(t, rng, "laptop")
	seed := testStore(t, StoreOptions{NoSync: true})
	insert(t, seed, a.docItem(t, a.doc, a.root, a.nsKey))
	var items []Item
	for i := range 8000 {
		items = append(items, a.put(t, "laptop", "key/"+string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676)), "v", a.ts+uint64(i)))
	}
	if res := insert(t, seed, items...); res.Refused != 0 {
		t.Fatalf("%+v", res)
	}
	{
		dev := testStore(t, StoreOptions{NoSync: true})
		hs, hd := testHost(t), testHost(t)
		newTestService(t, hs, seed, WithPolicy(NewHostedSet(a.ns)))
		dsvc := newTestService(t, hd, dev, WithPolicy(NewHostedSet(a.ns)))
		connect(t, hd, hs)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		st, err := dsvc.Sync(ctx, hs.ID(), a.ns, SyncOptions{})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if st.Refused != 0 {
			t.Fatalf("device refused %d entries: %s", st.Refused, st.FirstRefusal)
		}
		sameVault(t, seed, dev, a.ns)
	}
}

// A revoked device that ignores the new document and pushes its write
// anyway is refused by the seed, which says why.
func TestSeedRefusesRevokedDeviceOnTheWire(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	a := newAgentFixture(t, rng, "laptop", "phone")
	seed := testStore(t, StoreOptions{})
	revokedAt := a.ts + 50
	doc2 := a.doc.Next(time.UnixMicro(int64(revokedAt)))
	if err := doc2.Revoke(a.devs["phone"].authorKey.Public().(ed25519.PublicKey), time.UnixMicro(int64(revokedAt))); err != nil {
		t.Fatal(err)
	}
	insert(t, seed, a.docItem(t, a.doc, a.root, a.nsKey))
	insert(t, seed, a.docItem(t, doc2, a.root, a.nsKey))
	hs := testHost(t)
	newTestService(t, hs, seed, WithPolicy(NewHostedSet(a.ns)))

	late := a.put(t, "phone", "late", "pushed after the revocation", revokedAt+1)
	r := dialRaw(t, hs)
	r.hello(a.ns)
	r.author(&late.Entry)
	r.items(0, late)
	r.frame(frameEndTurn, nil)
	r.flush()
	_ = r.s.SetReadDeadline(time.Now().Add(10 * time.Second))
	fr := frameReader{r: bufio.NewReader(r.s)}
	for {
		typ, p, err := fr.next()
		if err != nil {
			t.Fatalf("no refusal from the seed: %v", err)
		}
		if typ == frameRefused {
			if !strings.Contains(string(p), "revoked") || !strings.Contains(string(p), "phone") {
				t.Fatalf("refusal %q does not say the key was revoked", p)
			}
			break
		}
	}
	if items, _ := seed.Get(a.ns, []byte("late")); len(items) != 0 {
		t.Fatal("the seed stored the revoked device's write")
	}
}

// An agent document the vault's quota refuses is not applied: the entries
// after it in the batch are checked against the document the vault holds,
// and the held document stays the stored one.
func TestAgentDocumentRefusedByQuotaIsNotApplied(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	a := newAgentFixture(t, rng, "laptop", "phone")
	var maxBytes uint64
	st := testStore(t, StoreOptions{LimitsFor: func(NamespaceID) Limits { return Limits{MaxBytes: maxBytes} }})
	doc1 := a.docItem(t, a.doc, a.root, a.nsKey)
	revokedAt := a.ts + 100
	doc2 := a.doc.Next(time.UnixMicro(int64(revokedAt)))
	if err := doc2.Revoke(a.devs["phone"].authorKey.Public().(ed25519.PublicKey), time.UnixMicro(int64(revokedAt))); err != nil {
		t.Fatal(err)
	}
	// The second document also lists a new device, so it is larger.
	tablet := newWriter(t, a.nsKey, rng)
	if err := doc2.AddDevice("tablet", tablet.authorKey.Public().(ed25519.PublicKey), time.UnixMicro(int64(revokedAt))); err != nil {
		t.Fatal(err)
	}
	doc2Item := a.docItem(t, doc2, a.root, a.nsKey)
	// Room for the first document and a few bytes of values, not for the
	// second one.
	maxBytes = doc1.Entry.Size + 10
	if doc2Item.Entry.Size <= maxBytes {
		t.Fatalf("the revoking document (%d bytes) fits the quota of %d", doc2Item.Entry.Size, maxBytes)
	}
	if res := insert(t, st, doc1); res.Stored != 1 {
		t.Fatalf("first document: %+v", res)
	}
	res := insert(t, st, doc2Item, a.put(t, "phone", "p", "x", revokedAt+5), a.put(t, "laptop", "l", "ok", revokedAt+5))
	if res.Refused != 1 || !errors.Is(res.FirstRefusal, ErrQuota) || res.Stored != 2 || res.Purged != 0 {
		t.Fatalf("batch: %+v; want the document refused for quota and both entries stored", res)
	}
	if got, err := st.AgentDocument(a.ns); err != nil || got.Version != 1 {
		t.Fatalf("held document: %+v, %v; want the stored version 1", got, err)
	}
	checkAggregates(t, st, a.ns)
}

// TestAgentDocumentKeepsNothingForUnboundVaults: reading the document of
// vaults that have none (a seed does it for every hosted vault when it
// starts) leaves nothing behind per vault; a write to such a vault
// remembers it is unbound, and the answers stay right.
func TestAgentDocumentKeepsNothingForUnboundVaults(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	st := testStore(t, StoreOptions{})
	for range 100 {
		var ns NamespaceID
		for i := range ns {
			ns[i] = byte(rng.Uint32())
		}
		if doc, err := st.AgentDocument(ns); err != nil || doc != nil {
			t.Fatalf("empty vault: document %v, %v", doc, err)
		}
	}
	if n := len(st.agents); n != 0 {
		t.Fatalf("%d vaults remembered after reading empty vaults' documents, want none", n)
	}
	w := newWriter(t, newNamespaceKey(rng), rng)
	insert(t, st, w.item(t, "k", "v", nowMicros()))
	if doc, ok := st.agents[w.ns]; !ok || doc != nil {
		t.Fatalf("a written unbound vault is not remembered as unbound: %v, %v", doc, ok)
	}
	if doc, err := st.AgentDocument(w.ns); err != nil || doc != nil {
		t.Fatalf("written unbound vault: document %v, %v", doc, err)
	}
}
