//go:build cgo

package localapi

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// Handler answers the API's requests for one open device home. Its
// methods are safe for concurrent use.
type Handler struct {
	h    *client.Home
	o    Options
	mux  *http.ServeMux
	docs *docs

	resolvedMu sync.Mutex
	resolved   map[string]vault.NamespaceID // vault names, resolved
	// closing ends every watch stream and document watch.
	closing context.Context
	stop    context.CancelFunc
}

// NewHandler returns the API's handler for h. Close it before h.
func NewHandler(h *client.Home, o Options) *Handler {
	o = o.withDefaults()
	ctx, stop := context.WithCancel(context.Background())
	hd := &Handler{h: h, o: o, mux: http.NewServeMux(), closing: ctx, stop: stop, resolved: map[string]vault.NamespaceID{},
		docs: &docs{h: h, max: o.MaxDocuments, ctx: ctx, logf: o.Logf, open: map[docKey]*openDoc{}}}
	hd.routes()
	return hd
}

func (hd *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			hd.o.Logf("local API: %s %s: panic: %v", r.Method, r.URL.Path, v)
			writeError(w, http.StatusInternalServerError, "internal error", "this is a bug in seedfleet: please report it with the request")
		}
	}()
	hd.mux.ServeHTTP(w, r)
}

// Close ends the watch streams and closes the documents.
func (hd *Handler) Close() {
	hd.stop()
	hd.docs.closeAll()
}

// Server is the API served on its socket.
type Server struct {
	ln   *Listener
	hd   *Handler
	srv  *http.Server
	done chan struct{}
	once sync.Once
	err  error
}

// Start listens on the Unix socket at path (see Listen) and serves the API
// for h until Close.
func Start(h *client.Home, path string, o Options) (*Server, error) {
	ln, err := Listen(path)
	if err != nil {
		return nil, err
	}
	hd := NewHandler(h, o)
	s := &Server{ln: ln, hd: hd, done: make(chan struct{}),
		srv: &http.Server{Handler: hd, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 64 << 10}}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			hd.o.Logf("local API: %v", err)
		}
	}()
	return s, nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.ln.Path() }

// Close ends the watch streams, waits (a few seconds at most) for the
// requests under way, and removes the socket. It is idempotent.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.hd.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			s.srv.Close()
		}
		<-s.done
		s.hd.Close()
		s.err = s.ln.Close()
	})
	return s.err
}
