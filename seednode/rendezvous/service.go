package rendezvous

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/internal/lifecycle"
	"github.com/seedfleet/seedfleet/internal/wire"
	"github.com/seedfleet/seedfleet/seednode/identity"
)

// Defaults and bounds of the service's settings.
const (
	DefaultTTL                = 2 * time.Hour
	MaxTTL                    = 72 * time.Hour
	DefaultMaxRecordsPerAgent = 32
	// MaxRecordsPerAgentLimit caps WithMaxRecordsPerAgent.
	MaxRecordsPerAgentLimit = 1024
	DefaultMaxAgents        = 100_000
	DefaultMaxRecordBytes   = 256 << 20
	DefaultMaxClockSkew     = 10 * time.Minute
	DefaultSweepInterval    = time.Minute
)

// requestMemory is reserved from a stream's scope while a request is read:
// the largest request and the read buffer.
const (
	readBufSize   = 1024
	requestMemory = MaxRequestSize + readBufSize
)

// Authorizer decides which devices may register records for an agent (in
// Seedfleet: the operational keys the agent document lists, not revoked).
type Authorizer interface {
	// Authorized returns nil if device is a device of agentDID; otherwise
	// an error whose text is sent to the device.
	Authorized(agentDID string, device ed25519.PublicKey) error
}

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(agentDID string, device ed25519.PublicKey) error

// Authorized implements Authorizer.
func (f AuthorizerFunc) Authorized(agentDID string, device ed25519.PublicKey) error {
	return f(agentDID, device)
}

type config struct {
	ttl           time.Duration
	maxPerAgent   int
	maxAgents     int
	maxBytes      int64
	skew          time.Duration
	sweepInterval time.Duration
	now           func() time.Time
	reg           prometheus.Registerer
	log           *slog.Logger
	publicLookup  bool
	timeout       time.Duration // per request; StreamTimeout but in tests
}

// Option configures a Service. An option given a value out of its range
// makes New fail with an error that names it and the range.
type Option func(*config) error

func positive[T int | int64 | time.Duration](name string, v T) error {
	if v <= 0 {
		return fmt.Errorf("rendezvous: %s: %v is not positive", name, v)
	}
	return nil
}

// WithTTL sets how long a record is held after its timestamp (default
// DefaultTTL, at most MaxTTL). Devices re-register every TTL/2.
func WithTTL(d time.Duration) Option {
	return func(c *config) error {
		if err := positive("WithTTL", d); err != nil {
			return err
		}
		if d > MaxTTL {
			return fmt.Errorf("rendezvous: WithTTL: %s is more than MaxTTL (%s), the longest a device's client accepts", d, MaxTTL)
		}
		c.ttl = d
		return nil
	}
}

// WithMaxRecordsPerAgent sets how many records (devices) one agent may
// have on this seed (default DefaultMaxRecordsPerAgent, at most
// MaxRecordsPerAgentLimit).
func WithMaxRecordsPerAgent(n int) Option {
	return func(c *config) error {
		if err := positive("WithMaxRecordsPerAgent", n); err != nil {
			return err
		}
		if n > MaxRecordsPerAgentLimit {
			return fmt.Errorf("rendezvous: WithMaxRecordsPerAgent: %d is more than %d", n, MaxRecordsPerAgentLimit)
		}
		c.maxPerAgent = n
		return nil
	}
}

// WithMaxAgents sets how many agents' records the seed holds (default
// DefaultMaxAgents); with MaxRecordsPerAgent it bounds the service's memory.
func WithMaxAgents(n int) Option {
	return func(c *config) error {
		if err := positive("WithMaxAgents", n); err != nil {
			return err
		}
		c.maxAgents = n
		return nil
	}
}

// WithMaxRecordBytes bounds the memory the records take, in bytes of
// their encodings plus a small overhead each (default
// DefaultMaxRecordBytes).
func WithMaxRecordBytes(n int64) Option {
	return func(c *config) error {
		if err := positive("WithMaxRecordBytes", n); err != nil {
			return err
		}
		c.maxBytes = n
		return nil
	}
}

// WithClock sets the clock records are checked and expired against
// (default time.Now; for tests).
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("rendezvous: WithClock: nil clock")
		}
		c.now = now
		return nil
	}
}

// WithMaxClockSkew sets how far in the future a record's timestamp may be
// (default DefaultMaxClockSkew).
func WithMaxClockSkew(d time.Duration) Option {
	return func(c *config) error {
		if err := positive("WithMaxClockSkew", d); err != nil {
			return err
		}
		c.skew = d
		return nil
	}
}

// WithSweepInterval sets how often expired records are dropped in the
// background (default DefaultSweepInterval; they are also dropped whenever
// an agent's records are accessed).
func WithSweepInterval(d time.Duration) Option {
	return func(c *config) error {
		if err := positive("WithSweepInterval", d); err != nil {
			return err
		}
		c.sweepInterval = d
		return nil
	}
}

// WithRegisterer registers the service's metrics (seedfleet_rendezvous_*)
// on reg (default: none are registered). New fails if they cannot be
// registered there.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(c *config) error {
		if reg == nil {
			return errors.New("rendezvous: WithRegisterer: nil registerer")
		}
		c.reg = reg
		return nil
	}
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("rendezvous: WithLogger: nil logger")
		}
		c.log = l
		return nil
	}
}

// WithPublicLookup answers lookups from any peer. By default a lookup of
// an agent is answered only to a peer whose key the Authorizer allows for
// that agent, since records reveal where the agent's devices are.
func WithPublicLookup() Option { return func(c *config) error { c.publicLookup = true; return nil } }

// Service serves /seedfleet/rendezvous/1.0.0 on a seed: it holds devices'
// records in memory and answers lookups.
type Service struct {
	host host.Host
	auth Authorizer
	cfg  config
	log  *slog.Logger
	m    *metrics

	mu        sync.Mutex
	agents    map[string]*agentRecords
	nrec      int
	bytes     int64  // approximate memory of the records held
	lastSweep uint64 // µs, of a sweep forced by a full seed

	life   lifecycle.Group // handlers and the sweep
	active atomic.Int32    // handlers running
	ctx    context.Context
	cancel context.CancelFunc
}

// held is one stored record: its canonical encoding (what lookups serve)
// and the fields the store needs. It is never modified once stored (a newer
// record replaces the pointer), so lookups may use it after unlocking.
type held struct {
	enc       []byte
	device    ed25519.PublicKey // a slice of enc
	timestamp uint64            // µs
	expires   uint64            // µs
}

// heldOverhead approximates a held record's memory beyond its encoding.
const heldOverhead = 96

type agentRecords struct {
	recs []*held // at most maxPerAgent
}

// New registers the rendezvous handler on h and starts the expiry sweep;
// Close stops both and waits for them. auth decides which devices may
// register for (and, unless WithPublicLookup, look up) an agent; a nil auth
// refuses everyone. The options' defaults are in their doc comments.
func New(h host.Host, auth Authorizer, opts ...Option) (*Service, error) {
	if h == nil {
		return nil, errors.New("rendezvous: nil host")
	}
	c := config{ttl: DefaultTTL, maxPerAgent: DefaultMaxRecordsPerAgent, maxAgents: DefaultMaxAgents,
		maxBytes: DefaultMaxRecordBytes, skew: DefaultMaxClockSkew, sweepInterval: DefaultSweepInterval,
		timeout: StreamTimeout, now: time.Now, log: slog.Default()}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	m, err := newMetrics(c.reg)
	if err != nil {
		return nil, err
	}
	s := &Service{host: h, auth: auth, cfg: c, log: c.log, agents: map[string]*agentRecords{}, m: m}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.life.Enter() // open: never refused
	go s.sweepLoop()
	h.SetStreamHandler(ProtocolID, s.handle)
	return s, nil
}

// Close stops serving, ends requests in flight and the sweep, and waits for
// them. Idempotent.
func (s *Service) Close() error {
	s.life.Close(func() {
		s.host.RemoveStreamHandler(ProtocolID)
		s.cancel()
	})
	return nil
}

// inFlight is how many requests are being handled.
func (s *Service) inFlight() int { return int(s.active.Load()) }

// Stats are the service's figures.
type Stats struct {
	Agents  int   // agents with records held
	Records int   // records held
	Bytes   int64 // approximate memory of the records (see WithMaxRecordBytes)
}

// Stats returns how many agents and records the service holds (expired
// records not yet swept included).
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Agents: len(s.agents), Records: s.nrec, Bytes: s.bytes}
}

func (s *Service) handle(st network.Stream) {
	if !s.life.Enter() {
		_ = st.Reset()
		return
	}
	defer s.life.Done()
	s.active.Add(1)
	defer s.active.Add(-1)
	stop := context.AfterFunc(s.ctx, func() { _ = st.Reset() })
	defer stop()
	remote := st.Conn().RemotePeer()
	_ = st.SetDeadline(time.Now().Add(s.cfg.timeout))

	if err := st.Scope().SetService(ServiceName); err != nil {
		s.log.Warn("rendezvous: resource manager refused the stream", "peer", remote, "err", err)
		_ = st.Reset()
		return
	}
	if err := st.Scope().ReserveMemory(requestMemory, network.ReservationPriorityMedium); err != nil {
		s.refused(st, remote, refuse(CodeUnavailable, "this seed is out of resources for rendezvous requests; try again later"))
		return
	}
	defer st.Scope().ReleaseMemory(requestMemory)

	br := bufio.NewReaderSize(st, readBufSize)
	l, err := wire.ReadLength(br, MaxRequestSize, ErrProtocol)
	switch {
	case errors.Is(err, wire.ErrFrameTooLarge):
		s.refused(st, remote, refuse(CodeTooLarge, "%v (a record encodes to at most %d bytes)", err, maxRecordLen))
		return
	case errors.Is(err, ErrProtocol):
		s.refused(st, remote, refuse(CodeMalformed, "%v", err))
		return
	case err != nil:
		s.log.Debug("rendezvous: reading request", "peer", remote, "err", err)
		_ = st.Reset()
		return
	}
	body, err := wire.ReadBody(br, nil, l)
	if err != nil {
		s.log.Debug("rendezvous: reading request", "peer", remote, "err", err)
		_ = st.Reset()
		return
	}
	q, rerr := decodeRequest(body)
	if rerr != nil {
		s.refused(st, remote, rerr)
		return
	}
	switch q.kind {
	case reqRegister:
		if rerr := s.register(remote, q.record); rerr != nil {
			s.refused(st, remote, rerr)
			return
		}
		s.m.registrations.Inc()
		s.log.Debug("rendezvous: registered", "peer", remote, "agent", q.record.AgentDID, "context", q.record.Context)
		s.reply(st, wire.AppendFrame(nil, appendRegisterOK(nil, s.cfg.ttl)))
	case reqLookup:
		recs, rerr := s.lookup(remote, q.agentDID)
		if rerr != nil {
			s.refused(st, remote, rerr)
			return
		}
		// The response is built in its frame, in place: a lookup's
		// response can be large, and is held once.
		body := lookupOKLen(recs)
		n := wire.FrameLen(body)
		if err := st.Scope().ReserveMemory(n, network.ReservationPriorityMedium); err != nil {
			s.refused(st, remote, refuse(CodeUnavailable, "this seed is out of resources for a %d-byte lookup response; try again later", n))
			return
		}
		defer st.Scope().ReleaseMemory(n)
		s.m.lookups.Inc()
		s.reply(st, appendLookupOK(wire.AppendLength(make([]byte, 0, n), body), recs))
	}
}

// refused counts and logs a refusal and sends it.
func (s *Service) refused(st network.Stream, remote peer.ID, e *RefusedError) {
	s.m.refusals.WithLabelValues(e.Code.String()).Inc()
	s.log.Debug("rendezvous: refused", "peer", remote, "code", e.Code, "reason", e.Reason)
	s.reply(st, wire.AppendFrame(nil, appendRefusal(nil, e)))
}

// reply sends frame (a response with its length prefix) in one write, then
// waits (briefly, and reading at most a bounded amount) for the peer to
// finish, so that the stream is not reset under a response it has not read
// yet.
func (s *Service) reply(st network.Stream, frame []byte) {
	if _, err := st.Write(frame); err != nil {
		_ = st.Reset()
		return
	}
	if err := st.CloseWrite(); err != nil {
		_ = st.Reset()
		return
	}
	_ = st.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.CopyN(io.Discard, st, 2*MaxRequestSize); err != io.EOF {
		_ = st.Reset()
		return
	}
	_ = st.Close()
}

func (s *Service) authorized(agentDID string, device ed25519.PublicKey) error {
	if s.auth == nil {
		return errors.New("this seed has no authorizer configured: it accepts no rendezvous records")
	}
	return s.auth.Authorized(agentDID, bytes.Clone(device))
}

func micros(t time.Time) uint64 { return uint64(max(t.UnixMicro(), 0)) }

func satAdd(a, b uint64) uint64 {
	if a > ^uint64(0)-b {
		return ^uint64(0)
	}
	return a + b
}

// register checks rec, sent by remote, and stores it.
func (s *Service) register(remote peer.ID, rec Record) *RefusedError {
	self, err := identity.PublicKeyFromPeerID(remote)
	if err != nil {
		return refuse(CodeNotSelf, "your peer ID %s does not embed an Ed25519 key, so it is no device's key", remote)
	}
	if !self.Equal(rec.Device) {
		devID := shortKey(rec.Device)
		if id, err := identity.PeerID(rec.Device); err == nil {
			devID = id.String()
		}
		return refuse(CodeNotSelf, "the record is for device %s but you are %s: a device may register only its own record", devID, remote)
	}
	now := s.cfg.now()
	nowUS := micros(now)
	if rec.Timestamp > satAdd(nowUS, uint64(s.cfg.skew.Microseconds())) {
		return refuse(CodeFuture, "record timestamp %s is %s ahead of this seed's clock (%s; allowed skew %s): check the device's clock",
			rec.Time().UTC().Format(time.RFC3339), time.Duration(rec.Timestamp-nowUS)*time.Microsecond, now.UTC().Format(time.RFC3339), s.cfg.skew)
	}
	expires := satAdd(rec.Timestamp, uint64(s.cfg.ttl.Microseconds()))
	if expires <= nowUS {
		return refuse(CodeExpired, "record timestamp %s is older than this seed's record TTL of %s (seed time %s): sign a new record",
			rec.Time().UTC().Format(time.RFC3339), s.cfg.ttl, now.UTC().Format(time.RFC3339))
	}
	if err := rec.Verify(); err != nil {
		if errors.Is(err, ErrBadSignature) {
			return refuse(CodeBadSignature, "%v", err)
		}
		return refuse(CodeInvalidRecord, "%v", err)
	}
	if err := s.authorized(rec.AgentDID, rec.Device); err != nil {
		return refuse(CodeUnauthorized, "%s", wire.Truncate(err.Error(), maxReasonLen))
	}
	enc := rec.appendBinary(make([]byte, 0, rec.encodedLen()))
	devAt := 1 + wire.UvarintLen(uint64(len(rec.AgentDID))) + len(rec.AgentDID) + wire.UvarintLen(uint64(len(rec.Context))) + len(rec.Context)
	h := &held{enc: enc, device: ed25519.PublicKey(enc[devAt : devAt+keyLen : devAt+keyLen]), timestamp: rec.Timestamp, expires: expires}
	size := int64(len(enc) + heldOverhead)

	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.updateGauges()
	if ag := s.agents[rec.AgentDID]; ag != nil {
		s.dropExpired(rec.AgentDID, ag, nowUS) // may remove the agent
	}
	ag := s.agents[rec.AgentDID]
	if ag != nil {
		for i, old := range ag.recs {
			if !old.device.Equal(rec.Device) {
				continue
			}
			if bytes.Equal(old.enc, h.enc) {
				return nil // a retry of the registration it holds
			}
			if old.timestamp >= rec.Timestamp {
				return refuse(CodeReplay, "this seed holds a record of device %s for %s with timestamp %s, not older than this one (%s): a record replaces only older ones",
					remote, rec.AgentDID, Record{Timestamp: old.timestamp}.Time().UTC().Format(time.RFC3339Nano), rec.Time().UTC().Format(time.RFC3339Nano))
			}
			// A sweep in fits leaves ag.recs alone: its expired records
			// are already gone.
			grow := size - int64(len(old.enc)+heldOverhead)
			if grow > 0 && !s.fits(grow, nowUS) {
				return s.bytesFull()
			}
			ag.recs[i] = h
			s.bytes += grow
			return nil
		}
		if len(ag.recs) >= s.cfg.maxPerAgent {
			return refuse(CodeAgentFull, "agent %s already has %d device records on this seed, the most it keeps per agent; one is freed when a device's record expires (TTL %s)",
				rec.AgentDID, len(ag.recs), s.cfg.ttl)
		}
	} else if len(s.agents) >= s.cfg.maxAgents {
		s.maybeSweepLocked(nowUS)
		if len(s.agents) >= s.cfg.maxAgents {
			return refuse(CodeSeedFull, "this seed holds records of %d agents, the most it keeps; try another seed or later", len(s.agents))
		}
	}
	if !s.fits(size, nowUS) {
		return s.bytesFull()
	}
	if ag = s.agents[rec.AgentDID]; ag == nil {
		ag = &agentRecords{}
		s.agents[rec.AgentDID] = ag
	}
	ag.recs = append(ag.recs, h)
	s.nrec++
	s.bytes += size
	return nil
}

// fits reports whether n more bytes of records fit the budget, sweeping
// (at most once a second) if they do not at first. s.mu is held.
func (s *Service) fits(n int64, nowUS uint64) bool {
	if s.bytes+n <= s.cfg.maxBytes {
		return true
	}
	s.maybeSweepLocked(nowUS)
	return s.bytes+n <= s.cfg.maxBytes
}

func (s *Service) bytesFull() *RefusedError {
	return refuse(CodeSeedFull, "this seed holds %d bytes of records, the most it keeps (%d); try another seed or later", s.bytes, s.cfg.maxBytes)
}

// lookup returns the encodings of agentDID's unexpired records of devices
// that are still authorized, newest first.
func (s *Service) lookup(remote peer.ID, agentDID string) ([][]byte, *RefusedError) {
	if !s.cfg.publicLookup {
		self, err := identity.PublicKeyFromPeerID(remote)
		if err != nil {
			return nil, refuse(CodeUnauthorized, "this seed answers lookups only to devices of the agent; your peer ID %s does not embed an Ed25519 key", remote)
		}
		if err := s.authorized(agentDID, self); err != nil {
			return nil, refuse(CodeUnauthorized, "this seed answers lookups of %s only to devices of that agent: %s", agentDID, wire.Truncate(err.Error(), maxReasonLen-200))
		}
	}
	nowUS := micros(s.cfg.now())
	s.mu.Lock()
	var recs []*held
	if ag := s.agents[agentDID]; ag != nil {
		s.dropExpired(agentDID, ag, nowUS)
		recs = slices.Clone(ag.recs)
		s.updateGauges()
	}
	s.mu.Unlock()

	// A device revoked since it registered disappears from lookups at once,
	// not when its record expires.
	recs = slices.DeleteFunc(recs, func(h *held) bool { return s.authorized(agentDID, h.device) != nil })
	slices.SortFunc(recs, func(a, b *held) int {
		if c := cmp.Compare(b.timestamp, a.timestamp); c != 0 {
			return c
		}
		return bytes.Compare(a.device, b.device)
	})
	out := make([][]byte, 0, min(len(recs), s.cfg.maxPerAgent))
	size := 1 + 3 // status, count
	for _, h := range recs {
		if len(out) == s.cfg.maxPerAgent || size+3+len(h.enc) > MaxResponseSize {
			break
		}
		size += wire.UvarintLen(uint64(len(h.enc))) + len(h.enc)
		out = append(out, h.enc)
	}
	return out, nil
}

// dropExpired removes ag's expired records; an agent left without records
// is removed. s.mu is held.
func (s *Service) dropExpired(agentDID string, ag *agentRecords, nowUS uint64) {
	ag.recs = slices.DeleteFunc(ag.recs, func(h *held) bool {
		if h.expires > nowUS {
			return false
		}
		s.nrec--
		s.bytes -= int64(len(h.enc) + heldOverhead)
		return true
	})
	if len(ag.recs) == 0 {
		delete(s.agents, agentDID)
	}
}

// maybeSweepLocked sweeps unless a forced sweep ran in the last second: a
// flood of registrations at a limit must not turn each one into a scan of
// the whole store. s.mu is held.
func (s *Service) maybeSweepLocked(nowUS uint64) {
	if nowUS < s.lastSweep || nowUS-s.lastSweep >= uint64(time.Second.Microseconds()) {
		s.lastSweep = nowUS
		s.sweepLocked(nowUS)
	}
}

func (s *Service) sweepLocked(nowUS uint64) {
	for did, ag := range s.agents {
		s.dropExpired(did, ag, nowUS)
	}
}

// sweep drops every expired record.
func (s *Service) sweep() {
	nowUS := micros(s.cfg.now())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(nowUS)
	s.updateGauges()
}

func (s *Service) sweepLoop() {
	defer s.life.Done()
	t := time.NewTicker(s.cfg.sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.sweep()
		}
	}
}

// updateGauges publishes the store's size. s.mu is held.
func (s *Service) updateGauges() {
	s.m.records.Set(float64(s.nrec))
	s.m.agents.Set(float64(len(s.agents)))
}

type metrics struct {
	registrations prometheus.Counter
	lookups       prometheus.Counter
	refusals      *prometheus.CounterVec
	records       prometheus.Gauge
	agents        prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		registrations: prometheus.NewCounter(prometheus.CounterOpts{Name: "seedfleet_rendezvous_registrations_total",
			Help: "Rendezvous records accepted (new or replacing an older record of the same device)."}),
		lookups: prometheus.NewCounter(prometheus.CounterOpts{Name: "seedfleet_rendezvous_lookups_total",
			Help: "Rendezvous lookups answered."}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seedfleet_rendezvous_refusals_total",
			Help: "Rendezvous requests refused, by reason."}, []string{"reason"}),
		records: prometheus.NewGauge(prometheus.GaugeOpts{Name: "seedfleet_rendezvous_records",
			Help: "Rendezvous records held (expired ones until they are swept)."}),
		agents: prometheus.NewGauge(prometheus.GaugeOpts{Name: "seedfleet_rendezvous_agents",
			Help: "Agents with rendezvous records held."}),
	}
	for c := range codeNames {
		m.refusals.WithLabelValues(c.String())
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.registrations, m.lookups, m.refusals, m.records, m.agents} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("rendezvous: metrics: %w", err)
			}
		}
	}
	return m, nil
}
