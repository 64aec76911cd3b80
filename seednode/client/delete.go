package client

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/seedfleet/seedfleet/seednode/sealed"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// ErrDeletesMore refuses a deletion of one key that would also delete other
// keys of this device: a tombstone deletes every key that starts with its
// own, so deleting them too must be asked for (as a prefix).
var ErrDeletesMore = errors.New("deleting the key would delete other keys that start with it")

// Deletion is what Delete and DeletePrivate did.
type Deletion struct {
	// Tombstone is the signed tombstone written (see the vault package).
	Tombstone vault.SignedEntry
	// Deleted counts this device's values the tombstone removed here.
	Deleted int
}

// Delete deletes this device's values of key in ns, and with prefix those
// of every key that starts with key, by writing a tombstone that syncs like
// any entry: each replica removes the entries it covers and refuses them
// from then on (values of other devices stay: each device deletes its own).
// Without prefix, a key that other keys of this device start with is
// refused with ErrDeletesMore.
func (h *Home) Delete(ns vault.NamespaceID, key []byte, prefix bool) (Deletion, error) {
	if h.IsPrivate(ns) {
		return Deletion{}, fmt.Errorf("vault %s is private: delete by path (DeletePrivate)", ns.Short())
	}
	consent, err := h.capability(ns)
	if err != nil {
		return Deletion{}, err
	}
	return h.writeTombstone(ns, key, consent, prefix, string(key), 0)
}

// DeletePrivate deletes this device's value of path in a private vault,
// or with prefix (a path of whole segments ending in '/', as ListPrivate
// takes) every value under it and the one named like it. Path keys are
// tags of whole segments, so a path's tombstone covers the paths under
// path/ too: without prefix, a path with values of this device under it is
// refused with ErrDeletesMore.
func (h *Home) DeletePrivate(ns vault.NamespaceID, path string, prefix bool) (Deletion, error) {
	kr, err := h.Keyring(ns)
	if err != nil {
		return Deletion{}, err
	}
	var key []byte
	switch {
	case path == "":
		err = fmt.Errorf("%w: deleting needs a path (a whole vault is not deleted this way)", sealed.ErrInvalidPath)
	case prefix:
		key, err = sealed.StoredPrefix(kr.Names(), path)
	case strings.HasSuffix(path, "/"):
		err = fmt.Errorf("%w: %q ends in '/': delete a directory with the prefix option", sealed.ErrInvalidPath, path)
	default:
		key, err = sealed.StoredKey(kr.Names(), path)
	}
	if err != nil {
		return Deletion{}, err
	}
	return h.writeTombstone(ns, key, vault.AgentConsent(), prefix, path, 0)
}

// DeletePrivateBefore deletes this device's values under prefix (whole
// segments ending in '/') dated strictly before ts, with a prefix tombstone
// dated ts: what it wrote there at ts or later stays. A tombstone not newer
// than one of this device already covering prefix deletes nothing more and
// is not stored.
func (h *Home) DeletePrivateBefore(ns vault.NamespaceID, prefix string, ts uint64) (Deletion, error) {
	kr, err := h.Keyring(ns)
	if err != nil {
		return Deletion{}, err
	}
	if !strings.HasSuffix(prefix, "/") || ts == 0 {
		return Deletion{}, fmt.Errorf("%w: %q at %d: a prefix ending in '/' and a timestamp", sealed.ErrInvalidPath, prefix, ts)
	}
	key, err := sealed.StoredPrefix(kr.Names(), prefix)
	if err != nil {
		return Deletion{}, err
	}
	return h.writeTombstone(ns, key, vault.AgentConsent(), true, prefix, ts)
}

// writeTombstone signs and stores a tombstone at key, dated ts, or (ts 0)
// after every entry of this device it is to delete.
func (h *Home) writeTombstone(ns vault.NamespaceID, key []byte, consent vault.Consent, prefix bool, shown string, ts uint64) (Deletion, error) {
	if len(key) == 0 {
		return Deletion{}, fmt.Errorf("delete: an empty key")
	}
	items, err := h.Store.List(ns, key, 0)
	if err != nil {
		return Deletion{}, err
	}
	own := 0
	for _, it := range items {
		if it.Entry.Author != h.Author() {
			continue
		}
		if !prefix && !bytes.Equal(it.Entry.Key, key) {
			return Deletion{}, fmt.Errorf("%q: %w (delete them too with the prefix option)", shown, ErrDeletesMore)
		}
		if ts == 0 || it.Entry.Timestamp < ts {
			own++ // the tombstone is dated after it
		}
	}
	if ts == 0 {
		ts = h.after(ns, key, h.Author(), items)
	}
	e := vault.Entry{Namespace: ns, Key: key, Author: h.Author(), Timestamp: ts}
	se, err := vault.Sign(e, h.Key, consent, nil)
	if err != nil {
		return Deletion{}, err
	}
	res, err := h.Store.Insert([]vault.Item{{Entry: se}}, 0, true)
	if err != nil {
		return Deletion{}, err
	}
	if res.Refused > 0 {
		return Deletion{}, res.FirstRefusal
	}
	if res.Stored == 0 {
		own = 0 // a newer tombstone of this device already covers it
	}
	return Deletion{Tombstone: se, Deleted: own}, nil
}
