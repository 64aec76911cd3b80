//go:build !cgo

// Command state measures agent state (seednode/state), which needs cgo
// (Automerge): a build without it only says so.
package main

import (
	"log"

	"github.com/seedfleet/seedfleet/seednode/state"
)

func main() {
	log.Fatalf("bench state: %v", state.ErrNeedsCgo)
}
