package vault

import (
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/prometheus/client_golang/prometheus"
)

// newTestService is NewService for tests: a service that closes when the
// test ends.
func newTestService(t testing.TB, h host.Host, st *Store, opts ...Option) *Service {
	t.Helper()
	s, err := NewService(h, st, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestNewServiceRefusesBadOptions: a missing dependency or an option given
// nothing usable is an error naming it, never a service with a silent
// default or a panic later.
func TestNewServiceRefusesBadOptions(t *testing.T) {
	h := testHost(t)
	st := testStore(t, StoreOptions{})
	for _, tc := range []struct {
		name  string
		store *Store
		opts  []Option
		want  string
	}{
		{"nil store", nil, nil, "nil store"},
		{"nil policy", st, []Option{WithPolicy(nil)}, "WithPolicy: nil policy"},
		{"zero idle timeout", st, []Option{WithIdleTimeout(0)}, "WithIdleTimeout: 0s is not positive"},
		{"negative hello timeout", st, []Option{WithHelloTimeout(-time.Second)}, "WithHelloTimeout: -1s is not positive"},
		{"nil limiter", st, []Option{WithAdmission(nil)}, "WithAdmission: nil limiter"},
		{"nil registerer", st, []Option{WithRegisterer(nil)}, "WithRegisterer: nil registerer"},
		{"nil logger", st, []Option{WithLogger(nil)}, "WithLogger: nil logger"},
		{"nil hook", st, []Option{WithStoredHook(nil)}, "WithStoredHook: nil function"},
		{"nil verifier", st, []Option{WithVerifier(nil)}, "WithVerifier: nil verifier"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewService(h, tc.store, tc.opts...)
			if err == nil {
				s.Close()
				t.Fatal("NewService accepted it")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}

// TestNewServiceRegistersOnlyOnTheGivenRegisterer: the admission metrics
// land on the registerer given, and a second service sharing the limiter
// may register them there again.
func TestNewServiceRegistersOnlyOnTheGivenRegisterer(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := newTestService(t, testHost(t), testStore(t, StoreOptions{}), WithRegisterer(reg))
	newTestService(t, testHost(t), testStore(t, StoreOptions{}), WithRegisterer(reg), WithAdmission(a.Admission()))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	if !names["seedfleet_known_peers"] {
		t.Fatalf("metrics on the registerer: %v, want seedfleet_known_peers among them", names)
	}
	if err := a.Close(); err != nil || a.Close() != nil {
		t.Fatalf("Close twice: %v", err)
	}
}
