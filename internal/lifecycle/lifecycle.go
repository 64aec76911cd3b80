// Package lifecycle tracks the goroutines a service starts (stream
// handlers, sessions, loops) so that Close can wait for them without racing
// new ones: a goroutine enters only while the service is open, so no
// WaitGroup.Add ever runs concurrently with Close's Wait.
package lifecycle

import "sync"

// Group is the set of a service's running goroutines. The zero value is open.
type Group struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// Enter registers a goroutine and reports true, or reports false once the
// group is closed (the caller then refuses its work). Call Done when an
// entered goroutine ends.
func (g *Group) Enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	return true
}

// Done ends a goroutine that entered.
func (g *Group) Done() { g.wg.Done() }

// Wait waits until no goroutine is inside, leaving the group open.
func (g *Group) Wait() { g.wg.Wait() }

// Close refuses new goroutines, calls stop (which tells the running ones to
// end, e.g. by canceling their context), and waits for them. Later calls
// only wait.
func (g *Group) Close(stop func()) {
	g.mu.Lock()
	first := !g.closed
	g.closed = true
	g.mu.Unlock()
	if first && stop != nil {
		stop()
	}
	g.wg.Wait()
}
