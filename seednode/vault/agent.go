package vault

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/seedfleet/seedfleet/seednode/identity"
)

// System keys start with a zero byte, which no private (sealed) entry key
// does. They hold what seeds must read in the clear: the agent document and
// the key envelopes (themselves sealed to each device). Only the agent's root
// key may write them.
const systemKeyByte = 0x00

// AgentDocKey is the reserved key of the agent document in a vault bound to
// an agent. Its entry is authored by the agent's root key and carries the
// namespace's own signature, which is what binds the vault to the agent.
var AgentDocKey = []byte("\x00agent/document")

const envelopePrefix = "\x00agent/envelope/"

// MaxSystemValue is the largest inline value of a system key (an agent
// document at its size limit). Other keys inline at most MaxInlineValue.
const MaxSystemValue = identity.MaxAgentDocumentSize

// ErrNotAuthorized refuses an entry that the vault's agent document does not
// allow: an unlisted or revoked author, a system key not written by the root
// key, or an agent-consented entry in a vault that has no agent document yet.
var ErrNotAuthorized = errors.New("not authorized by the agent document")

// IsSystemKey reports whether key is reserved (see AgentDocKey).
func IsSystemKey(key []byte) bool { return len(key) > 0 && key[0] == systemKeyByte }

// InlineLimit is the largest value stored inline with an entry of key.
func InlineLimit(key []byte) uint64 {
	if IsSystemKey(key) {
		return MaxSystemValue
	}
	return MaxInlineValue
}

// IsBlobRef reports whether e's value is a blob (fetched separately) rather
// than inline.
func IsBlobRef(e *Entry) bool { return e.Size > InlineLimit(e.Key) }

// EnvelopeKey is where the content key of epoch, sealed to device, is stored.
func EnvelopeKey(epoch uint32, device AuthorID) []byte {
	k := append([]byte(envelopePrefix), 0, 0, 0, 0)
	binary.BigEndian.PutUint32(k[len(envelopePrefix):], epoch)
	return append(k, device[:]...)
}

// EnvelopePrefix is the common prefix of every envelope key, for listing.
func EnvelopePrefix() []byte { return []byte(envelopePrefix) }

// ParseEnvelopeKey returns the epoch and recipient of an envelope key.
func ParseEnvelopeKey(key []byte) (epoch uint32, device AuthorID, ok bool) {
	rest, found := bytes.CutPrefix(key, []byte(envelopePrefix))
	if !found || len(rest) != 4+idLen {
		return 0, device, false
	}
	copy(device[:], rest[4:])
	return binary.BigEndian.Uint32(rest), device, true
}

// agentCache remembers each vault's agent document (nil: the vault is not
// bound) so Insert does not decode it for every batch.
type agentCache map[NamespaceID]*identity.AgentDocument

// AgentDocument returns the agent document ns is bound to, or nil if it has
// none. A vault found unbound is not remembered (Insert remembers it): a
// seed reads every hosted vault's document when it starts, and an entry
// per idle vault of a public fleet's 100,000 cost more memory than the
// lookup it saves.
func (s *Store) AgentDocument(ns NamespaceID) (*identity.AgentDocument, error) {
	unlock, err := s.lockVault(ns)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.agentDocLocked(ns, false)
}

// agentDocLocked needs the vault's lock and an acquired store. With
// cacheUnbound, a vault without a document is remembered as such.
func (s *Store) agentDocLocked(ns NamespaceID, cacheUnbound bool) (*identity.AgentDocument, error) {
	s.agentsMu.Lock()
	doc, ok := s.agents[ns]
	s.agentsMu.Unlock()
	if ok {
		return doc, nil
	}
	items, err := s.listIndexAcquired(ns, keyPrefix(ns, AgentDocKey), nil, 0)
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		d, err := identity.ParseAgentDocument(it.Content)
		if err != nil {
			return nil, s.noteErr(fmt.Errorf("vault %s: stored agent document does not verify: %w: %w", ns.Short(), err, ErrDamaged))
		}
		if bytes.Equal(d.Root, it.Entry.Author[:]) {
			doc = d
		}
	}
	if doc != nil || cacheUnbound {
		s.setAgentDoc(ns, doc)
	}
	return doc, nil
}

func (s *Store) setAgentDoc(ns NamespaceID, doc *identity.AgentDocument) {
	s.agentsMu.Lock()
	if s.agents == nil {
		s.agents = make(agentCache)
	}
	s.agents[ns] = doc
	s.agentsMu.Unlock()
}

// checkAgentDocItem decides whether it (an entry at AgentDocKey) may replace
// the held document cur, and returns the new document.
func checkAgentDocItem(it *Item, cur *identity.AgentDocument) (*identity.AgentDocument, error) {
	e := &it.Entry
	if it.Content == nil {
		return nil, fmt.Errorf("%w: agent document entry without its value", ErrMalformed)
	}
	if e.Consent.Kind != ConsentNamespaceSig {
		return nil, fmt.Errorf("%w: an agent document must carry the vault's namespace signature", ErrNotAuthorized)
	}
	doc, err := identity.ParseAgentDocument(it.Content)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(doc.Root, e.Author[:]) {
		return nil, fmt.Errorf("%w: agent document of %s written by another key", ErrNotAuthorized, doc.DID())
	}
	if cur != nil {
		if err := cur.CheckSuccessor(doc); err != nil {
			return nil, err
		}
	}
	return doc, nil
}

// authorize checks a non-document entry against the vault's agent document.
func authorize(e *SignedEntry, doc *identity.AgentDocument) error {
	if doc == nil {
		if e.Consent.Kind == ConsentAgent {
			return fmt.Errorf("%w: this vault has no agent document yet (sync from a device that holds the agent key first)", ErrNotAuthorized)
		}
		if IsSystemKey(e.Key) {
			return fmt.Errorf("%w: reserved key in a vault that is not bound to an agent", ErrNotAuthorized)
		}
		return nil
	}
	if e.IsTombstone() && bytes.HasPrefix(AgentDocKey, e.Key) {
		return fmt.Errorf("%w: a tombstone may not delete the agent document", ErrNotAuthorized)
	}
	if IsSystemKey(e.Key) && !bytes.Equal(doc.Root, e.Author[:]) {
		return fmt.Errorf("%w: reserved keys are written by the agent's root key only", ErrNotAuthorized)
	}
	if err := doc.Authorized(ed25519.PublicKey(e.Author[:]), e.Timestamp); err != nil {
		return fmt.Errorf("%w of %s: %w", ErrNotAuthorized, doc.DID(), err)
	}
	return nil
}

// purgeUnauthorized deletes, in the batch, the stored entries (values and
// tombstones) that the batch's agent document no longer allows (a key
// revoked before the entry's timestamp, or not listed at all when a vault is
// first bound). Entries by the root or a listed key are skipped without
// being read.
func (tx *insertTx) purgeUnauthorized() (purged int, err error) {
	listed := make(map[AuthorID]bool)
	for _, k := range tx.doc.ActiveKeys() {
		listed[AuthorID(k)] = true
	}
	purge := func(ih *Hash) error {
		cur, err := tx.current(ih)
		if err != nil || cur == nil || authorize(cur, tx.doc) == nil {
			return err
		}
		purged++
		return tx.remove(ih, cur)
	}
	err = tx.s.iterate(nsKey(kindKey, tx.ns, 0), nsUpper(kindKey, tx.ns), func(k, _ []byte) error {
		key, author, err := parseKeyIndexKey(k[1+idLen:])
		if err != nil || listed[author] {
			return err
		}
		ih := itemHash(key, author)
		return purge(&ih)
	})
	if err != nil {
		return purged, err
	}
	err = tx.s.iterate(nsKey(kindTomb, tx.ns, 0), nsUpper(kindTomb, tx.ns), func(k, _ []byte) error {
		author, key, err := parseTombKey(k[1+idLen:])
		if err != nil || listed[author] {
			return err
		}
		ih := tombstoneItemHash(key, author)
		return purge(&ih)
	})
	return purged, err
}

// addDelta records, for every stored depth of item ih, a fingerprint added
// (plus) and/or removed (minus).
func addDelta(deltas map[uint32]*aggDelta, ih *Hash, plus, minus *Hash) {
	for d := 0; d <= aggDepth; d++ {
		suf := nodeOf(ih, d).aggSuffix()
		dl := deltas[suf]
		if dl == nil {
			dl = &aggDelta{}
			deltas[suf] = dl
		}
		if plus != nil {
			dl.plus.add(plus)
		}
		if minus != nil {
			dl.minus.add(minus)
		}
	}
}
