//go:build !cgo

package localapi

import (
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/state"
)

// Server is the API served on its socket; a build without cgo has none.
type Server struct{}

// Start answers state.ErrNeedsCgo in a build without cgo.
func Start(*client.Home, string, Options) (*Server, error) { return nil, state.ErrNeedsCgo }

// Path is empty.
func (*Server) Path() string { return "" }

// Close does nothing.
func (*Server) Close() error { return nil }
