package blobs

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
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

// ProtocolID is the libp2p protocol of verified blob transfers: one
// request (a frame: version, hash, group ranges) and its answer (a status
// byte, then the verified stream, or a refusal's reason) per stream.
const ProtocolID = "/seedfleet/blobs/1.0.0"

// ProtocolPipeline carries the same requests and answers, any number of
// them one after another on one stream: the fetcher sends requests ahead
// (up to pipelineDepth unanswered) and the sender answers them in order,
// so a collection of many small blobs costs no round trip per member. The
// fetcher ends the stream by closing its write side; a peer that predates
// it does not speak it, and a fetcher then uses ProtocolID per blob.
const ProtocolPipeline = "/seedfleet/blobs/pipeline/1.0.0"

// ServiceName is the resource-manager service of blob streams.
const ServiceName = "seedfleet.blobs"

const (
	requestVersion = 1
	maxRequest     = 64 << 10
	maxRanges      = 1024
	streamBuf      = 256 << 10

	statusOK       = 0
	statusNotFound = 1
	statusRefused  = 2
)

// Policy decides whether a peer may fetch a blob (nil: anyone may).
type Policy func(p peer.ID, hash [32]byte) error

// Option configures a Service. An option given an invalid argument (nil,
// or a duration that is not positive) makes NewService fail with an error
// that names it.
type Option func(*Service) error

// DefaultIdleTimeout is how long a transfer waits for a silent peer.
const DefaultIdleTimeout = 30 * time.Second

// WithPolicy restricts who may fetch what (default: anyone may fetch any
// complete blob).
func WithPolicy(p Policy) Option {
	return func(s *Service) error {
		if p == nil {
			return errors.New("blobs: WithPolicy: nil policy")
		}
		s.policy = p
		return nil
	}
}

// WithIdleTimeout sets how long a transfer waits for a silent peer (default
// DefaultIdleTimeout); it must be positive.
func WithIdleTimeout(d time.Duration) Option {
	return func(s *Service) error {
		if d <= 0 {
			return fmt.Errorf("blobs: WithIdleTimeout: %s is not positive", d)
		}
		s.idle = d
		return nil
	}
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(s *Service) error {
		if l == nil {
			return errors.New("blobs: WithLogger: nil logger")
		}
		s.log = l
		return nil
	}
}

// DefaultRequestTimeout is how long an inbound stream may take to send its
// request (a few hundred bytes) before it is reset.
const DefaultRequestTimeout = 5 * time.Second

// WithRequestTimeout sets how long an inbound stream may take to send its
// request (default DefaultRequestTimeout, never more than the idle timeout);
// it must be positive.
func WithRequestTimeout(d time.Duration) Option {
	return func(s *Service) error {
		if d <= 0 {
			return fmt.Errorf("blobs: WithRequestTimeout: %s is not positive", d)
		}
		s.requestTimeout = d
		return nil
	}
}

// WithAdmission shares a Limiter of unknown peers' streams (default: one of
// the service's own with admission.DefaultLimits). A seed passes its vault
// service's (vault.Service.Admission): a peer that completed a vault
// session is known to both. An unknown peer's stream holds a place among
// unknown peers' streams for as long as it is open, and is reset past the
// caps.
func WithAdmission(l *admission.Limiter) Option {
	return func(s *Service) error {
		if l == nil {
			return errors.New("blobs: WithAdmission: nil limiter")
		}
		s.adm = l
		return nil
	}
}

// WithRegisterer registers the service's metrics on reg (default: none are
// registered): those of its admission Limiter (seedfleet_stream_refusals_total
// and its companions); registering a Limiter the vault service registered
// already is not an error.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(s *Service) error {
		if reg == nil {
			return errors.New("blobs: WithRegisterer: nil registerer")
		}
		s.reg = reg
		return nil
	}
}

// Service serves the store's complete blobs and fetches blobs from peers.
type Service struct {
	host           host.Host
	store          *Store
	policy         Policy
	idle           time.Duration
	requestTimeout time.Duration
	adm            *admission.Limiter
	reg            prometheus.Registerer
	log            *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	life   lifecycle.Group // transfers served

	activeMu   sync.Mutex
	active     int       // transfers being served
	lastActive time.Time // when the last one ended
}

func (s *Service) serving(delta int) {
	s.activeMu.Lock()
	s.active += delta
	s.lastActive = time.Now()
	s.activeMu.Unlock()
}

// WaitServed returns once no transfer is being served and none has been for
// quiet, or when ctx ends. A device uses it to stay online while a seed
// fetches the blobs its new entries refer to.
func (s *Service) WaitServed(ctx context.Context, quiet time.Duration) error {
	t := time.NewTicker(quiet / 10)
	defer t.Stop()
	start := time.Now()
	for {
		s.activeMu.Lock()
		idle := s.active == 0 && time.Since(s.lastActive) >= quiet && time.Since(start) >= quiet
		s.activeMu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// NewService registers the blob protocol handler on h, serving the complete
// blobs of st and fetching into it (both required); Close unregisters it and
// waits for transfers in flight. The options' defaults are in their doc
// comments. The name says which of the package's two halves it builds (Open
// opens the store).
func NewService(h host.Host, st *Store, opts ...Option) (*Service, error) {
	if h == nil {
		return nil, errors.New("blobs: nil host")
	}
	if st == nil {
		return nil, errors.New("blobs: nil store")
	}
	s := &Service{host: h, store: st, idle: DefaultIdleTimeout, requestTimeout: DefaultRequestTimeout, log: slog.Default()}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(s); err != nil {
			return nil, err
		}
	}
	s.requestTimeout = min(s.requestTimeout, s.idle)
	if s.adm == nil {
		s.adm = admission.Default()
	}
	if s.reg != nil {
		if err := s.adm.Register(s.reg); err != nil {
			return nil, fmt.Errorf("blobs: %w", err)
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	h.SetStreamHandler(ProtocolID, s.handle)
	h.SetStreamHandler(ProtocolPipeline, s.handlePipeline)
	return s, nil
}

// Close stops serving and waits for transfers in flight. Idempotent.
func (s *Service) Close() error {
	s.life.Close(func() {
		s.host.RemoveStreamHandler(ProtocolID)
		s.host.RemoveStreamHandler(ProtocolPipeline)
		s.cancel()
	})
	return nil
}

type request struct {
	hash   [32]byte
	ranges Ranges
}

func (r *request) encode() []byte {
	b := []byte{requestVersion}
	b = append(b, r.hash[:]...)
	b = binary.AppendUvarint(b, uint64(len(r.ranges)))
	for _, g := range r.ranges {
		b = binary.AppendUvarint(b, g.Start)
		b = binary.AppendUvarint(b, g.End-g.Start)
	}
	return b
}

// ErrBadRequest marks a malformed request.
var ErrBadRequest = errors.New("malformed blob request")

func decodeRequest(b []byte) (request, error) {
	var r request
	if len(b) < 1+32 || b[0] != requestVersion {
		return r, fmt.Errorf("%w: want version %d and a hash", ErrBadRequest, requestVersion)
	}
	copy(r.hash[:], b[1:])
	b = b[33:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > maxRanges {
		return r, fmt.Errorf("%w: range count", ErrBadRequest)
	}
	b = b[k:]
	for i := uint64(0); i < n; i++ {
		start, k1 := binary.Uvarint(b)
		if k1 <= 0 {
			return r, fmt.Errorf("%w: range %d", ErrBadRequest, i)
		}
		count, k2 := binary.Uvarint(b[k1:])
		if k2 <= 0 || count == 0 || start+count < start {
			return r, fmt.Errorf("%w: range %d", ErrBadRequest, i)
		}
		b = b[k1+k2:]
		r.ranges = append(r.ranges, GroupRange{start, start + count})
	}
	if len(b) != 0 {
		return r, fmt.Errorf("%w: %d trailing bytes", ErrBadRequest, len(b))
	}
	return r, nil
}

// deadlineConn pushes the stream's deadline back as the transfer goes on,
// so a transfer fails only when the peer goes silent (for between 7/8 of
// idle and idle), not when it is long. It moves the deadline at most every
// idle/8, not on each of a transfer's hundred thousand reads.
type deadlineConn struct {
	s                 network.Stream
	idle              time.Duration
	readSet, writeSet time.Time // when each deadline was last moved
}

func (d *deadlineConn) Read(p []byte) (int, error) {
	if now := time.Now(); now.Sub(d.readSet) >= d.idle/8 {
		_ = d.s.SetReadDeadline(now.Add(d.idle))
		d.readSet = now
	}
	return d.s.Read(p)
}

func (d *deadlineConn) Write(p []byte) (int, error) {
	if now := time.Now(); now.Sub(d.writeSet) >= d.idle/8 {
		_ = d.s.SetWriteDeadline(now.Add(d.idle))
		d.writeSet = now
	}
	return d.s.Write(p)
}

// requestMemory is what an inbound stream holds until its request is read:
// the largest request and a small read buffer. The transfer's buffers
// (2×streamBuf) are reserved once the request is allowed.
const requestMemory = maxRequest + 4096

// admissionService names this service in the admission metrics.
const admissionService = "blobs"

func (s *Service) handle(st network.Stream) { s.serve(st, false) }

// handlePipeline serves ProtocolPipeline: requests one after another on one
// stream, answered in order.
func (s *Service) handlePipeline(st network.Stream) { s.serve(st, true) }

func (s *Service) serve(st network.Stream, pipeline bool) {
	if !s.life.Enter() {
		_ = st.Reset()
		return
	}
	defer s.life.Done()
	remote := st.Conn().RemotePeer()
	ticket, err := s.adm.Admit(admissionService, remote, st.Conn().RemoteMultiaddr())
	if err != nil {
		var re *admission.RefusedError
		reason := admission.ReasonTotal
		if errors.As(err, &re) {
			reason = re.Reason
		}
		s.adm.Log(s.log, admissionService, reason, "blobs: refused a stream of an unknown peer", "peer", remote, "err", err)
		st.Reset()
		return
	}
	defer ticket.Release()
	s.serving(1)
	defer s.serving(-1)
	defer st.Close()
	if err := st.Scope().SetService(ServiceName); err != nil {
		s.adm.Refused(s.log, admissionService, admission.ReasonResources, "blobs: refused a transfer", "peer", remote, "err", err)
		st.Reset()
		return
	}
	if err := st.Scope().ReserveMemory(requestMemory, ticket.Priority()); err != nil {
		s.adm.Refused(s.log, admissionService, admission.ReasonResources, "blobs: refused a transfer", "peer", remote, "known", ticket.Known(), "err", err)
		st.Reset()
		return
	}
	defer st.Scope().ReleaseMemory(requestMemory)
	stop := context.AfterFunc(s.ctx, func() { st.Reset() })
	defer stop()
	t := &transfer{s: s, st: st, remote: remote, ticket: ticket, pipeline: pipeline,
		conn: &deadlineConn{s: st, idle: s.idle}}
	defer t.release()
	// The first request is read under its own, short deadline; the
	// transfer's deadlines move with it (deadlineConn). A pipeline's later
	// requests may come as slowly as the peer reads the answers.
	_ = st.SetReadDeadline(time.Now().Add(s.requestTimeout))
	br := bufio.NewReaderSize(st, 4096)
	for n := 0; ; n++ {
		if n > 0 {
			if br.Buffered() == 0 {
				if err := t.out.Flush(); err != nil {
					st.Reset()
					return
				}
			}
			_ = st.SetReadDeadline(time.Now().Add(s.idle))
		}
		raw, err := wire.ReadFrame(br, maxRequest, ErrBadRequest)
		if n > 0 && errors.Is(err, io.EOF) {
			_ = st.CloseWrite() // every request answered
			return
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, network.ErrReset) {
			st.Reset() // the peer ended it: nothing refused
			return
		}
		if err != nil {
			s.adm.Refused(s.log, admissionService, admission.ReasonHello, "blobs: no valid request", "peer", remote, "known", ticket.Known(), "err", err)
			st.Reset()
			return
		}
		if !t.answer(raw) {
			_ = t.out.Flush() // a refusal's reason, if the stream is not reset
			return
		}
		if !pipeline {
			_ = st.CloseWrite()
			return
		}
	}
}

// transfer is a served stream: one request, or a pipeline of them.
type transfer struct {
	s        *Service
	st       network.Stream
	remote   peer.ID
	ticket   *admission.Ticket
	pipeline bool
	conn     *deadlineConn
	out      *bufio.Writer // answers; a pipeline's whole answers, else the status
	reserved bool          // the transfer's buffers are reserved
	asm      assembler     // its buffers serve each blob of a pipeline in turn
}

func (t *transfer) release() {
	if t.reserved {
		t.st.Scope().ReleaseMemory(t.memory())
	}
}

// memory is what a transfer reserves once it has a blob to send: the
// stream's assembly and read buffers, and a pipeline's answer buffer.
func (t *transfer) memory() int {
	if t.pipeline {
		return 3 * streamBuf
	}
	return 2 * streamBuf
}

// answer answers one request; false ends the stream.
func (t *transfer) answer(raw []byte) bool {
	s, st, remote := t.s, t.st, t.remote
	if t.out == nil {
		size := 4096 // status replies only
		if t.pipeline {
			size = streamBuf
		}
		t.out = bufio.NewWriterSize(t.conn, size)
	}
	req, err := decodeRequest(raw)
	if err == nil && s.policy != nil {
		err = s.policy(remote, req.hash)
	}
	if err != nil {
		reason := admission.ReasonPolicy
		if errors.Is(err, ErrBadRequest) {
			reason = admission.ReasonHello
		}
		s.adm.Refused(s.log, admissionService, reason, "blobs: refused a request", "peer", remote, "blob", ID(req.hash).Short(), "err", err)
		_ = writeStatus(t.out, statusRefused, err.Error())
		// A pipeline goes on after a request refused by policy: the peer
		// may fetch the others. A malformed one ends it.
		return t.pipeline && !errors.Is(err, ErrBadRequest)
	}
	blob, err := s.store.OpenBlob(req.hash)
	if err != nil {
		s.log.Debug("blobs: asked for a blob this node does not have", "peer", remote, "blob", ID(req.hash).Short(), "err", err)
		_ = writeStatus(t.out, statusNotFound, "")
		return t.pipeline
	}
	defer blob.Close()
	if !t.reserved {
		if err := st.Scope().ReserveMemory(t.memory(), t.ticket.Priority()); err != nil {
			s.adm.Refused(s.log, admissionService, admission.ReasonResources, "blobs: refused a transfer", "peer", remote, "blob", ID(req.hash).Short(), "known", t.ticket.Known(), "err", err)
			_ = writeStatus(t.out, statusRefused, "this node is too busy to send the blob now (try again later)")
			return false
		}
		t.reserved = true
	}
	// A single transfer's status byte goes out on its own: WriteStream
	// assembles the stream in buffers of its own and writes them straight
	// to the stream. A pipeline's answers go through out, so many small
	// blobs make few writes.
	var w io.Writer = t.out
	if err := t.out.WriteByte(statusOK); err != nil {
		st.Reset()
		return false
	}
	if !t.pipeline {
		if err := t.out.Flush(); err != nil {
			st.Reset()
			return false
		}
		w = t.conn
	}
	if err := t.asm.writeStream(w, blob.Size, blob.Data, blob.Outboard, req.ranges); err != nil {
		s.log.Info("blobs: transfer ended", "peer", remote, "blob", ID(req.hash).Short(), "err", err)
		st.Reset()
		return false
	}
	return true
}

// writeStatus writes a status without data (and a refusal's reason); a
// pipeline's is flushed with the answers after it.
func writeStatus(w *bufio.Writer, status byte, msg string) error {
	_ = w.WriteByte(status)
	if status == statusRefused {
		_ = wire.WriteFrame(w, []byte(msg))
	}
	if w.Size() > 4096 {
		return nil
	}
	return w.Flush()
}

// ByteSpan is a byte range of a blob; Length 0 means "to the end".
type ByteSpan struct{ Offset, Length uint64 }

// FetchOptions tune Fetch.
type FetchOptions struct {
	// Spans to fetch; none means the whole blob.
	Spans []ByteSpan
	// Size, if known (from a ticket or an entry), is checked against the
	// sender's and lets a resumed transfer ask only for missing groups.
	Size *uint64
	// MaxSize refuses larger blobs before any data is written (0: no limit).
	MaxSize uint64
	// Progress is called as verified data arrives, at most every
	// ProgressEvery (default 100 ms; negative: after every group).
	Progress      func(FetchProgress)
	ProgressEvery time.Duration
}

// FetchProgress reports a transfer in flight.
type FetchProgress struct {
	Size           uint64
	VerifiedBytes  uint64 // in this transfer
	ResumedGroups  uint64 // verified before this transfer and not fetched again
	RequestedBytes uint64
	// Members and MembersDone count a collection's members, and those
	// verified (members complete before the fetch count as done, and their
	// bytes as verified).
	Members     uint64
	MembersDone uint64
}

// FetchStats says what a fetch did.
type FetchStats struct {
	Size            uint64
	Complete        bool
	GroupsFetched   uint64 // verified and written by this fetch
	GroupsSkipped   uint64 // already verified before (resume)
	BytesReceived   int64
	AlreadyComplete bool
	Duration        time.Duration
	// MembersFetched and MembersSkipped count a collection's members this
	// fetch verified and stored, and those complete before it.
	MembersFetched uint64
	MembersSkipped uint64
}

// ErrRefused: the peer refused the request (it says why).
var ErrRefused = errors.New("peer refused the blob request")

func spansToRanges(spans []ByteSpan) Ranges {
	var r Ranges
	for _, sp := range spans {
		start := sp.Offset / GroupSize
		end := uint64(1<<63 - 1)
		if sp.Length > 0 && sp.Offset+sp.Length > sp.Offset {
			end = max(start+1, (sp.Offset+sp.Length+GroupSize-1)/GroupSize)
		}
		r = append(r, GroupRange{start, end})
	}
	return r
}

// countingReader counts bytes read.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// fetchSink opens the receiver once the size is known and reports progress.
type fetchSink struct {
	s        *Service
	hash     [32]byte
	opts     FetchOptions
	recv     *Receiver
	progress FetchProgress
	last     time.Time
}

func (f *fetchSink) Size(size uint64) error {
	if f.opts.Size != nil && *f.opts.Size != size {
		return fmt.Errorf("%w: the peer says %d bytes, the ticket or entry says %d", ErrSizeMismatch, size, *f.opts.Size)
	}
	if f.opts.MaxSize > 0 && size > f.opts.MaxSize {
		return fmt.Errorf("blob of %d bytes exceeds the allowed %d bytes", size, f.opts.MaxSize)
	}
	f.progress.Size = size
	if f.recv == nil {
		r, err := f.s.store.Receive(f.hash, size)
		if err != nil {
			return err
		}
		f.recv = r
	}
	return f.recv.Size(size)
}

func (f *fetchSink) Parent(off uint64, node []byte) error { return f.recv.Parent(off, node) }

func (f *fetchSink) groupBuffer(i uint64) *[GroupSize]byte { return f.recv.groupBuffer(i) }

func (f *fetchSink) Group(i uint64, data []byte) error {
	if err := f.recv.Group(i, data); err != nil {
		return err
	}
	f.progress.VerifiedBytes += uint64(len(data))
	every := f.opts.ProgressEvery
	if every == 0 {
		every = 100 * time.Millisecond
	}
	if f.opts.Progress != nil && (every < 0 || time.Since(f.last) > every) {
		f.last = time.Now()
		f.opts.Progress(f.progress)
	}
	return nil
}

// Fetch downloads (the requested spans of) blob h from peer p, verifying
// every group before it is written. Groups verified by an earlier,
// interrupted fetch are not requested again. On a verification failure the
// groups verified so far are kept and the error names the bad group.
func (s *Service) Fetch(ctx context.Context, p peer.ID, h [32]byte, opts FetchOptions) (stats FetchStats, err error) {
	start := time.Now()
	defer func() { stats.Duration = time.Since(start) }()
	st, err := s.store.Stat(h)
	if err != nil {
		return stats, err
	}
	if st.State == Complete {
		return FetchStats{Size: st.Size, Complete: true, AlreadyComplete: true}, nil
	}
	want := spansToRanges(opts.Spans)
	sink := &fetchSink{s: s, hash: h, opts: opts}
	defer func() {
		if sink.recv != nil {
			complete, cerr := sink.recv.Close()
			stats.Complete = complete
			stats.GroupsFetched = sink.recv.VerifiedGroups()
			if err == nil {
				err = cerr
			}
		}
	}()
	ask := want
	if st.State == Partial || opts.Size != nil {
		size := st.Size
		if opts.Size != nil {
			size = *opts.Size
		}
		if sink.recv, err = s.store.Receive(h, size); err != nil {
			return stats, err
		}
		ask = sink.recv.Missing(want)
		stats.GroupsSkipped = want.normalize(NumGroups(size)).Groups() - ask.Groups()
		sink.progress.ResumedGroups = stats.GroupsSkipped
		stats.Size = size
		if len(ask) == 0 {
			return stats, nil
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	stream, err := s.host.NewStream(network.WithAllowLimitedConn(ctx, ProtocolID), p, ProtocolID)
	if err != nil {
		return stats, fmt.Errorf("open blob stream to %s: %w", p, err)
	}
	defer stream.Close()
	unwatch := context.AfterFunc(ctx, func() { stream.Reset() })
	defer unwatch()
	conn := &deadlineConn{s: stream, idle: s.idle}
	if err := wire.WriteFrame(conn, (&request{hash: h, ranges: ask}).encode()); err != nil {
		stream.Reset()
		return stats, fmt.Errorf("send blob request: %w", err)
	}
	_ = stream.CloseWrite()
	// No read buffer: ReadStream reads exactly what comes next (a run of
	// tree nodes, or a group straight into its write buffer), so group
	// bytes are copied once, from the stream to the write buffer.
	cr := &countingReader{r: conn}
	defer func() { stats.BytesReceived = cr.n }()
	var status [1]byte
	if _, err := io.ReadFull(cr, status[:]); err != nil {
		stream.Reset()
		return stats, s.ioErr(p, err)
	}
	switch status[0] {
	case statusOK:
	case statusNotFound:
		return stats, fmt.Errorf("%w: peer %s does not have blob %s", ErrNotFound, p, ID(h).Short())
	case statusRefused:
		msg, _ := wire.ReadFrame(bufio.NewReader(cr), 1024, nil)
		return stats, fmt.Errorf("%w: %s", ErrRefused, wire.Sanitize(string(msg)))
	default:
		stream.Reset()
		return stats, fmt.Errorf("peer %s: unknown blob response status %d", p, status[0])
	}
	size, err := ReadStream(cr, h, ask, sink)
	stats.Size = size
	if err != nil {
		stream.Reset()
		if errors.Is(err, ErrVerify) {
			return stats, fmt.Errorf("blob %s from %s: %w (data verified before it is kept; try another peer)", ID(h).Short(), p, err)
		}
		return stats, s.ioErr(p, err)
	}
	// The stream must end exactly here.
	if n, _ := io.CopyN(io.Discard, cr, 1); n != 0 {
		stream.Reset()
		return stats, fmt.Errorf("blob %s from %s: the sender sent bytes past the end of the requested ranges", ID(h).Short(), p)
	}
	if opts.Progress != nil {
		opts.Progress(sink.progress)
	}
	return stats, nil
}

func (s *Service) ioErr(p peer.ID, err error) error {
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("peer %s stopped sending (nothing for %s): %w", p, s.idle, err)
	}
	return fmt.Errorf("blob transfer from %s: %w", p, err)
}
