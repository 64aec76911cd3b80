package vault

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/internal/admission"
	"github.com/seedfleet/seedfleet/internal/lifecycle"
	"github.com/seedfleet/seedfleet/internal/wire"
)

// ServiceName is the resource-manager service of vault sync streams.
const ServiceName = "seedfleet.vault-sync"

// sessionMemory is reserved from the resource manager per session: two
// buffered stream ends plus an items frame in each direction. An inbound
// stream reserves it only once its hello names a vault the peer may sync;
// until then it holds helloMemory (its small read buffer and the hello).
const (
	sessionMemory = 4*itemsFrameSize + 2*bufSize
	helloMemory   = 4 << 10
	helloBufSize  = 512
)

const bufSize = 64 << 10

// The sessions' 64 KiB stream buffers are pooled: a seed serving devices
// that come online for a short incremental sync allocated and cleared
// 128 KiB per session, which was a good share of its garbage.
var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, bufSize) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufSize) }}
)

func getReader(r io.Reader) *bufio.Reader {
	b := readerPool.Get().(*bufio.Reader)
	b.Reset(r)
	return b
}

func getWriter(w io.Writer) *bufio.Writer {
	b := writerPool.Get().(*bufio.Writer)
	b.Reset(w)
	return b
}

// DefaultHelloTimeout is how long an inbound stream may take to send its
// hello: long enough for a device on a slow link, short enough that an idle
// stream is not held for the whole idle timeout.
const DefaultHelloTimeout = 5 * time.Second

// admissionService names this service in the admission metrics.
const admissionService = "vault-sync"

// Policy decides which vaults a peer may sync with this node.
type Policy interface {
	// AllowSync returns nil, or an error (wrapping ErrNotHosted for unknown
	// vaults) whose text is sent to the peer.
	AllowSync(p peer.ID, ns NamespaceID) error
}

// HostedSet is a Policy that allows the vaults it holds; it can be replaced
// while the service runs.
type HostedSet struct {
	mu  sync.RWMutex
	set map[NamespaceID]struct{}
}

// NewHostedSet returns a set holding ns.
func NewHostedSet(ns ...NamespaceID) *HostedSet {
	h := &HostedSet{}
	h.Replace(ns)
	return h
}

// Replace swaps the hosted vaults.
func (h *HostedSet) Replace(ns []NamespaceID) {
	set := make(map[NamespaceID]struct{}, len(ns))
	for _, n := range ns {
		set[n] = struct{}{}
	}
	h.mu.Lock()
	h.set = set
	h.mu.Unlock()
}

// Add hosts one more vault.
func (h *HostedSet) Add(ns NamespaceID) {
	h.mu.Lock()
	h.set[ns] = struct{}{}
	h.mu.Unlock()
}

// Has reports whether ns is hosted.
func (h *HostedSet) Has(ns NamespaceID) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	_, ok := h.set[ns]
	return ok
}

// List returns the hosted vaults.
func (h *HostedSet) List() []NamespaceID {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]NamespaceID, 0, len(h.set))
	for n := range h.set {
		out = append(out, n)
	}
	return out
}

// AllowSync implements Policy.
func (h *HostedSet) AllowSync(_ peer.ID, ns NamespaceID) error {
	if h.Has(ns) {
		return nil
	}
	return fmt.Errorf("%w: this node does not host vault %s (ask its operator to host it, or sync with a node that does)", ErrNotHosted, ns)
}

// Option configures a Service. An option given an invalid argument (nil,
// or a duration that is not positive) makes NewService fail with an error
// that names it.
type Option func(*Service) error

// DefaultIdleTimeout is how long a session waits for a silent peer.
const DefaultIdleTimeout = 30 * time.Second

// WithPolicy sets which vaults peers may sync (default: none, an empty
// HostedSet).
func WithPolicy(p Policy) Option {
	return func(s *Service) error {
		if p == nil {
			return errors.New("vault-sync: WithPolicy: nil policy")
		}
		s.policy = p
		return nil
	}
}

// WithIdleTimeout sets how long a session waits for a silent peer (default
// DefaultIdleTimeout); it must be positive.
func WithIdleTimeout(d time.Duration) Option {
	return func(s *Service) error {
		if d <= 0 {
			return fmt.Errorf("vault-sync: WithIdleTimeout: %s is not positive", d)
		}
		s.idleTimeout = d
		return nil
	}
}

// WithHelloTimeout sets how long an inbound stream may take to send its
// hello (default DefaultHelloTimeout, and never more than the idle
// timeout); it must be positive.
func WithHelloTimeout(d time.Duration) Option {
	return func(s *Service) error {
		if d <= 0 {
			return fmt.Errorf("vault-sync: WithHelloTimeout: %s is not positive", d)
		}
		s.helloTimeout = d
		return nil
	}
}

// WithAdmission shares a Limiter of unknown peers' streams (default: one of
// the service's own with admission.DefaultLimits). A seed gives its blob
// service the same one (Admission), so that a device known to one service
// is known to both. Streams of a peer that has completed a session for a
// hosted vault are not counted; those of every other peer are, per peer,
// per address range and in all, from the moment they open until the peer
// becomes known or the stream ends, and refused past the caps.
func WithAdmission(l *admission.Limiter) Option {
	return func(s *Service) error {
		if l == nil {
			return errors.New("vault-sync: WithAdmission: nil limiter")
		}
		s.adm = l
		return nil
	}
}

// WithRegisterer registers the service's metrics on reg (default: none are
// registered): seedfleet_stream_refusals_total, seedfleet_unknown_peer_streams
// and seedfleet_known_peers of its admission Limiter. NewService fails if
// they cannot be registered (other collectors of the same names on reg).
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(s *Service) error {
		if reg == nil {
			return errors.New("vault-sync: WithRegisterer: nil registerer")
		}
		s.reg = reg
		return nil
	}
}

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(s *Service) error {
		if l == nil {
			return errors.New("vault-sync: WithLogger: nil logger")
		}
		s.log = l
		return nil
	}
}

// WithStoredHook calls fn with the entries each session stores (after
// they are committed), with the peer they came from: a seed uses it to
// fetch the blobs new entries refer to. fn must not block. Default: none.
func WithStoredHook(fn func(p peer.ID, ns NamespaceID, items []Item)) Option {
	return func(s *Service) error {
		if fn == nil {
			return errors.New("vault-sync: WithStoredHook: nil function")
		}
		s.onStored = fn
		return nil
	}
}

// WithSessionEndHook calls fn when a session's reconciliation ends (for a
// live session: when it switches to live mode), with the peer, the session's
// figures and its error (nil on success). fn runs on the session goroutine.
// Default: none.
func WithSessionEndHook(fn func(p peer.ID, ns NamespaceID, st SyncStats, err error)) Option {
	return func(s *Service) error {
		if fn == nil {
			return errors.New("vault-sync: WithSessionEndHook: nil function")
		}
		s.onSessionEnd = fn
		return nil
	}
}

// WithLackedBlobs tells a syncing device how many blobs of the vault's
// entries this node lacks (fn's count; it fetches them after the session),
// so the device stays to serve them (SyncStats.PeerLacksBlobs). fn runs on
// the session goroutine and must be quick. Default: none (a device, which
// fetches what it lacks itself).
func WithLackedBlobs(fn func(ns NamespaceID) int) Option {
	return func(s *Service) error {
		if fn == nil {
			return errors.New("vault-sync: WithLackedBlobs: nil function")
		}
		s.lackedBlobs = fn
		return nil
	}
}

// WithVerifier shares a Verifier (and its capability cache) between
// services (default: one of the service's own).
func WithVerifier(v *Verifier) Option {
	return func(s *Service) error {
		if v == nil {
			return errors.New("vault-sync: WithVerifier: nil verifier")
		}
		s.verifier = v
		return nil
	}
}

// Service serves /seedfleet/vault-sync/1.0.0 on a host and starts sessions.
type Service struct {
	host         host.Host
	store        *Store
	policy       Policy
	verifier     *Verifier
	idleTimeout  time.Duration
	helloTimeout time.Duration
	adm          *admission.Limiter
	reg          prometheus.Registerer
	log          *slog.Logger
	onStored     func(peer.ID, NamespaceID, []Item)
	onSessionEnd func(peer.ID, NamespaceID, SyncStats, error)
	lackedBlobs  func(NamespaceID) int

	ctx    context.Context
	cancel context.CancelFunc
	life   lifecycle.Group // sessions, inbound and outbound

	liveMu sync.Mutex
	live   map[peer.ID]int // live sessions per peer, whose connections are protected
}

// liveTag protects the connections of peers with live sessions from the
// connection manager: trimming one (a seed with thousands of live devices
// is above its high watermark) would end the sessions on it, and the
// devices would reconnect and reconcile again.
const liveTag = "seedfleet-vault-live"

// protect counts a live session with p and protects p's connections.
func (s *Service) protect(p peer.ID) {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	if s.live == nil {
		s.live = make(map[peer.ID]int)
	}
	if s.live[p]++; s.live[p] == 1 {
		s.host.ConnManager().Protect(p, liveTag)
	}
}

// unprotect ends what protect began.
func (s *Service) unprotect(p peer.ID) {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	if s.live[p]--; s.live[p] <= 0 {
		delete(s.live, p)
		s.host.ConnManager().Unprotect(p, liveTag)
	}
}

// NewService registers the vault-sync handler on h, storing into st (both
// required), and returns the service; Close unregisters it and waits for its
// sessions. The options' defaults are in their doc comments. The name says
// which of the package's two halves it builds (Open opens the store).
func NewService(h host.Host, st *Store, opts ...Option) (*Service, error) {
	if h == nil {
		return nil, errors.New("vault-sync: nil host")
	}
	if st == nil {
		return nil, errors.New("vault-sync: nil store")
	}
	s := &Service{host: h, store: st, idleTimeout: DefaultIdleTimeout, helloTimeout: DefaultHelloTimeout, policy: NewHostedSet()}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(s); err != nil {
			return nil, err
		}
	}
	s.helloTimeout = min(s.helloTimeout, s.idleTimeout)
	if s.verifier == nil {
		s.verifier = NewVerifier(nil)
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.adm == nil {
		s.adm = admission.Default()
	}
	if s.reg != nil {
		if err := s.adm.Register(s.reg); err != nil {
			return nil, fmt.Errorf("vault-sync: %w", err)
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	h.SetStreamHandler(ProtocolID, s.handle)
	return s, nil
}

// Verifier returns the service's verifier (for counters).
func (s *Service) Verifier() *Verifier { return s.verifier }

// Admission returns the service's limiter of unknown peers' streams, to
// share with the host's other services (blobs.WithAdmission).
func (s *Service) Admission() *admission.Limiter { return s.adm }

// Close stops serving, ends live sessions and waits for them. Idempotent.
func (s *Service) Close() error {
	s.life.Close(func() {
		s.host.RemoveStreamHandler(ProtocolID)
		s.cancel()
	})
	return nil
}

func reserve(st network.Stream) error {
	if err := st.Scope().SetService(ServiceName); err != nil {
		return fmt.Errorf("resource manager: %w", err)
	}
	if err := st.Scope().ReserveMemory(sessionMemory, network.ReservationPriorityMedium); err != nil {
		return fmt.Errorf("resource manager refused %d bytes for a vault session: %w", sessionMemory, err)
	}
	return nil
}

// Sync reconciles vault ns with peer p and, with opts.Live, stays connected
// until ctx ends. The peer must be connectable (addresses in the peerstore).
// Every error names the vault and the peer.
func (s *Service) Sync(ctx context.Context, p peer.ID, ns NamespaceID, opts SyncOptions) (SyncStats, error) {
	stats, err := s.sync(ctx, p, ns, opts)
	return stats, namedErr(ns, p, err)
}

// namedErr makes err name vault ns and peer p, unless its text names the
// vault already (most of a session's errors do, with what it was doing).
func namedErr(ns NamespaceID, p peer.ID, err error) error {
	if err == nil || errors.Is(err, ErrClosed) || strings.Contains(err.Error(), "vault "+ns.Short()) {
		return err
	}
	return fmt.Errorf("vault %s with %s: %w", ns.Short(), shortPeer(p), err)
}

func (s *Service) sync(ctx context.Context, p peer.ID, ns NamespaceID, opts SyncOptions) (SyncStats, error) {
	if !s.life.Enter() {
		return SyncStats{}, ErrClosed
	}
	defer s.life.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()

	// Vault sync may run over a relayed (limited) connection: a device
	// behind NAT syncs with another through a seed's relay.
	st, err := s.host.NewStream(network.WithAllowLimitedConn(ctx, ProtocolID), p, ProtocolID)
	if err != nil {
		return SyncStats{Namespace: ns, Peer: p}, fmt.Errorf("open vault-sync stream: %w", err)
	}
	defer st.Close()
	if err := reserve(st); err != nil {
		st.Reset()
		return SyncStats{Namespace: ns, Peer: p}, err
	}
	unwatch := context.AfterFunc(ctx, func() { st.Reset() })
	defer unwatch()

	salt := newSalt()
	sess := newSession(s, st, getReader(st), ns, salt, true, opts)
	sess.memory = sessionMemory
	defer func() { st.Scope().ReleaseMemory(sess.memory) }()
	defer sess.freeBuffers() // after release and hangUp below
	failed := true
	defer func() { sess.release(failed) }()
	hello := make([]byte, 0, helloLen)
	hello = append(hello, protocolVersion)
	hello = append(hello, ns[:]...)
	hello = append(hello, salt...)
	flags := byte(helloFlagLacksBlobs | helloFlagTombstones)
	if opts.Live {
		flags |= helloFlagLive
	}
	hello = append(hello, flags)
	if err := sess.fw.write(frameHello, hello); err != nil {
		st.Reset()
		return sess.stats, err
	}
	stats, err := sess.run(ctx)
	failed = err != nil
	if err != nil {
		sess.hangUp()
		if ctx.Err() != nil && opts.Live {
			return stats, nil // a live session ends when its caller stops it
		}
	}
	return stats, err
}

// handle serves an inbound session. Until the peer's hello names a vault it
// may sync, the stream holds only helloMemory, a place among unknown peers'
// streams (unless the peer is known) and helloTimeout to send the hello;
// the session's memory is reserved after that, and a peer that completes
// its reconciliation becomes known.
//
// A live session's live phase runs on a goroutine of its own and the
// handler returns: the handler's stack grew for the reconciliation (16 KiB
// with Pebble and the signature checks below it), and the garbage
// collector halves a parked goroutine's stack only while it uses under a
// quarter of it, which the handler's frames above the live loop exceed. A
// fresh goroutine holds the live loop's few frames (4 KiB), which counts
// for a seed holding thousands of live devices.
func (s *Service) handle(st network.Stream) {
	if !s.life.Enter() {
		_ = st.Reset()
		return
	}
	in := s.accept(st)
	if in == nil {
		s.life.Done()
		return
	}
	sub, err := in.sess.settle()
	if sub == nil {
		s.finish(in, err)
		return
	}
	go s.serveLive(in, sub)
}

// serveLive runs a settled session's live mode (see handle).
func (s *Service) serveLive(in *inbound, sub *Subscription) {
	s.finish(in, in.sess.stayLive(in.ctx, sub))
}

// inbound is an accepted session and what it holds until it ends.
type inbound struct {
	st      network.Stream
	ticket  *admission.Ticket
	hello   bool // helloMemory is reserved
	ctx     context.Context
	unwatch func() bool
	sess    *session
}

// close releases what in holds, in the reverse order of accept.
func (in *inbound) close() {
	if in.sess != nil {
		in.sess.freeBuffers()
		in.st.Scope().ReleaseMemory(in.sess.memory)
	}
	if in.unwatch != nil {
		in.unwatch()
	}
	if in.hello {
		in.st.Scope().ReleaseMemory(helloMemory)
	}
	in.ticket.Release()
}

// finish ends an inbound session that settled, or stayed live, with err.
func (s *Service) finish(in *inbound, err error) {
	defer s.life.Done()
	defer in.close()
	sess, remote := in.sess, in.st.Conn().RemotePeer()
	sess.release(err != nil)
	if err != nil && in.ctx.Err() == nil {
		s.log.Info("vault-sync: session ended", "peer", remote, "vault", sess.ns.Short(), "err", err)
		sess.hangUp()
		return
	}
	s.log.Debug("vault-sync: session done", "peer", remote, "vault", sess.ns.Short(),
		"stored", sess.stats.Stored, "sent", sess.stats.ItemsSent, "bytes_in", sess.stats.BytesReceived, "bytes_out", sess.stats.BytesSent)
	_ = in.st.Close()
}

// accept admits st's peer, reads its hello and makes its session; nil if
// it refused the stream (reset or answered; nothing is left held).
func (s *Service) accept(st network.Stream) *inbound {
	in := &inbound{st: st}
	accepted := false
	defer func() {
		if !accepted {
			in.close()
		}
	}()
	remote := st.Conn().RemotePeer()
	ticket, err := s.adm.Admit(admissionService, remote, st.Conn().RemoteMultiaddr())
	if err != nil {
		var re *admission.RefusedError
		reason := admission.ReasonTotal
		if errors.As(err, &re) {
			reason = re.Reason
		}
		// A reset, not an error frame: answering costs the seed more
		// than the flood that asked.
		s.adm.Log(s.log, admissionService, reason, "vault-sync: refused a stream of an unknown peer", "peer", remote, "err", err)
		st.Reset()
		return nil
	}
	in.ticket = ticket
	if err := st.Scope().SetService(ServiceName); err != nil {
		s.adm.Refused(s.log, admissionService, admission.ReasonResources, "vault-sync: refused a stream", "peer", remote, "err", err)
		st.Reset()
		return nil
	}
	if err := st.Scope().ReserveMemory(helloMemory, ticket.Priority()); err != nil {
		s.adm.Refused(s.log, admissionService, admission.ReasonResources, "vault-sync: refused a stream", "peer", remote, "known", ticket.Known(), "err", err)
		st.Reset()
		return nil
	}
	in.hello = true
	// The service's context: its end (Close) resets the stream, which ends
	// the session wherever it waits. No context of its own: thousands of
	// live sessions would each hold one, and nothing else cancels it.
	in.ctx = s.ctx
	in.unwatch = context.AfterFunc(s.ctx, func() { st.Reset() })

	_ = st.SetReadDeadline(time.Now().Add(s.helloTimeout))
	small := bufio.NewReaderSize(st, helloBufSize)
	fr := frameReader{r: small}
	typ, p, err := fr.next()
	if peerGone(err) {
		st.Reset() // the peer ended it: nothing refused, nobody to tell
		return nil
	}
	if err != nil || typ != frameHello || len(p) != helloLen || p[0] != protocolVersion {
		msg := "expected a hello frame of protocol version 1"
		var ne interface{ Timeout() bool }
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			msg = fmt.Sprintf("no hello within %s", s.helloTimeout)
		case err != nil:
			msg = err.Error()
		}
		s.adm.Refused(s.log, admissionService, admission.ReasonHello, "vault-sync: refused a session without a valid hello", "peer", remote, "known", ticket.Known(), "err", msg)
		s.refuse(st, CodeProtocol, msg)
		return nil
	}
	var ns NamespaceID
	copy(ns[:], p[1:])
	salt := slices.Clone(p[1+idLen : 1+idLen+saltLen])
	live := p[helloLen-1]&helloFlagLive != 0
	if err := s.policy.AllowSync(remote, ns); err != nil {
		code := CodeInternal
		if errors.Is(err, ErrNotHosted) {
			code = CodeNotHosted
		}
		s.adm.Refused(s.log, admissionService, admission.ReasonPolicy, "vault-sync: refused a session", "peer", remote, "vault", ns.Short(), "err", err)
		s.refuse(st, byte(code), err.Error())
		return nil
	}
	if err := st.Scope().ReserveMemory(sessionMemory, ticket.Priority()); err != nil {
		msg := fmt.Sprintf("this node is too busy for a session of vault %s now (try again later)", ns.Short())
		s.adm.Refused(s.log, admissionService, admission.ReasonResources, "vault-sync: refused a session", "peer", remote, "vault", ns.Short(), "known", ticket.Known(), "err", err)
		s.refuse(st, CodeInternal, msg)
		return nil
	}
	// The hello reader may have buffered the peer's first turn: keep it,
	// in front of the session's full-size reader.
	var r *bufio.Reader
	if buffered, _ := small.Peek(small.Buffered()); len(buffered) > 0 {
		r = getReader(io.MultiReader(bytes.NewReader(slices.Clone(buffered)), st))
	} else {
		r = getReader(st)
	}
	sess := newSession(s, st, r, ns, salt, false, SyncOptions{Live: live})
	sess.memory = sessionMemory
	in.sess = sess
	sess.tellLacking = p[helloLen-1]&helloFlagLacksBlobs != 0
	sess.withholdTombstones = p[helloLen-1]&helloFlagTombstones == 0
	sess.fr.n = fr.n
	sess.reconciled = func() {
		s.adm.MarkKnown(remote)
		ticket.Release()
	}
	accepted = true
	return in
}

// peerGone reports whether err means the peer closed or reset the stream.
func peerGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, network.ErrReset)
}

func (s *Service) refuse(st network.Stream, code byte, msg string) {
	fw := frameWriter{w: bufio.NewWriterSize(st, 1024)}
	_ = st.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_ = fw.write(frameError, appendString([]byte{code}, wire.Truncate(msg, 1024)))
	_ = fw.flush()
	_ = st.CloseWrite()
	// Give the peer a moment to read the reason before the stream goes.
	_ = st.SetReadDeadline(time.Now().Add(2 * time.Second))
	var b [1]byte
	_, _ = st.Read(b[:])
	_ = st.Close()
}
