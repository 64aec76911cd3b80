package blobs

import (
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
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

// TestNewServiceRefusesBadOptions: a missing store or an option given
// nothing usable is an error naming it; Close is idempotent.
func TestNewServiceRefusesBadOptions(t *testing.T) {
	h := testHost(t)
	st := testStore(t)
	for _, tc := range []struct {
		name  string
		store *Store
		opts  []Option
		want  string
	}{
		{"nil store", nil, nil, "nil store"},
		{"nil policy", st, []Option{WithPolicy(nil)}, "WithPolicy: nil policy"},
		{"zero idle timeout", st, []Option{WithIdleTimeout(0)}, "WithIdleTimeout: 0s is not positive"},
		{"negative request timeout", st, []Option{WithRequestTimeout(-time.Second)}, "WithRequestTimeout: -1s is not positive"},
		{"nil limiter", st, []Option{WithAdmission(nil)}, "WithAdmission: nil limiter"},
		{"nil registerer", st, []Option{WithRegisterer(nil)}, "WithRegisterer: nil registerer"},
		{"nil logger", st, []Option{WithLogger(nil)}, "WithLogger: nil logger"},
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
	s := newTestService(t, h, st)
	if err := s.Close(); err != nil || s.Close() != nil {
		t.Fatalf("Close twice: %v", err)
	}
}
