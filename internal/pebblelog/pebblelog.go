// Package pebblelog is the Pebble logger Seedfleet's stores share: quiet
// about routine events (compactions, flushes), loud only when Pebble gives up.
package pebblelog

import "fmt"

// Quiet discards Pebble's informational and error logs (errors reach the
// caller through return values) and panics on fatal ones, as Pebble expects.
type Quiet struct{}

func (Quiet) Infof(string, ...any)  {}
func (Quiet) Errorf(string, ...any) {}
func (Quiet) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}
