//go:build cgo

package localapi

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/seednode/state"
)

// BenchmarkAPI: a change (an increment) and a read through the socket,
// each against its baseline, the same call on the Go SDK in the same run:
// what the local API adds to a request.
func BenchmarkAPI(b *testing.B) {
	const n = 200
	homes, ns := agentDevices(b, "laptop")
	a := startAPI(b, homes[0], Options{})
	d, err := state.Open(homes[0], ns, "sdk")
	if err != nil {
		b.Fatal(err)
	}
	var sdkChange, apiChange, sdkRead, apiRead time.Duration
	for range b.N {
		sdkChange += timed(n, func() {
			if err := d.Change(func(tx *state.Tx) error { return tx.Increment(state.Path{"n"}, 1) }); err != nil {
				b.Fatal(err)
			}
		})
		apiChange += timed(n, func() { a.ok(http.MethodPost, settings, "", `{"op":"incr","path":"n"}`) })
		sdkRead += timed(n, func() {
			if _, err := d.JSON(nil); err != nil {
				b.Fatal(err)
			}
		})
		apiRead += timed(n, func() { a.ok(http.MethodGet, settings, "", "") })
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n*b.N) }
	fmt.Printf("BENCH state_change_sdk_us %.0f us\n", per(sdkChange))
	fmt.Printf("BENCH state_change_api_us %.0f us\n", per(apiChange))
	fmt.Printf("BENCH state_read_sdk_us %.1f us\n", per(sdkRead))
	fmt.Printf("BENCH state_read_api_us %.1f us\n", per(apiRead))
}

func timed(n int, fn func()) time.Duration {
	start := time.Now()
	for range n {
		fn()
	}
	return time.Since(start)
}
