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
	"github.com/prometheus/client_golang/prometheus"
)

// Mode is who may use the relay.
type Mode string

const (
	// ModeAgents: only keys of agents this seed serves (configured keys and
	// the authors of hosted vaults) may reserve a slot or be reached.
	ModeAgents Mode = "agents"
	// ModePublic: anyone may reserve; per-peer and per-IP limits apply.
	ModePublic Mode = "public"
	// ModeOff: no relay service.
	ModeOff Mode = "off"
)

// InfoProtocol answers "why was my reservation refused?".
const InfoProtocol = "/seedfleet/relay-info/1.0.0"

// Limits of the relay service. Zero fields take go-libp2p's defaults.
type Limits struct {
	MaxReservations        int
	MaxReservationsPerPeer int
	MaxReservationsPerIP   int
	MaxReservationsPerASN  int
	MaxCircuits            int
	// BufferSize is the copy buffer per relayed direction (default 64 KiB:
	// go-libp2p's 2 KiB costs a third of the throughput and twice the CPU).
	BufferSize      int
	ReservationTTL  time.Duration
	CircuitDuration time.Duration
	CircuitBytes    int64
}

func (l Limits) resources() relayv2.Resources {
	rc := relayv2.DefaultResources()
	set := func(dst *int, v int) {
		if v > 0 {
			*dst = v
		}
	}
	set(&rc.MaxReservations, l.MaxReservations)
	set(&rc.MaxReservationsPerPeer, l.MaxReservationsPerPeer)
	set(&rc.MaxReservationsPerIP, l.MaxReservationsPerIP)
	set(&rc.MaxReservationsPerASN, l.MaxReservationsPerASN)
	set(&rc.MaxCircuits, l.MaxCircuits)
	rc.BufferSize = 64 << 10
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

// ACL decides who may reserve and whom circuits may reach. It remembers
// why it refused each peer, for InfoProtocol.
type ACL struct {
	mode Mode

	mu      sync.RWMutex
	allowed map[peer.ID]bool
	refused map[peer.ID]string // bounded: cleared when it grows past maxRefusals
}

const maxRefusals = 4096

// NewACL returns an ACL for mode.
func NewACL(mode Mode) *ACL {
	return &ACL{mode: mode, allowed: map[peer.ID]bool{}, refused: map[peer.ID]string{}}
}

// SetAllowed replaces the peers allowed in agents mode.
func (a *ACL) SetAllowed(ids []peer.ID) {
	m := make(map[peer.ID]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	a.mu.Lock()
	a.allowed = m
	a.mu.Unlock()
}

// Allow adds peers allowed in agents mode.
func (a *ACL) Allow(ids ...peer.ID) {
	a.mu.Lock()
	for _, id := range ids {
		a.allowed[id] = true
	}
	a.mu.Unlock()
}

// Allowed reports whether p may use the relay.
func (a *ACL) Allowed(p peer.ID) bool {
	if a.mode == ModePublic {
		return true
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.allowed[p]
}

func (a *ACL) refuse(p peer.ID, why string) {
	a.mu.Lock()
	if len(a.refused) >= maxRefusals {
		clear(a.refused)
	}
	a.refused[p] = why
	a.mu.Unlock()
}

// Reason returns why p was last refused ("" if it was not).
func (a *ACL) Reason(p peer.ID) string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.refused[p]
}

// AllowReserve implements relayv2.ACLFilter.
func (a *ACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool {
	if a.Allowed(p) {
		return true
	}
	a.refuse(p, "this seed relays only for devices of the agents it serves; your key "+p.String()+
		" is not in a hosted vault or the seed's allowed keys (ask the operator to add it, or use a seed in public mode)")
	return false
}

// AllowConnect implements relayv2.ACLFilter: in agents mode both ends must
// be known devices.
func (a *ACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dest peer.ID) bool {
	if a.Allowed(src) && a.Allowed(dest) {
		return true
	}
	a.refuse(src, "this seed relays only between devices of the agents it serves")
	return false
}

// Service is a running relay.
type Service struct {
	relay *relayv2.Relay
	acl   *ACL
	host  host.Host
	limit Limits
}

// New starts the relay service on h. The reservation replies carry every
// address the host announces (go-libp2p's default keeps only public ones,
// which a seed behind a Service or on loopback does not have). reg may be nil.
func New(h host.Host, mode Mode, acl *ACL, limits Limits, reg prometheus.Registerer) (*Service, error) {
	if mode == ModeOff {
		return nil, errors.New("relay: mode off")
	}
	opts := []relayv2.Option{
		relayv2.WithResources(limits.resources()),
		relayv2.WithACL(acl),
		relayv2.WithReservationAddressFilter(func(ma.Multiaddr) bool { return true }),
	}
	if reg != nil {
		opts = append(opts, relayv2.WithMetricsTracer(relayv2.NewMetricsTracer(relayv2.WithRegisterer(reg))))
	}
	r, err := relayv2.New(h, opts...)
	if err != nil {
		return nil, fmt.Errorf("start relay: %w", err)
	}
	s := &Service{relay: r, acl: acl, host: h, limit: limits}
	h.SetStreamHandler(InfoProtocol, s.info)
	return s, nil
}

// Close stops the relay. Idempotent.
func (s *Service) Close() error {
	s.host.RemoveStreamHandler(InfoProtocol)
	return s.relay.Close()
}

// info answers with the reason the asking peer was last refused, or with
// the limits that apply to it.
func (s *Service) info(st network.Stream) {
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(5 * time.Second))
	p := st.Conn().RemotePeer()
	msg := s.acl.Reason(p)
	if msg == "" {
		rc := s.limit.resources()
		msg = fmt.Sprintf("not refused by policy; limits: %d reservations in all, %d per peer, %d per IP; circuits last %s and carry %d bytes per direction",
			rc.MaxReservations, rc.MaxReservationsPerPeer, rc.MaxReservationsPerIP, rc.Limit.Duration, rc.Limit.Data)
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

// AllowedCount is how many peers are allowed in agents mode.
func (a *ACL) AllowedCount() int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return len(a.allowed)
}
