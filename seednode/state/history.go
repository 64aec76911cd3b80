//go:build cgo

package state

import (
	"encoding/hex"
	"time"

	"github.com/seedfleet/seedfleet/seednode/vault"
)

// HistoryEntry is one change of a document.
type HistoryEntry struct {
	Hash    string
	Time    time.Time // as the writing device's clock said
	Device  string    // its name in the agent document, or its short author ID
	Seq     uint64    // the change's number among its actor's
	Message string    // what the transaction did ("set ui.theme; append tags")
}

// History lists the document's changes in Automerge's order (every change
// after the ones it depends on).
func (d *Document) History() (out []HistoryEntry, err error) {
	defer guard(&err)
	names := d.deviceNames()
	d.mu.Lock()
	defer d.mu.Unlock()
	changes, err := d.doc.Changes()
	if err != nil {
		return nil, err
	}
	for _, c := range changes {
		out = append(out, HistoryEntry{Hash: c.Hash().String(), Time: c.Timestamp(),
			Device: deviceOf(c.ActorID(), names), Seq: c.ActorSeq(), Message: c.Message()})
	}
	return out, nil
}

// deviceNames maps the agent's devices, listed and revoked, to their names.
func (d *Document) deviceNames() map[vault.AuthorID]string {
	names := map[vault.AuthorID]string{}
	doc, err := d.h.Store.AgentDocument(d.ns)
	if err != nil || doc == nil {
		return names
	}
	for _, k := range doc.Revoked {
		names[vault.AuthorID(k.Key)] = k.Fragment + " (revoked)"
	}
	for _, k := range doc.Devices {
		names[vault.AuthorID(k.Key)] = k.Fragment
	}
	return names
}

// deviceOf names the device of an actor (its author ID and 8 random
// bytes); an actor of another shape (an app writing Automerge directly)
// shows as itself.
func deviceOf(actor string, names map[vault.AuthorID]string) string {
	raw, err := hex.DecodeString(actor)
	if err != nil || len(raw) < len(vault.AuthorID{}) {
		return "actor " + actor
	}
	author := vault.AuthorID(raw[:len(vault.AuthorID{})])
	if n, ok := names[author]; ok {
		return n
	}
	return author.Short()
}
