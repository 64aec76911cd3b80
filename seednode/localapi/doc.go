// Package localapi is the agent-state API for apps on the same device that
// are not written in Go: while `seedfleet serve` runs, it answers HTTP+JSON
// on a Unix socket (mode 0600, in the device's home by default) and reads
// and changes the agent's state documents through the home the serve holds,
// with server-sent events for every merged change, local or synced.
//
// The handler shares one state.Document per (vault, document) among all
// requests, so every request is one transaction against the same replica
// that sync feeds. Like package state it needs cgo (Automerge): in a build
// without cgo, Start answers state.ErrNeedsCgo and serve runs without it.
// The routes are versioned under /v1 and documented in the README ("Local
// API").
package localapi
