package lifecycle

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestCloseWaitsAndRefusesLateComers: Close stops and waits for the
// goroutines inside; none enters after it, however they race it (run under
// -race: a WaitGroup.Add racing Wait is reported there).
func TestCloseWaitsAndRefusesLateComers(t *testing.T) {
	for range 200 {
		var g Group
		stop := make(chan struct{})
		var inside, entered atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if !g.Enter() {
					return
				}
				defer g.Done()
				entered.Add(1)
				inside.Add(1)
				<-stop
				inside.Add(-1)
			}()
		}
		g.Close(func() { close(stop) })
		if n := inside.Load(); n != 0 {
			t.Fatalf("Close returned with %d goroutines inside", n)
		}
		if g.Enter() {
			t.Fatal("Enter succeeded after Close")
		}
		wg.Wait()
		g.Close(func() { t.Fatal("stop called twice") })
	}
}
