// Package state keeps an agent's state as Automerge documents (nested JSON:
// maps, lists, text, counters) in the agent's private vaults. Every
// transaction a device commits is one Automerge change, sealed and stored as
// its own vault entry, so set reconciliation moves only the changes a peer
// lacks and seeds never see a field name or value; every DefaultSnapshotEvery
// of its changes (on average) a device writes its snapshot (Automerge's
// save() of every change it has), in the background, and compacts: one
// prefix tombstone, dated after the newest of its own change entries the
// snapshot covers and not after the snapshot, deletes those entries on every
// replica (other devices' changes stay until their own snapshots).
// Opening a document applies every snapshot and change in any order, and a
// malformed one is skipped and reported, never fatal.
//
// The standard documents (profile, preferences, conversations/<id>, tools)
// have JSON Schemas embedded from schemas/, and apps may register schemas
// for their own documents: Change refuses a write whose result does not
// match where it wrote (schema.go, check.go). Only this device's writes are
// checked: what other writers stored opens and merges as it is.
//
// Automerge enters through github.com/automerge/automerge-go, cgo over the
// Rust core (static libraries shipped in the module). Only this package and
// the device's state commands import it: the seed's and the operator's code
// paths stay free of cgo. The one binary is built with cgo and linked
// statically (make build, the Dockerfile), and a CGO_ENABLED=0 build still
// compiles: the Automerge side of this package is left out and the state
// commands answer ErrNeedsCgo.
package state
