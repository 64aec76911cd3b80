package relay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/internal/lifecycle"
	"github.com/seedfleet/seedfleet/seednode/config"
)

// InfoProtocol answers "why was my reservation refused?".
const InfoProtocol = "/seedfleet/relay-info/1.0.0"

// DefaultBufferSize is the relay's copy buffer per relayed direction:
// go-libp2p's 2 KiB costs a third of the throughput and twice the CPU.
const DefaultBufferSize = 64 << 10

// Limits of the relay service. Zero fields take go-libp2p's defaults
// (relayv2.DefaultResources), except BufferSize (DefaultBufferSize). A
// circuit v2 relay holds one reservation per peer: a peer that reserves
// again refreshes its reservation, so there is no per-peer limit to set.
type Limits struct {
	MaxReservations       int
	MaxReservationsPerIP  int
	MaxReservationsPerASN int
	MaxCircuits           int
	// BufferSize is the copy buffer per relayed direction.
	BufferSize      int
	ReservationTTL  time.Duration
	CircuitDuration time.Duration
	CircuitBytes    int64
}

func (l Limits) check() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxReservations", int64(l.MaxReservations)},
		{"MaxReservationsPerIP", int64(l.MaxReservationsPerIP)},
		{"MaxReservationsPerASN", int64(l.MaxReservationsPerASN)},
		{"MaxCircuits", int64(l.MaxCircuits)},
		{"BufferSize", int64(l.BufferSize)},
		{"ReservationTTL", int64(l.ReservationTTL)},
		{"CircuitDuration", int64(l.CircuitDuration)},
		{"CircuitBytes", l.CircuitBytes},
	} {
		if f.v < 0 {
			return fmt.Errorf("relay: WithLimits: %s is negative (%d; zero keeps the default)", f.name, f.v)
		}
	}
	return nil
}

func (l Limits) resources() relayv2.Resources {
	rc := relayv2.DefaultResources()
	set := func(dst *int, v int) {
		if v > 0 {
			*dst = v
		}
	}
	set(&rc.MaxReservations, l.MaxReservations)
	set(&rc.MaxReservationsPerIP, l.MaxReservationsPerIP)
	set(&rc.MaxReservationsPerASN, l.MaxReservationsPerASN)
	set(&rc.MaxCircuits, l.MaxCircuits)
	rc.BufferSize = DefaultBufferSize
	set(&rc.BufferSize, l.BufferSize)
	if l.ReservationTTL > 0 {
		rc.ReservationTTL = l.ReservationTTL
	}
	if l.CircuitDuration > 0 {
		rc.Limit.Duration = l.CircuitDuration
	}
	if l.CircuitBytes > 0 {
		rc.Limit.Data = l.CircuitBytes
	}
	return rc
}

type options struct {
	limits       Limits
	reg          prometheus.Registerer
	announced    []ma.Multiaddr
	privateAddrs bool
}

// Option configures New. An option given an invalid argument makes New
// fail with an error that names it.
type Option func(*options) error

// WithLimits sets the relay's limits (default: the zero Limits, that is
// go-libp2p's defaults with a DefaultBufferSize copy buffer). Negative
// fields are refused.
func WithLimits(l Limits) Option {
	return func(o *options) error {
		if err := l.check(); err != nil {
			return err
		}
		o.limits = l
		return nil
	}
}

// WithRegisterer registers go-libp2p's relay metrics (libp2p_relaysvc_*) on
// reg (default: none are registered). A nil reg is refused.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(o *options) error {
		if reg == nil {
			return errors.New("relay: WithRegisterer: nil registerer")
		}
		o.reg = reg
		return nil
	}
}

// WithAnnouncedAddrs names the addresses the seed announces on purpose (a pod
// behind a Service announces the Service's address): reservations carry
// them even when they are private (default: none). A nil address is refused.
func WithAnnouncedAddrs(addrs ...ma.Multiaddr) Option {
	return func(o *options) error {
		for i, a := range addrs {
			if a == nil || len(a.Bytes()) == 0 {
				return fmt.Errorf("relay: WithAnnouncedAddrs: address %d is empty", i)
			}
		}
		o.announced = append(o.announced, addrs...)
		return nil
	}
}

// WithAdvertisePrivateAddrs makes reservations carry every address the host
// has, loopback and private ones included: for tests on loopback and for
// clusters whose devices reach the seed on a private network. By default,
// as in go-libp2p, a reservation carries only public addresses
// (manet.IsPublicAddr) and the announced ones (WithAnnouncedAddrs): a device
// that learnt a seed's loopback or cluster-internal address would
// advertise a circuit no peer outside can dial.
func WithAdvertisePrivateAddrs() Option {
	return func(o *options) error { o.privateAddrs = true; return nil }
}

// Service is a running relay.
type Service struct {
	relay     *relayv2.Relay
	acl       *ACL
	host      host.Host
	limits    Limits
	announced map[string]bool // bytes of the announced addresses
	private   bool

	life      lifecycle.Group // InfoProtocol handlers
	closeOnce sync.Once
	closeErr  error
}

// New starts the circuit relay v2 service on h. acl is required: it holds
// the relay mode (config.RelayAgents or config.RelayPublic; any other mode
// is refused) and decides who may reserve a slot and whom circuits reach.
// Reservation replies carry the host's public and announced addresses
// (see WithAdvertisePrivateAddrs). Metrics are registered only with
// WithRegisterer. Close stops the relay.
func New(h host.Host, acl *ACL, opts ...Option) (*Service, error) {
	if h == nil {
		return nil, errors.New("relay: nil host")
	}
	if acl == nil {
		return nil, errors.New("relay: nil ACL (NewACL(config.RelayAgents) or NewACL(config.RelayPublic))")
	}
	if m := acl.Mode(); m != config.RelayAgents && m != config.RelayPublic {
		return nil, fmt.Errorf("relay: mode %q runs no relay service (want %q or %q)", m, config.RelayAgents, config.RelayPublic)
	}
	var o options
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	s := &Service{acl: acl, host: h, limits: o.limits, private: o.privateAddrs, announced: map[string]bool{}}
	for _, a := range o.announced {
		s.announced[string(a.Bytes())] = true
	}
	relayOpts := []relayv2.Option{
		relayv2.WithResources(o.limits.resources()),
		relayv2.WithACL(acl),
		relayv2.WithReservationAddressFilter(s.advertised),
	}
	if o.reg != nil {
		relayOpts = append(relayOpts, relayv2.WithMetricsTracer(relayv2.NewMetricsTracer(relayv2.WithRegisterer(o.reg))))
	}
	r, err := relayv2.New(h, relayOpts...)
	if err != nil {
		return nil, fmt.Errorf("start relay: %w", err)
	}
	s.relay = r
	h.SetStreamHandler(InfoProtocol, s.info)
	return s, nil
}

// advertised is the reservation address filter: go-libp2p's default
// (public addresses only) plus the announced ones, or everything with
// WithAdvertisePrivateAddrs.
func (s *Service) advertised(a ma.Multiaddr) bool {
	return s.private || manet.IsPublicAddr(a) || s.announced[string(a.Bytes())]
}

// Close stops the relay and waits for the InfoProtocol answers in flight.
// Idempotent.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		s.life.Close(func() { s.host.RemoveStreamHandler(InfoProtocol) })
		s.closeErr = s.relay.Close()
	})
	return s.closeErr
}

// info answers with the reason the asking peer was last refused, or with
// the limits that apply to it.
func (s *Service) info(st network.Stream) {
	if !s.life.Enter() {
		_ = st.Reset()
		return
	}
	defer s.life.Done()
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(5 * time.Second))
	p := st.Conn().RemotePeer()
	msg := s.acl.Reason(p)
	if msg == "" {
		rc := s.limits.resources()
		msg = fmt.Sprintf("not refused by policy; limits: %d reservations in all, one per peer, %d per IP; circuits last %s and carry %d bytes per direction",
			rc.MaxReservations, rc.MaxReservationsPerIP, rc.Limit.Duration, rc.Limit.Data)
	}
	_, _ = io.WriteString(st, msg+"\n")
}

// AskWhy asks a relay why it refused this host (best effort, 5 s).
func AskWhy(ctx context.Context, h host.Host, relay peer.ID) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := h.NewStream(ctx, relay, InfoProtocol)
	if err != nil {
		return ""
	}
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(io.LimitReader(st, 1024)).ReadString('\n')
	return line
}
