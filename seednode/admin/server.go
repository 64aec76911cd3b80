package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	sigsjson "sigs.k8s.io/json"

	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// Source is what the Server reports and changes: the seed node behind it.
// Its methods are called concurrently.
type Source interface {
	// Status returns the seed's current state; Ready and ReadyReason are
	// overwritten from Ready.
	Status(ctx context.Context) (Status, error)
	// Ready returns nil when the seed can serve, or an error whose text is the
	// reason it cannot (sent as the /readyz body).
	Ready(ctx context.Context) error
	// HostedVaults returns the vaults the seed hosts and their replica peers.
	HostedVaults() HostedVaults
	// SetHostedVaults replaces the hosted vaults and their replica peers. The
	// Server only passes canonical, distinct namespace IDs, and peers and
	// options of listed vaults only, peers as canonical multiaddrs ending in
	// /p2p/ (at most MaxPeersPerVault per vault). An error wrapping ErrInvalid is answered
	// with 400, any other with 500.
	SetHostedVaults(ctx context.Context, hv HostedVaults) error
}

const (
	// MaxRequestBody bounds a PUT body.
	MaxRequestBody = 1 << 20
	// ShutdownTimeout bounds Close's graceful shutdown; connections still
	// open after it are closed.
	ShutdownTimeout = 5 * time.Second

	maxHeaderBytes    = 32 << 10
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	sourceTimeout     = 10 * time.Second // bounds each Source call made by a handler
	metricsTimeout    = 10 * time.Second
	maxEchoedValue    = 80 // bytes of a bad entry quoted back in an error
)

type serverConfig struct {
	token          string
	tokenSet       bool
	runtimeMetrics bool
	log            *slog.Logger
}

// Server serves the admin API on a listener bound by New.
type Server struct {
	src       Source
	cfg       serverConfig
	tokenHash [sha256.Size]byte
	ln        net.Listener
	srv       *http.Server

	serving   atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var errServing = errors.New("admin: server already serving")

// New binds addr (e.g. "127.0.0.1:0"; Addr reports the bound address) and
// prepares the handlers; call Serve or Run to serve, Close to stop. Writes
// (PUT) need the WithToken token; without one, New serves reads on a
// loopback address only (a non-loopback one is refused with ErrNoToken) and
// every write is refused with 403. Metrics
// come from reg only (a nil reg means a private, empty registry), never from
// the global Prometheus registry.
func New(addr string, src Source, reg *prometheus.Registry, opts ...Option) (*Server, error) {
	if src == nil {
		return nil, errors.New("admin: nil Source")
	}
	if addr == "" {
		return nil, errors.New("admin: empty listen address")
	}
	cfg := serverConfig{log: slog.Default()}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.applyServer(&cfg); err != nil {
			return nil, err
		}
	}
	if !cfg.tokenSet && !IsLoopback(addr) {
		return nil, noTokenError(addr)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if cfg.runtimeMetrics {
		for _, c := range []prometheus.Collector{
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		} {
			if err := reg.Register(c); err != nil {
				if are := (prometheus.AlreadyRegisteredError{}); !errors.As(err, &are) {
					return nil, fmt.Errorf("admin: runtime metrics: %w", err)
				}
			}
		}
	}

	s := &Server{src: src, cfg: cfg}
	if cfg.tokenSet {
		s.tokenHash = sha256.Sum256([]byte(cfg.token))
	}
	errLog := slog.NewLogLogger(cfg.log.Handler(), slog.LevelWarn)

	mux := http.NewServeMux()
	// "GET" patterns also match HEAD; the mux answers other methods with 405
	// and an Allow header.
	mux.HandleFunc("GET "+PathHealthz, s.healthz)
	mux.HandleFunc("GET "+PathReadyz, s.readyz)
	mux.Handle("GET "+PathMetrics, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            errLog,
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             metricsTimeout,
	}))
	mux.HandleFunc("GET "+PathStatus, s.status)
	mux.HandleFunc("GET "+PathHostedVaults, s.getHostedVaults)
	mux.HandleFunc("PUT "+PathHostedVaults, s.putHostedVaults)
	mux.HandleFunc("POST "+PathVerify, s.postVerify)
	mux.HandleFunc("GET "+PathFleet, s.getFleet)
	mux.HandleFunc("POST "+PathFleetInvites, s.postFleetInvite)
	mux.HandleFunc("PUT "+PathFleetMembers, s.putFleetMembers)
	s.handleProfiles(mux)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin: listen: %w", err)
	}
	// "localhost" is taken at its word above; what it resolved to decides.
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !cfg.tokenSet && !tcp.IP.IsLoopback() {
		ln.Close()
		return nil, noTokenError(addr)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          errLog,
	}
	return s, nil
}

// Addr is the bound address, e.g. 127.0.0.1:41234.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL is the base URL for NewClient, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Serve serves until Close; it returns nil after Close, at once if Close came
// first. Call Serve or Run once.
func (s *Server) Serve() error {
	if !s.serving.CompareAndSwap(false, true) {
		return errServing
	}
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin: serve: %w", err)
	}
	return nil
}

// Run serves until ctx ends, then closes the server gracefully. It returns
// nil after a clean shutdown.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.Serve() }()
	select {
	case err := <-errc:
		if errors.Is(err, errServing) {
			return err
		}
		return errors.Join(err, s.Close())
	case <-ctx.Done():
		cerr := s.Close()
		return errors.Join(<-errc, cerr)
	}
}

// Close stops accepting connections, waits up to ShutdownTimeout for
// requests in flight, then closes what is left. Idempotent: later calls
// wait for the first and return its result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			s.closeErr = errors.Join(fmt.Errorf("admin: graceful shutdown: %w", err), s.srv.Close())
		}
		// Shutdown closes the listener only if Serve ran.
		if err := s.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			s.closeErr = errors.Join(s.closeErr, err)
		}
	})
	return s.closeErr
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeText(w, http.StatusOK, "ok")
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), sourceTimeout)
	defer cancel()
	if err := s.src.Ready(ctx); err != nil {
		writeText(w, http.StatusServiceUnavailable, notReadyReason(err))
		return
	}
	writeText(w, http.StatusOK, "ready")
}

func notReadyReason(err error) string {
	if reason := strings.TrimSpace(err.Error()); reason != "" {
		return reason
	}
	return "not ready"
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), sourceTimeout)
	defer cancel()
	st, err := s.src.Status(ctx)
	if err != nil {
		s.cfg.log.Warn("admin: status failed", "err", err)
		writeError(w, http.StatusInternalServerError, "status: "+err.Error())
		return
	}
	st.Ready, st.ReadyReason = true, ""
	if err := s.src.Ready(ctx); err != nil {
		st.Ready, st.ReadyReason = false, notReadyReason(err)
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) getHostedVaults(w http.ResponseWriter, _ *http.Request) {
	hv := s.src.HostedVaults()
	if hv.Vaults == nil {
		hv.Vaults = []string{}
	}
	writeJSON(w, http.StatusOK, hv)
}

// Verifier is a Source that can verify its stored data on demand.
type Verifier interface {
	// StartVerify starts a verification pass in the background (or leaves
	// the one running); Status.Integrity reports its end.
	StartVerify(ctx context.Context) error
}

func (s *Server) postVerify(w http.ResponseWriter, r *http.Request) {
	if !s.allowWrite(w, r) {
		return
	}
	v, ok := s.src.(Verifier)
	if !ok {
		writeError(w, http.StatusNotImplemented, "this seed cannot verify its data on demand")
		return
	}
	if err := v.StartVerify(r.Context()); err != nil {
		writeError(w, http.StatusInternalServerError, "verify: "+err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "verification started; see integrity in " + PathStatus})
}

// allowWrite answers a write that carries no valid token, and reports
// whether the write may go on.
func (s *Server) allowWrite(w http.ResponseWriter, r *http.Request) bool {
	if !s.cfg.tokenSet {
		writeError(w, http.StatusForbidden, writesRefused)
		return false
	}
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="seedfleet-admin"`)
		writeError(w, http.StatusUnauthorized, "missing or invalid bearer token: send \"Authorization: Bearer <token>\" "+
			"with the seed's admin.tokenFile, or admin.token in its data directory "+
			"(seedfleet seednode vaults --data DIR reads it)")
		return false
	}
	return true
}

// handleProfiles serves Go's runtime profiles (net/http/pprof) under
// PathDebugPprof to requests with the token: a profile shows what the seed
// spends its CPU and memory on without a rebuild, and costs CPU while it
// runs, so nobody without the token may start one. A CPU profile or trace
// lasts less than the server's write timeout (30 s): ?seconds=20.
func (s *Server) handleProfiles(mux *http.ServeMux) {
	guard := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if s.allowWrite(w, r) {
				h(w, r)
			}
		}
	}
	mux.HandleFunc("GET "+PathDebugPprof, guard(pprof.Index))
	mux.HandleFunc("GET "+PathDebugPprof+"cmdline", guard(pprof.Cmdline))
	mux.HandleFunc("GET "+PathDebugPprof+"profile", guard(pprof.Profile))
	mux.HandleFunc("GET "+PathDebugPprof+"symbol", guard(pprof.Symbol))
	mux.HandleFunc("GET "+PathDebugPprof+"trace", guard(pprof.Trace))
}

func (s *Server) putHostedVaults(w http.ResponseWriter, r *http.Request) {
	if !s.allowWrite(w, r) {
		return
	}
	hv, err := decodeHostedVaults(http.MaxBytesReader(w, r.Body, MaxRequestBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), sourceTimeout)
	defer cancel()
	if err := s.src.SetHostedVaults(ctx, hv); err != nil {
		if errors.Is(err, ErrInvalid) {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.cfg.log.Warn("admin: setting hosted vaults failed", "count", len(hv.Vaults), "err", err)
		writeError(w, http.StatusInternalServerError, "set hosted vaults: "+err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// noTokenError refuses a listener that other machines may reach without a token.
func noTokenError(addr string) error {
	return fmt.Errorf("%w for %s, which is not a loopback address: other machines could reach the API; "+
		"set a token (a seed: admin.tokenFile, or none, and it generates admin.token in its data directory), "+
		"or listen on 127.0.0.1", ErrNoToken, addr)
}

// writesRefused answers a write to a Server that has no token: it accepts none.
const writesRefused = "this admin API accepts no changes: it was started without a bearer token " +
	"(a seed always has one: its admin.tokenFile, or admin.token in its data directory)"

func (s *Server) authorized(r *http.Request) bool {
	if !s.cfg.tokenSet {
		return false
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	// Compare hashes: constant time, and the token's length does not leak.
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) == 1
}

// decodeHostedVaults reads a HostedVaults body strictly and returns it in
// canonical form, or an error naming the problem.
func decodeHostedVaults(body io.Reader) (HostedVaults, error) {
	type request struct {
		Vaults  *[]string               `json:"vaults"`
		Peers   map[string][]string     `json:"peers"`
		Options map[string]VaultOptions `json:"options"`
	}
	var req request
	var raw bytes.Buffer // the body, bounded by the caller's MaxBytesReader
	dec := json.NewDecoder(io.TeeReader(body, &raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			return HostedVaults{}, fmt.Errorf("request body exceeds %d bytes", tooLarge.Limit)
		case errors.Is(err, io.EOF):
			return HostedVaults{}, errors.New(`empty request body; want {"vaults": ["<namespace ID>", ...]}`)
		default:
			return HostedVaults{}, fmt.Errorf("invalid JSON body: %v", err)
		}
	}
	if err := dec.Decode(new(json.RawMessage)); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return HostedVaults{}, fmt.Errorf("request body exceeds %d bytes", tooLarge.Limit)
		}
		return HostedVaults{}, errors.New("invalid JSON body: unexpected data after the JSON object")
	}
	// encoding/json matches keys in any case and lets a repeated key
	// replace the first ({"vaults": [...], "Vaults": []} hosted nothing):
	// refuse both, so that a body means one thing.
	if strict, err := sigsjson.UnmarshalStrict(raw.Bytes(), new(request)); err == nil && len(strict) > 0 {
		return HostedVaults{}, fmt.Errorf("invalid JSON body: %v (keys are case-sensitive and given once)", strict[0])
	}
	if req.Vaults == nil {
		return HostedVaults{}, errors.New(`missing "vaults" (send "vaults": [] to host nothing)`)
	}
	vaults, err := checkVaults(*req.Vaults)
	if err != nil {
		return HostedVaults{}, err
	}
	peers, err := checkPeers(req.Peers, vaults)
	if err != nil {
		return HostedVaults{}, err
	}
	options, err := checkOptions(req.Options, vaults)
	if err != nil {
		return HostedVaults{}, err
	}
	return HostedVaults{Vaults: vaults, Peers: peers, Options: options}, nil
}

// checkOptions refuses options of vaults not listed and returns the rest,
// leaving out all-zero options (nil if none is left).
func checkOptions(options map[string]VaultOptions, vaults []string) (map[string]VaultOptions, error) {
	var out map[string]VaultOptions
	for _, ns := range slices.Sorted(maps.Keys(options)) {
		if !slices.Contains(vaults, ns) {
			return nil, fmt.Errorf(`options[%s]: vault not in "vaults" (list it there too, or drop its options)`, quoteShort(ns))
		}
		if options[ns] == (VaultOptions{}) {
			continue
		}
		if out == nil {
			out = make(map[string]VaultOptions, len(options))
		}
		out[ns] = options[ns]
	}
	return out, nil
}

// checkVaults returns the list if every entry is a distinct canonical
// namespace ID.
func checkVaults(vaults []string) ([]string, error) {
	seen := make(map[string]int, len(vaults))
	for i, v := range vaults {
		ns, err := vault.ParseNamespaceID(v)
		if err != nil {
			got := fmt.Sprintf("got %d characters", len(v))
			if len(v) == 52 {
				got = "got characters outside a-z, 2-7"
			}
			return nil, fmt.Errorf("vaults[%d] = %s: not a namespace ID: want 52 lowercase base32 characters (a-z, 2-7), %s",
				i, quoteShort(v), got)
		}
		if ns.String() != v {
			return nil, fmt.Errorf("vaults[%d] = %s: namespace ID not in canonical form: want lowercase with no spaces (%q)",
				i, quoteShort(v), ns.String())
		}
		if j, dup := seen[v]; dup {
			return nil, fmt.Errorf("vaults[%d] = %s: duplicate of vaults[%d]", i, quoteShort(v), j)
		}
		seen[v] = i
	}
	return vaults, nil
}

// checkPeers checks the replica peers of the (already checked) vaults and
// returns them as canonical multiaddrs, leaving out empty lists (nil if none
// is left). Vaults are checked in sorted order, so the first problem reported
// does not depend on map order.
func checkPeers(peers map[string][]string, vaults []string) (map[string][]string, error) {
	listed := make(map[string]bool, len(vaults))
	for _, v := range vaults {
		listed[v] = true
	}
	var out map[string][]string
	for _, ns := range slices.Sorted(maps.Keys(peers)) {
		addrs := peers[ns]
		field := "peers[" + quoteShort(ns) + "]"
		switch {
		case !listed[ns]:
			return nil, fmt.Errorf(`%s: vault not in "vaults" (list it there too, or drop its peers)`, field)
		case len(addrs) > MaxPeersPerVault:
			return nil, fmt.Errorf("%s: %d peer addresses; at most %d per vault", field, len(addrs), MaxPeersPerVault)
		case len(addrs) == 0:
			continue
		}
		canonical := make([]string, len(addrs))
		for i, a := range addrs {
			info, err := p2p.ParseDialAddr(a)
			if err != nil {
				return nil, fmt.Errorf("%s[%d] = %s: %v", field, i, quoteShort(a), err)
			}
			full, err := peer.AddrInfoToP2pAddrs(&info)
			if err != nil {
				return nil, fmt.Errorf("%s[%d] = %s: %v", field, i, quoteShort(a), err)
			}
			canonical[i] = full[0].String()
			if j := slices.Index(canonical[:i], canonical[i]); j >= 0 {
				return nil, fmt.Errorf("%s[%d] = %s: duplicate of %s[%d]", field, i, quoteShort(a), field, j)
			}
		}
		if out == nil {
			out = make(map[string][]string, len(peers))
		}
		out[ns] = canonical
	}
	return out, nil
}

func quoteShort(s string) string {
	if len(s) > maxEchoedValue {
		return fmt.Sprintf("%q…", s[:maxEchoedValue])
	}
	return fmt.Sprintf("%q", s)
}

func writeText(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil { // e.g. a NaN float from the Source
		code, data = http.StatusInternalServerError, mustJSON(ErrorResponse{Error: "encoding response: " + err.Error()})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(data, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorResponse{Error: msg})
}

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}
