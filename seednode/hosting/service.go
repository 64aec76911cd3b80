package hosting

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/internal/admission"
	"github.com/seedfleet/seedfleet/internal/lifecycle"
	"github.com/seedfleet/seedfleet/internal/wire"
	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/ticket"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// ServiceName is the resource manager's and the stream limiter's name for
// the hosting protocol.
const ServiceName = "seedfleet.hosting"

// Defaults of the service's settings.
const (
	// DefaultTimeout bounds one request: reading it, deciding (forwarding
	// included) and answering.
	DefaultTimeout = 15 * time.Second
	// forwardTimeout bounds one attempt at a home pod.
	forwardTimeout = 5 * time.Second
)

// Message kinds: the first byte of a frame to the service.
const (
	kindRequest   byte = 'R' // from a device: decide, forwarding to the subject's home pod if needed
	kindForwarded byte = 'F' // from a fleet pod: decide here; carries the device's address range
	kindReplicate byte = 'P' // from the home pod that accepted it: apply here too, no rate limits
	kindInfo      byte = 'I' // from anyone: answered with the fleet's ticket (text), unsigned
	kindBatch     byte = 'B' // from a fleet pod: accepted requests and records to apply here (see fanout.go)
	kindState     byte = 'S' // from a fleet pod: the state of the named vaults here (see state.go)
)

// maxFrame bounds a frame to the service: a request and a short header.
const maxFrame = MaxRequestSize + 256

type config struct {
	members func() fleet.Members
	fleet   bool // members given: the pod compares records with its peers
	state   func(ns [32]byte) VaultState
	limiter *admission.Limiter
	reg     prometheus.Registerer
	log     *slog.Logger
	timeout time.Duration
	// recordSync is how often records are compared with each peer pod.
	recordSync time.Duration
}

// Option configures a Service.
type Option func(*config) error

// WithMembers gives the fleet's membership, read for every request (it
// changes when the fleet scales: call MembersChanged after it does).
// Without it the pod is a fleet of one.
func WithMembers(members func() fleet.Members) Option {
	return func(c *config) error {
		if members == nil {
			return errors.New("hosting: WithMembers: nil function")
		}
		c.members, c.fleet = members, true
		return nil
	}
}

// WithVaultState answers fleet pods asking for the state of vaults here
// (default: every vault is reported as not hosted). A pod that hands a
// vault over to another drops its replica only once the other reports the
// same fingerprint and no missing blobs.
func WithVaultState(state func(ns [32]byte) VaultState) Option {
	return func(c *config) error {
		if state == nil {
			return errors.New("hosting: WithVaultState: nil function")
		}
		c.state = state
		return nil
	}
}

// WithAdmission shares a Limiter of unknown peers' streams (default: one of
// the service's own with admission.DefaultLimits); a seed passes its vault
// service's, so a device known to one service is known to all.
func WithAdmission(l *admission.Limiter) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("hosting: WithAdmission: nil limiter")
		}
		c.limiter = l
		return nil
	}
}

// WithRegisterer registers the service's metrics on reg (default: none are
// registered): seedfleet_hosting_answers_total, _forwards_total and
// _replications_total. New fails if they cannot be registered.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(c *config) error {
		if reg == nil {
			return errors.New("hosting: WithRegisterer: nil registerer")
		}
		c.reg = reg
		return nil
	}
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("hosting: WithLogger: nil logger")
		}
		c.log = l
		return nil
	}
}

// WithRecordSync sets how often the pod compares its records with each
// other pod of the fleet (default DefaultRecordSyncInterval; see
// RecordProtocol).
func WithRecordSync(interval time.Duration) Option {
	return func(c *config) error {
		if interval <= 0 {
			return fmt.Errorf("hosting: WithRecordSync: %s is not positive", interval)
		}
		c.recordSync = interval
		return nil
	}
}

// WithTimeout bounds one request (default DefaultTimeout).
func WithTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("hosting: WithTimeout: %s is not positive", d)
		}
		c.timeout = d
		return nil
	}
}

// Service answers hosting requests on a fleet pod: any pod answers for the
// whole fleet, deciding itself when it is the subject's home and asking the
// home pod otherwise.
type Service struct {
	host host.Host
	adm  *Admitter
	cfg  config
	m    *metrics

	life   lifecycle.Group
	ctx    context.Context
	cancel context.CancelFunc

	qmu    sync.Mutex
	queues map[peer.ID]*peerQueue // items waiting for each peer pod

	records  *recordSync // nil in a fleet of one
	notifiee network.Notifiee
}

// New registers the hosting protocol on h, deciding requests with adm, and
// in a fleet of several pods the record exchange (RecordProtocol). Call it
// before adm's records change: it indexes them.
func New(h host.Host, adm *Admitter, opts ...Option) (*Service, error) {
	if h == nil || adm == nil {
		return nil, errors.New("hosting: New needs a host and an admitter")
	}
	c := config{timeout: DefaultTimeout, log: slog.Default(), recordSync: DefaultRecordSyncInterval}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	if c.members == nil {
		self := fleet.Members{Pods: []peer.AddrInfo{{ID: h.ID()}}, Replicas: 1}
		c.members = func() fleet.Members { return self }
	}
	if c.limiter == nil {
		c.limiter = admission.Default()
	}
	if c.state == nil {
		c.state = func([32]byte) VaultState { return VaultState{} }
	}
	m, err := newMetrics(c.reg)
	if err != nil {
		return nil, err
	}
	s := &Service{host: h, adm: adm, cfg: c, m: m, queues: map[peer.ID]*peerQueue{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if c.fleet {
		if err := registerMembers(c.reg, c.members); err != nil {
			return nil, err
		}
		if err := s.startRecordSync(); err != nil {
			return nil, err
		}
	}
	h.SetStreamHandler(ProtocolID, s.handle)
	return s, nil
}

// MembersChanged makes the service act on the membership WithMembers now
// gives: requests are answered and forwarded by it at once; the records
// are indexed anew, and compared with the new peers soon.
func (s *Service) MembersChanged() {
	s.m.membershipChanges.Inc()
	if s.records != nil {
		s.records.setMembers(s.cfg.members())
	}
}

// startRecordSync indexes the records and starts the record exchange.
func (s *Service) startRecordSync() error {
	rs, err := newRecordSync(s, s.cfg.recordSync)
	if err != nil {
		return err
	}
	s.records = rs
	s.notifiee = &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) { rs.connected(c.RemotePeer()) }}
	s.host.Network().Notify(s.notifiee)
	s.host.SetStreamHandler(RecordProtocol, rs.handle)
	s.life.Enter()
	go rs.run()
	return nil
}

// Close stops serving and waits for requests in flight. Idempotent.
func (s *Service) Close() error {
	s.life.Close(func() {
		s.host.RemoveStreamHandler(ProtocolID)
		if s.records != nil {
			s.host.RemoveStreamHandler(RecordProtocol)
			s.host.Network().StopNotify(s.notifiee)
		}
		s.cancel()
	})
	return nil
}

// PlacementKey is the string a subject is placed by: an agent's DID, or a
// plain vault's namespace ID (so a plain vault lands where an AgentVault of
// the same namespace would).
func PlacementKey(kind SubjectKind, subject ed25519.PublicKey) string {
	if kind == SubjectVault && len(subject) == 32 {
		return vault.NamespaceID(subject).String()
	}
	return identity.DIDKey(subject)
}

func (s *Service) handle(st network.Stream) {
	if !s.life.Enter() {
		_ = st.Reset()
		return
	}
	defer s.life.Done()
	remote := st.Conn().RemotePeer()
	tk, err := s.cfg.limiter.Admit(ServiceName, remote, st.Conn().RemoteMultiaddr())
	if err != nil {
		s.m.answers.WithLabelValues("Refused", "stream").Inc()
		_ = st.Reset()
		return
	}
	defer tk.Release()
	stop := context.AfterFunc(s.ctx, func() { _ = st.Reset() })
	defer stop()
	_ = st.SetDeadline(time.Now().Add(s.cfg.timeout))
	if err := st.Scope().SetService(ServiceName); err != nil {
		_ = st.Reset()
		return
	}
	// Only the fleet's pods send batches, which are larger than a request.
	limit := maxFrame
	if _, member := s.cfg.members().IsMember(remote); member {
		limit = maxBatchFrame
	}
	if err := st.Scope().ReserveMemory(limit+4096, network.ReservationPriorityMedium); err != nil {
		s.reply(st, refuse(ReasonUnavailable, "this seed is out of memory for hosting requests; try another seed of the fleet"))
		return
	}
	defer st.Scope().ReleaseMemory(limit + 4096)

	frame, err := wire.ReadFrame(bufio.NewReaderSize(st, 4096), limit, ErrMalformed)
	if err != nil {
		if errors.Is(err, ErrMalformed) {
			s.reply(st, refuse(ReasonMalformed, "%v", err))
		} else {
			_ = st.Reset()
		}
		return
	}
	switch frame[0] {
	case kindInfo:
		s.m.answers.WithLabelValues("OK", "Info").Inc()
		s.send(st, []byte(s.Ticket().String()))
		return
	case kindBatch, kindState:
		members := s.cfg.members()
		if _, ok := members.IsMember(remote); !ok {
			s.reply(st, refuse(ReasonUnauthorized, "only pods of this fleet may send records or ask for vault states"))
			return
		}
		var out []byte
		if frame[0] == kindBatch {
			out, err = s.applyBatch(members, frame[1:])
		} else {
			out, err = s.answerState(frame[1:])
		}
		if err != nil {
			_ = st.Reset()
			return
		}
		s.send(st, out)
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.timeout)
	defer cancel()
	s.reply(st, s.decide(ctx, remote, admission.Range(st.Conn().RemoteMultiaddr()), frame))
}

// Ticket is the fleet's ticket as this pod knows it: its name, policy,
// replicas, size and its first ticket.MaxPeers pods.
func (s *Service) Ticket() ticket.FleetTicket {
	m := s.cfg.members()
	p := s.adm.Policy()
	pods := m.Pods[:min(len(m.Pods), ticket.MaxPeers)]
	return ticket.FleetTicket{Name: p.Fleet, Admission: p.Admission, Replicas: m.Replicas, Pods: len(m.Pods),
		Peers: slices.Clone(pods)}
}

// decide answers one frame.
func (s *Service) decide(ctx context.Context, remote peer.ID, from string, frame []byte) *Answer {
	kind, body := frame[0], frame[1:]
	members := s.cfg.members()
	replicate := false
	switch kind {
	case kindRequest:
	case kindForwarded, kindReplicate:
		if _, ok := members.IsMember(remote); !ok {
			// A pod that joined as the fleet scaled may forward before this
			// pod applied the new membership: the forwarder tries the
			// subject's other home pods, then tells the device to retry.
			return &Answer{Reason: ReasonUnavailable, Message: "only pods of this fleet may forward requests, and this pod does not count the sender among them (the fleet may be changing size); try again shortly",
				RetryAfter: 5 * time.Second}
		}
		d := &wire.Decoder{B: body, Sentinel: ErrMalformed}
		from = string(d.LenBytes("address range", 64))
		if d.Err != nil {
			return refuse(ReasonMalformed, "%v", d.Err)
		}
		body, replicate = d.B, kind == kindReplicate
	default:
		return refuse(ReasonMalformed, "unknown message kind %d", kind)
	}
	req, err := UnmarshalRequest(body)
	if err != nil {
		return refuse(ReasonMalformed, "%v", err)
	}
	home := members.Home(PlacementKey(req.Kind, req.Subject))
	var ans *Answer
	switch {
	case slices.Contains(home, members.Self) || len(home) == 0:
		ans = s.adm.handle(req, from, replicate)
		if ans.OK() && kind != kindReplicate && req.Op != OpStatus {
			s.replicate(ctx, members, home, from, body)
		}
	case kind == kindRequest:
		ans = s.forward(ctx, members, home, from, body)
	default:
		// A pod forwarded to the wrong home: the memberships differ while
		// the fleet scales. Refuse rather than bounce the request around.
		ans = &Answer{Reason: ReasonUnavailable, Message: "the fleet is changing size; try again shortly", RetryAfter: 5 * time.Second}
	}
	if ans.OK() {
		ans.Seeds = members.Peers(home)
	}
	return ans
}

// forward asks the subject's home pods in rank order until one answers.
func (s *Service) forward(ctx context.Context, m fleet.Members, home []int, from string, body []byte) *Answer {
	msg := wire.AppendLenBytes([]byte{kindForwarded}, from)
	msg = append(msg, body...)
	var errs []error
	var unavailable *Answer
	for _, o := range home {
		ans, err := s.ask(ctx, m.Pods[o], msg)
		if err == nil && ans.Reason != ReasonUnavailable {
			s.m.forwards.WithLabelValues("ok").Inc()
			return ans
		}
		if err == nil {
			unavailable, err = ans, errors.New(ans.Message)
		}
		errs = append(errs, fmt.Errorf("pod %d: %w", o, err))
	}
	s.m.forwards.WithLabelValues("failed").Inc()
	s.cfg.log.Warn("hosting: no home pod of the subject answered", "err", errors.Join(errs...))
	if unavailable != nil {
		return unavailable // a home pod said why, and when to try again
	}
	return &Answer{Reason: ReasonUnavailable, Message: "the seeds that hold this agent cannot be reached now; try again in a minute",
		RetryAfter: time.Minute}
}

// replicate queues an accepted request for the subject's other home pods:
// the answer does not wait for them (see fanout.go).
func (s *Service) replicate(ctx context.Context, m fleet.Members, home []int, from string, body []byte) {
	item := batchItem{typ: itemRequest, body: wire.AppendLenBytes(wire.AppendLenBytes(nil, from), body)}
	for _, o := range home {
		if o == m.Self {
			continue
		}
		if err := s.enqueue(ctx, m.Pods[o], item); err != nil {
			s.m.replications.WithLabelValues("failed").Inc()
			s.cfg.log.Info("hosting: a record not queued for a home pod", "pod", m.Pods[o].ID, "err", err)
		}
	}
}

// CopyRecord queues rec for the pods at ordinals (those that became the
// subject's home pods as the fleet scaled): each stores it unless it holds
// a newer one. It waits only for room in the queues.
func (s *Service) CopyRecord(ctx context.Context, rec *Record, ordinals []int) {
	m := s.cfg.members()
	item := batchItem{typ: itemRecord, body: wire.AppendLenBytes(nil, rec.encode())}
	for _, o := range ordinals {
		if o == m.Self || o < 0 || o >= len(m.Pods) {
			continue
		}
		if err := s.enqueue(ctx, m.Pods[o], item); err != nil {
			s.m.replications.WithLabelValues("failed").Inc()
		}
	}
}

// ask sends msg to pod p and reads its answer.
func (s *Service) ask(ctx context.Context, p peer.AddrInfo, msg []byte) (*Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	if len(p.Addrs) > 0 {
		s.host.Peerstore().AddAddrs(p.ID, p.Addrs, time.Hour)
	}
	return exchange(ctx, s.host, p.ID, msg)
}

// reply writes the answer and closes the stream.
func (s *Service) reply(st network.Stream, ans *Answer) {
	s.m.answers.WithLabelValues(outcome(ans), ans.Reason.String()).Inc()
	s.send(st, ans.Marshal())
}

// send writes one frame and closes the stream.
func (s *Service) send(st network.Stream, msg []byte) {
	if err := wire.WriteFrame(st, msg); err != nil {
		_ = st.Reset()
		return
	}
	_ = st.CloseWrite()
	// Wait briefly for the peer to read and close, so the answer is not
	// reset away under it.
	_ = st.SetReadDeadline(time.Now().Add(2 * time.Second))
	var buf [1]byte
	_, _ = st.Read(buf[:])
	_ = st.Close()
}

func outcome(a *Answer) string {
	if a.OK() {
		return "OK"
	}
	return "Refused"
}

// Ask sends a signed request to a seed of the fleet and returns its answer;
// a refusal is an Answer whose Err is not nil, not an error.
func Ask(ctx context.Context, h host.Host, seed peer.AddrInfo, req *Request) (*Answer, error) {
	if len(seed.Addrs) > 0 {
		h.Peerstore().AddAddrs(seed.ID, seed.Addrs, time.Hour)
	}
	return exchange(ctx, h, seed.ID, append([]byte{kindRequest}, req.Marshal()...))
}

// FleetInfo asks a seed for its fleet's ticket: what a device needs to
// sign requests for the fleet when it knows only one seed's address.
func FleetInfo(ctx context.Context, h host.Host, seed peer.AddrInfo) (ticket.FleetTicket, error) {
	if len(seed.Addrs) > 0 {
		h.Peerstore().AddAddrs(seed.ID, seed.Addrs, time.Hour)
	}
	frame, err := roundTrip(ctx, h, seed.ID, []byte{kindInfo}, ticket.MaxTextLen)
	if err != nil {
		return ticket.FleetTicket{}, err
	}
	t, err := ticket.ParseFleetTicket(string(frame))
	if err != nil {
		return ticket.FleetTicket{}, fmt.Errorf("seed %s answered with a bad fleet ticket: %w", seed.ID, err)
	}
	return t, nil
}

// exchange sends one frame on a new stream and reads one answer.
func exchange(ctx context.Context, h host.Host, p peer.ID, msg []byte) (*Answer, error) {
	frame, err := roundTrip(ctx, h, p, msg, MaxAnswerSize)
	if err != nil {
		return nil, err
	}
	return UnmarshalAnswer(frame)
}

// roundTrip sends one frame on a new stream and reads one frame back.
func roundTrip(ctx context.Context, h host.Host, p peer.ID, msg []byte, limit int) ([]byte, error) {
	st, err := h.NewStream(ctx, p, ProtocolID)
	if err != nil {
		return nil, fmt.Errorf("opening a hosting stream to %s: %w", p, err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	if err := wire.WriteFrame(st, msg); err != nil {
		_ = st.Reset()
		return nil, fmt.Errorf("sending the request to %s: %w", p, err)
	}
	_ = st.CloseWrite()
	frame, err := wire.ReadFrame(bufio.NewReaderSize(st, 4096), limit, ErrMalformed)
	if err != nil {
		_ = st.Reset()
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("reading the answer from %s: the seed closed the stream without one (is it a fleet pod?): %w", p, err)
		}
		return nil, fmt.Errorf("reading the answer from %s: %w", p, err)
	}
	return frame, nil
}
