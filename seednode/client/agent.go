package client

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/sealed"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// An agent on a device:
//
//	agent.json   the agent this device acts for: DID, vault namespace, this
//	             device's fragment name, seed addresses (not secret)
//	agent.key    the agent's root key, only on the device that created the
//	             agent (it approves and revokes devices), 0600
//
// The agent's vault is private: every value is sealed with the vault's
// content key, every key is a keyed tag of its path, and each device gets
// the content keys in envelopes sealed to its own key.

// ErrNoAgent is returned when the home acts for no agent yet.
var ErrNoAgent = errors.New("this device acts for no agent: run `seedfleet agent init` (first device) or `seedfleet device pair` (others)")

// ErrNotRootDevice is returned for operations that need the agent's root key.
var ErrNotRootDevice = errors.New("this device does not hold the agent's root key: approve and revoke devices on the device that created the agent")

// AgentInfo is the agent a home acts for.
type AgentInfo struct {
	DID       string             `json:"did"`
	Namespace vault.NamespaceID  `json:"-"`
	NS        string             `json:"namespace"`
	Device    string             `json:"device"`
	Seeds     []string           `json:"seeds,omitempty"`
	Root      ed25519.PrivateKey `json:"-"` // nil unless this device holds the root key
}

func (h *Home) agentPath() string    { return filepath.Join(h.Dir, "agent.json") }
func (h *Home) agentKeyPath() string { return filepath.Join(h.Dir, "agent.key") }
func agentVaultInfo() []byte         { return []byte("seedfleet/agent-vault/v1") }
func agentVaultSalt() []byte         { return []byte("seedfleet agent vault namespace") }
func nowMicro() uint64               { return uint64(time.Now().UnixMicro()) }

// AgentNamespaceKey derives the agent vault's namespace key from the root
// key with HKDF-SHA256: only the root-key holder can compute it, and the
// namespace it yields is the same on every run.
func AgentNamespaceKey(root ed25519.PrivateKey) (ed25519.PrivateKey, error) {
	seed, err := hkdf.Key(sha256.New, root.Seed(), agentVaultSalt(), string(agentVaultInfo()), ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// Agent returns the agent this home acts for, or ErrNoAgent.
func (h *Home) Agent() (*AgentInfo, error) {
	raw, err := os.ReadFile(h.agentPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoAgent
	}
	if err != nil {
		return nil, err
	}
	var a AgentInfo
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("%s: %w", h.agentPath(), err)
	}
	if a.Namespace, err = vault.ParseNamespaceID(a.NS); err != nil {
		return nil, fmt.Errorf("%s: %w", h.agentPath(), err)
	}
	if _, err := identity.ParseDIDKey(a.DID); err != nil {
		return nil, fmt.Errorf("%s: %w", h.agentPath(), err)
	}
	root, err := identity.Load(h.agentKeyPath())
	switch {
	case err == nil:
		a.Root = root
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	return &a, nil
}

func (h *Home) saveAgent(a *AgentInfo) error {
	a.NS = a.Namespace.String()
	return writeJSON(h.agentPath(), a)
}

// writeJSON replaces path with v as indented JSON (0600), through a
// temporary file so a crash leaves the old or the new content.
func writeJSON(path string, v any) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(raw, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// SetAgentSeeds records the seeds the agent's devices sync through.
func (h *Home) SetAgentSeeds(seeds []string) error {
	a, err := h.Agent()
	if err != nil {
		return err
	}
	a.Seeds = seeds
	return h.saveAgent(a)
}

// InitAgent makes a new agent with this device as its first device: the
// root key, the agent document listing this device as deviceName, the
// first content-key epoch and this device's envelope.
func (h *Home) InitAgent(deviceName string) (*AgentInfo, error) {
	if _, err := h.Agent(); err == nil {
		return nil, errors.New("this device already acts for an agent (see `seedfleet agent show`)")
	} else if !errors.Is(err, ErrNoAgent) {
		return nil, err
	}
	if err := identity.CheckFragment(deviceName); err != nil {
		return nil, fmt.Errorf("device name: %w", err)
	}
	root, err := identity.Generate()
	if err != nil {
		return nil, err
	}
	nsKey, err := AgentNamespaceKey(root)
	if err != nil {
		return nil, err
	}
	ns := vault.NamespaceID(nsKey.Public().(ed25519.PublicKey))
	doc := identity.NewAgentDocument(root.Public().(ed25519.PublicKey), time.Now())
	if err := doc.AddDevice(deviceName, h.Key.Public().(ed25519.PublicKey), time.Now()); err != nil {
		return nil, err
	}
	names, err := sealed.NewNameKey()
	if err != nil {
		return nil, err
	}
	content, err := sealed.NewContentKey()
	if err != nil {
		return nil, err
	}
	a := &AgentInfo{DID: doc.DID(), Namespace: ns, Device: deviceName, Root: root}
	// The document first: the store checks every other entry against it.
	if err := h.writeDocInto(a, nsKey, doc); err != nil {
		return nil, err
	}
	if err := h.writeEnvelopes(a, ns, doc, []sealed.EnvelopePayload{{Epoch: 1, Content: content, Names: names}}); err != nil {
		return nil, err
	}
	if err := identity.Save(h.agentKeyPath(), root); err != nil {
		return nil, err
	}
	return a, h.saveAgent(a)
}

// AgentDocument returns the agent document of the home's agent vault.
func (h *Home) AgentDocument() (*identity.AgentDocument, *AgentInfo, error) {
	a, err := h.Agent()
	if err != nil {
		return nil, nil, err
	}
	doc, err := h.Store.AgentDocument(a.Namespace)
	if err != nil {
		return nil, a, err
	}
	if doc == nil {
		return nil, a, fmt.Errorf("vault %s has no agent document on this device yet: sync it from a seed first", a.Namespace.Short())
	}
	if doc.DID() != a.DID {
		return nil, a, fmt.Errorf("vault %s is bound to agent %s, not %s", a.Namespace.Short(), doc.DID(), a.DID)
	}
	return doc, a, nil
}

// writeDocInto stores doc in the vault of nsKey: authored by the root key,
// with the namespace's signature, which is what binds the vault to the agent.
func (h *Home) writeDocInto(a *AgentInfo, nsKey ed25519.PrivateKey, doc *identity.AgentDocument) error {
	if a.Root == nil {
		return ErrNotRootDevice
	}
	raw, err := doc.Sign(a.Root)
	if err != nil {
		return err
	}
	ns := vault.NamespaceID(nsKey.Public().(ed25519.PublicKey))
	e := vault.Entry{Namespace: ns, Key: vault.AgentDocKey, Author: vault.AuthorID(doc.Root),
		Hash: vault.HashOf(raw), Size: uint64(len(raw)), Timestamp: h.nextTimestampFor(ns, vault.AgentDocKey, vault.AuthorID(doc.Root))}
	se, err := vault.Sign(e, a.Root, vault.Consent{Kind: vault.ConsentNamespaceSig}, nsKey)
	if err != nil {
		return err
	}
	return h.insert(vault.Item{Entry: se, Content: raw})
}

// writeEnvelopes seals each payload of vault ns to every active device of
// doc (or to only) and stores the envelopes (written by the root key).
func (h *Home) writeEnvelopes(a *AgentInfo, ns vault.NamespaceID, doc *identity.AgentDocument, payloads []sealed.EnvelopePayload, only ...ed25519.PublicKey) error {
	if a.Root == nil {
		return ErrNotRootDevice
	}
	devices := only
	if len(devices) == 0 {
		for _, d := range doc.Devices {
			devices = append(devices, d.Key)
		}
	}
	var items []vault.Item
	for _, p := range payloads {
		for _, dev := range devices {
			env, err := sealed.SealEnvelope(dev, ns, p)
			if err != nil {
				return err
			}
			key := vault.EnvelopeKey(p.Epoch, vault.AuthorID(dev))
			e := vault.Entry{Namespace: ns, Key: key, Author: vault.AuthorID(doc.Root),
				Hash: vault.HashOf(env), Size: uint64(len(env)), Timestamp: nowMicro()}
			se, err := vault.Sign(e, a.Root, vault.AgentConsent(), nil)
			if err != nil {
				return err
			}
			items = append(items, vault.Item{Entry: se, Content: env})
		}
	}
	return h.insert(items...)
}

func (h *Home) insert(items ...vault.Item) error {
	res, err := h.Store.Insert(items, 0, true)
	if err != nil {
		return err
	}
	if res.Refused > 0 {
		return res.FirstRefusal
	}
	return nil
}

// Keyring holds the content keys of one private vault this device can read.
type Keyring struct {
	Namespace vault.NamespaceID
	Epochs    map[uint32]sealed.EnvelopePayload
	Current   uint32 // newest epoch: new values are sealed with it
}

// Keys adapts the keyring to sealed.Keys.
func (k *Keyring) Keys(epoch uint32) (sealed.ContentKey, bool) {
	p, ok := k.Epochs[epoch]
	return p.Content, ok
}

// Names is the vault's name key (the same in every epoch).
func (k *Keyring) Names() sealed.NameKey { return k.Epochs[k.Current].Names }

// ErrNoEnvelope: the vault holds no content key sealed to this device.
var ErrNoEnvelope = errors.New("no content key for this device in the vault: it was not approved yet, or it was revoked (or sync first)")

// Keyring opens this device's envelopes in the private vault ns. Only
// envelopes written by the agent's root key count. The keyring is shared
// (read it, do not change it): it is kept until the store's system entries
// change (a new epoch, an approval, a revocation; see
// vault.Store.SystemVersion), since opening the envelopes again for every
// private read and write cost a quarter of a live device's CPU.
func (h *Home) Keyring(ns vault.NamespaceID) (*Keyring, error) {
	version := h.Store.SystemVersion()
	h.keyringsMu.Lock()
	c, ok := h.keyrings[ns]
	h.keyringsMu.Unlock()
	if ok && c.version == version {
		return c.kr, nil
	}
	kr, err := h.openKeyring(ns)
	if err != nil {
		return nil, err
	}
	h.keyringsMu.Lock()
	defer h.keyringsMu.Unlock()
	if h.keyrings == nil || len(h.keyrings) >= maxKeyrings {
		h.keyrings = map[vault.NamespaceID]cachedKeyring{}
	}
	h.keyrings[ns] = cachedKeyring{version: version, kr: kr}
	return kr, nil
}

// cachedKeyring is a keyring as the store's system entries at version gave it.
type cachedKeyring struct {
	version uint64
	kr      *Keyring
}

// maxKeyrings bounds the keyrings a home keeps (a device holds a few
// private vaults; past this many the cache starts over).
const maxKeyrings = 1024

// openKeyring reads the keyring of ns from the store.
func (h *Home) openKeyring(ns vault.NamespaceID) (*Keyring, error) {
	doc, err := h.Store.AgentDocument(ns)
	if err != nil {
		return nil, err
	}
	if doc == nil {
		return nil, fmt.Errorf("vault %s is not a private agent vault on this device (no agent document; sync first?)", ns.Short())
	}
	items, err := h.Store.List(ns, vault.EnvelopePrefix(), 0)
	if err != nil {
		return nil, err
	}
	kr := &Keyring{Namespace: ns, Epochs: map[uint32]sealed.EnvelopePayload{}}
	me := h.Author()
	for _, it := range items {
		epoch, dev, ok := vault.ParseEnvelopeKey(it.Entry.Key)
		if !ok || dev != me || !bytes.Equal(it.Entry.Author[:], doc.Root) || it.Content == nil {
			continue
		}
		p, err := sealed.OpenEnvelope(h.Key, ns, it.Content)
		if err != nil {
			return nil, fmt.Errorf("envelope of epoch %d: %w", epoch, err)
		}
		if p.Epoch != epoch {
			return nil, fmt.Errorf("envelope stored for epoch %d holds epoch %d: refusing it", epoch, p.Epoch)
		}
		kr.Epochs[epoch] = p
		kr.Current = max(kr.Current, epoch)
	}
	if len(kr.Epochs) == 0 {
		return nil, fmt.Errorf("vault %s: %w", ns.Short(), ErrNoEnvelope)
	}
	return kr, nil
}

// allKeyrings reads every epoch (needs this device's envelopes of all of
// them); used when approving a device, which gets the whole history.
func (h *Home) allEpochs(ns vault.NamespaceID) ([]sealed.EnvelopePayload, *Keyring, error) {
	kr, err := h.Keyring(ns)
	if err != nil {
		return nil, nil, err
	}
	out := make([]sealed.EnvelopePayload, 0, len(kr.Epochs))
	for e := uint32(1); e <= kr.Current; e++ {
		if p, ok := kr.Epochs[e]; ok {
			out = append(out, p)
		}
	}
	return out, kr, nil
}

// ApproveDevice adds key to the agent document as name and gives it the
// content keys of every epoch (it reads the vaults' history), in the agent
// vault and in every project vault of the catalog. Root device only.
func (h *Home) ApproveDevice(name string, key ed25519.PublicKey) (*identity.AgentDocument, error) {
	doc, a, err := h.AgentDocument()
	if err != nil {
		return nil, err
	}
	if a.Root == nil {
		return nil, ErrNotRootDevice
	}
	next := doc.Next(time.Now())
	if err := next.AddDevice(name, key, time.Now()); err != nil {
		return nil, err
	}
	vaults, err := h.privateVaults(a)
	if err != nil {
		return nil, err
	}
	for _, pv := range vaults {
		epochs, _, err := h.allEpochs(pv.ns)
		if err != nil {
			return nil, err
		}
		if err := h.writeDocInto(a, pv.nsKey, next); err != nil {
			return nil, err
		}
		if err := h.writeEnvelopes(a, pv.ns, next, epochs, key); err != nil {
			return nil, err
		}
	}
	return next, nil
}

// RevokeDevice removes the device called name (or with that did:key) from
// the agent document and starts, in the agent vault and every project vault,
// a new content-key epoch that only the remaining devices receive. Seeds
// refuse the revoked key's writes from the revocation time on. Root device only.
func (h *Home) RevokeDevice(name string) (*identity.AgentDocument, error) {
	doc, a, err := h.AgentDocument()
	if err != nil {
		return nil, err
	}
	if a.Root == nil {
		return nil, ErrNotRootDevice
	}
	var key ed25519.PublicKey
	for _, d := range doc.Devices {
		if d.Fragment == name || identity.DIDKey(d.Key) == name {
			key = d.Key
		}
	}
	if key == nil {
		return nil, fmt.Errorf("no device %q in the agent document (see `seedfleet device list`)", name)
	}
	if key.Equal(h.Key.Public()) {
		return nil, errors.New("refusing to revoke this device itself: revoke it from another device holding the root key, or re-create the agent")
	}
	next := doc.Next(time.Now())
	if err := next.Revoke(key, time.Now()); err != nil {
		return nil, err
	}
	vaults, err := h.privateVaults(a)
	if err != nil {
		return nil, err
	}
	for _, pv := range vaults {
		_, kr, err := h.allEpochs(pv.ns)
		if err != nil {
			return nil, err
		}
		content, err := sealed.NewContentKey()
		if err != nil {
			return nil, err
		}
		if err := h.writeDocInto(a, pv.nsKey, next); err != nil {
			return nil, err
		}
		epoch := sealed.EnvelopePayload{Epoch: kr.Current + 1, Content: content, Names: kr.Names()}
		if err := h.writeEnvelopes(a, pv.ns, next, []sealed.EnvelopePayload{epoch}); err != nil {
			return nil, err
		}
	}
	return next, nil
}

// JoinAgent records the agent a newly approved device acts for.
func (h *Home) JoinAgent(did string, ns vault.NamespaceID, deviceName string, seeds []string) error {
	if a, err := h.Agent(); err == nil && a.DID != did {
		return fmt.Errorf("this device already acts for agent %s", a.DID)
	}
	if _, err := identity.ParseDIDKey(did); err != nil {
		return err
	}
	return h.saveAgent(&AgentInfo{DID: did, Namespace: ns, Device: deviceName, Seeds: seeds})
}

// IsPrivate reports whether values in ns are sealed: the agent vault, and
// any vault bound to the same agent (its projects).
func (h *Home) IsPrivate(ns vault.NamespaceID) bool {
	a, err := h.Agent()
	if err != nil {
		return false
	}
	if a.Namespace == ns {
		return true
	}
	doc, err := h.Store.AgentDocument(ns)
	return err == nil && doc != nil && doc.DID() == a.DID
}
