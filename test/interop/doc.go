// Package interop runs clients that Seedfleet does not write against a real
// seed: js-libp2p (from npm, pinned in js/package-lock.json) reserves a slot
// on the seed's circuit relay over TCP and WebSocket, is reached through it,
// and is refused in agents mode with the status code standard clients see.
// The seed is the seedfleet binary built from this tree and started as a
// user would start it, on loopback. @automerge/automerge (npm, same lock)
// opens an agent-state document the Go SDK saved, with the same JSON, and
// its change merges back into the Go document (built with cgo only).
//
// The npm packages are installed once per lock file into the user's cache
// directory (seedfleet/npm-<hash of the lock>), so only the first run needs
// the registry. The tests skip when node or npm is missing, and fail instead
// under CI=true, where a skip would count as a pass.
package interop
