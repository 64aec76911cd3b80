package vault

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ServiceName is the resource-manager service of vault sync streams.
const ServiceName = "seedfleet.vault-sync"

// sessionMemory is reserved from the resource manager per session: two
// buffered stream ends plus an items frame in each direction.
const sessionMemory = 4*itemsFrameSize + 2*bufSize

const bufSize = 64 << 10

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

// Option configures a Service.
type Option func(*Service)

// WithPolicy sets which vaults peers may sync (default: none).
func WithPolicy(p Policy) Option { return func(s *Service) { s.policy = p } }

// WithIdleTimeout sets how long a session waits for a silent peer (default 30 s).
func WithIdleTimeout(d time.Duration) Option { return func(s *Service) { s.idleTimeout = d } }

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithStoredHook calls fn with the entries each session stores (after
// they are committed), with the peer they came from: a seed uses it to
// fetch the blobs new entries refer to. fn must not block.
func WithStoredHook(fn func(p peer.ID, ns NamespaceID, items []Item)) Option {
	return func(s *Service) { s.onStored = fn }
}

// WithSessionEndHook calls fn when a session's reconciliation ends (for a
// live session: when it switches to live mode), with the peer, the session's
// figures and its error (nil on success). fn runs on the session goroutine.
func WithSessionEndHook(fn func(p peer.ID, ns NamespaceID, st SyncStats, err error)) Option {
	return func(s *Service) { s.onSessionEnd = fn }
}

// WithVerifier shares a Verifier (and its capability cache) between services.
func WithVerifier(v *Verifier) Option { return func(s *Service) { s.verifier = v } }

// Service serves /seedfleet/vault-sync/1.0.0 on a host and starts sessions.
type Service struct {
	host         host.Host
	store        *Store
	policy       Policy
	verifier     *Verifier
	idleTimeout  time.Duration
	log          *slog.Logger
	onStored     func(peer.ID, NamespaceID, []Item)
	onSessionEnd func(peer.ID, NamespaceID, SyncStats, error)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// NewService registers the vault-sync handler on h, storing into st.
func NewService(h host.Host, st *Store, opts ...Option) *Service {
	s := &Service{host: h, store: st, idleTimeout: 30 * time.Second, policy: NewHostedSet()}
	for _, o := range opts {
		o(s)
	}
	if s.verifier == nil {
		s.verifier = NewVerifier(nil)
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	h.SetStreamHandler(ProtocolID, s.handle)
	return s
}

// Verifier returns the service's verifier (for counters).
func (s *Service) Verifier() *Verifier { return s.verifier }

// Close stops serving, ends live sessions and waits for them. Idempotent.
func (s *Service) Close() error {
	s.once.Do(func() {
		s.host.RemoveStreamHandler(ProtocolID)
		s.cancel()
		s.wg.Wait()
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
func (s *Service) Sync(ctx context.Context, p peer.ID, ns NamespaceID, opts SyncOptions) (SyncStats, error) {
	if s.ctx.Err() != nil {
		return SyncStats{}, ErrClosed
	}
	s.wg.Add(1)
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()

	// Vault sync may run over a relayed (limited) connection: a device
	// behind NAT syncs with another through a seed's relay.
	st, err := s.host.NewStream(network.WithAllowLimitedConn(ctx, ProtocolID), p, ProtocolID)
	if err != nil {
		return SyncStats{Namespace: ns, Peer: p}, fmt.Errorf("open vault-sync stream to %s: %w", shortPeer(p), err)
	}
	defer st.Close()
	if err := reserve(st); err != nil {
		st.Reset()
		return SyncStats{Namespace: ns, Peer: p}, err
	}
	defer st.Scope().ReleaseMemory(sessionMemory)
	unwatch := context.AfterFunc(ctx, func() { st.Reset() })
	defer unwatch()

	salt := newSalt()
	sess := newSession(s, st, bufio.NewReaderSize(st, bufSize), ns, salt, true, opts)
	failed := true
	defer func() { sess.release(failed) }()
	hello := make([]byte, 0, helloLen)
	hello = append(hello, protocolVersion)
	hello = append(hello, ns[:]...)
	hello = append(hello, salt...)
	var flags byte
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

func (s *Service) handle(st network.Stream) {
	s.wg.Add(1)
	defer s.wg.Done()
	remote := st.Conn().RemotePeer()
	if err := reserve(st); err != nil {
		s.log.Warn("vault-sync: refusing session", "peer", remote, "err", err)
		st.Reset()
		return
	}
	defer st.Scope().ReleaseMemory(sessionMemory)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	unwatch := context.AfterFunc(ctx, func() { st.Reset() })
	defer unwatch()

	_ = st.SetReadDeadline(time.Now().Add(s.idleTimeout))
	fr := frameReader{r: bufio.NewReaderSize(st, bufSize)}
	typ, p, err := fr.next()
	if err != nil || typ != frameHello || len(p) != helloLen || p[0] != protocolVersion {
		msg := "expected a hello frame of protocol version 1"
		if err != nil {
			msg = err.Error()
		}
		s.refuse(st, CodeProtocol, msg)
		return
	}
	var ns NamespaceID
	copy(ns[:], p[1:])
	salt := p[1+idLen : 1+idLen+saltLen]
	live := p[helloLen-1]&helloFlagLive != 0
	if err := s.policy.AllowSync(remote, ns); err != nil {
		code := CodeInternal
		if errors.Is(err, ErrNotHosted) {
			code = CodeNotHosted
		}
		s.log.Info("vault-sync: refused", "peer", remote, "vault", ns.Short(), "err", err)
		s.refuse(st, byte(code), err.Error())
		return
	}
	// The hello reader may have buffered the peer's first turn: keep it.
	sess := newSession(s, st, fr.r, ns, salt, false, SyncOptions{Live: live})
	stats, err := sess.run(ctx)
	sess.release(err != nil)
	if err != nil && ctx.Err() == nil {
		s.log.Info("vault-sync: session ended", "peer", remote, "vault", ns.Short(), "err", err)
		sess.hangUp()
		return
	}
	s.log.Debug("vault-sync: session done", "peer", remote, "vault", ns.Short(),
		"stored", stats.Stored, "sent", stats.ItemsSent, "bytes_in", stats.BytesReceived, "bytes_out", stats.BytesSent)
	_ = st.Close()
}

func (s *Service) refuse(st network.Stream, code byte, msg string) {
	fw := frameWriter{w: bufio.NewWriterSize(st, 1024)}
	_ = st.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_ = fw.write(frameError, appendString([]byte{code}, truncate(msg, 1024)))
	_ = fw.flush()
	_ = st.CloseWrite()
	// Give the peer a moment to read the reason before the stream goes.
	_ = st.SetReadDeadline(time.Now().Add(2 * time.Second))
	var b [1]byte
	_, _ = st.Read(b[:])
	_ = st.Close()
}
