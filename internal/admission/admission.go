// Package admission bounds what peers a seed does not know yet may hold:
// streams of the vault-sync and blob protocols opened by a peer that has
// never completed a session are counted per peer, per address range and in
// all, and refused past the caps before they cost more than a few KiB.
// Peers that completed a session (known devices, other seeds) are not
// counted, so a flood of unknown peers cannot lock them out.
package admission

import (
	"container/list"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/prometheus/client_golang/prometheus"
)

// Address ranges that count as one: an IPv4 /24 and an IPv6 /56 (what an
// ISP gives one customer, so one attacker rarely holds more than a few).
// Streams over a relayed or otherwise non-IP connection share one range.
const (
	IPv4Prefix = 24
	IPv6Prefix = 56
)

// Limits bound the streams of unknown peers. Every field must be at least 1.
type Limits struct {
	// PerPeer: streams one unknown peer may hold (default 8: a device's
	// first sync and the blob fetches that follow it, or a new seed's first
	// replica syncs, which run 4 at a time).
	PerPeer int
	// PerRange: streams all unknown peers of one address range (IPv4 /24,
	// IPv6 /56) may hold together (default 64).
	PerRange int
	// Total: streams all unknown peers may hold together (default 256).
	Total int
	// MaxKnown: known peers remembered; past it the one seen least
	// recently is forgotten and counted again (default 65,536).
	MaxKnown int
}

// DefaultLimits are the limits a service uses unless it is given a Limiter.
var DefaultLimits = Limits{PerPeer: 8, PerRange: 64, Total: 256, MaxKnown: 1 << 16}

// Validate reports the first field below 1.
func (l Limits) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"PerPeer", l.PerPeer}, {"PerRange", l.PerRange}, {"Total", l.Total}, {"MaxKnown", l.MaxKnown}} {
		if f.v < 1 {
			return fmt.Errorf("admission limits: %s must be at least 1 (got %d)", f.name, f.v)
		}
	}
	return nil
}

// Refusal reasons, the `reason` label of seedfleet_stream_refusals_total.
const (
	ReasonPeer      = "unknown_peer"  // the peer holds PerPeer streams
	ReasonRange     = "unknown_range" // its address range holds PerRange
	ReasonTotal     = "unknown_total" // unknown peers hold Total
	ReasonResources = "resources"     // the resource manager refused the memory
	ReasonHello     = "hello"         // no valid hello or request before the deadline
	ReasonPolicy    = "policy"        // the vault is not hosted, or the blob not allowed
)

// ErrRefused is wrapped by every refusal of Admit.
var ErrRefused = errors.New("too many streams from peers this node does not know")

// RefusedError says which cap refused a stream.
type RefusedError struct {
	Reason string // ReasonPeer, ReasonRange or ReasonTotal
	Range  string // the address range, e.g. 203.0.113.0/24
	Limit  int
}

func (e *RefusedError) Error() string {
	switch e.Reason {
	case ReasonPeer:
		return fmt.Sprintf("%v: this peer already holds %d streams (sync a hosted vault first)", ErrRefused, e.Limit)
	case ReasonRange:
		return fmt.Sprintf("%v: peers from %s already hold %d streams", ErrRefused, e.Range, e.Limit)
	default:
		return fmt.Sprintf("%v: unknown peers already hold %d streams", ErrRefused, e.Limit)
	}
}

func (e *RefusedError) Unwrap() error { return ErrRefused }

// Limiter counts unknown peers' streams and remembers known peers. One
// Limiter is shared by the services of a host so that a peer known to one
// is known to all. Safe for concurrent use.
type Limiter struct {
	lim Limits
	m   *metrics

	mu      sync.Mutex
	perPeer map[peer.ID]int
	byRange map[string]int
	total   int
	known   map[peer.ID]*list.Element // values: peer.ID, most recent first
	order   *list.List

	logMu  sync.Mutex
	logged map[string]*logState // by service and reason
}

type logState struct {
	last       time.Time
	suppressed int
}

// LogEvery is how often one kind of refusal (service and reason) is
// logged; the refusals in between are counted in the next line.
const LogEvery = 10 * time.Second

// New returns a Limiter with limits l (validated).
func New(l Limits) (*Limiter, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &Limiter{lim: l, m: newMetrics(), perPeer: map[peer.ID]int{}, byRange: map[string]int{},
		known: map[peer.ID]*list.Element{}, order: list.New(), logged: map[string]*logState{}}, nil
}

// Default returns a Limiter with DefaultLimits.
func Default() *Limiter {
	l, err := New(DefaultLimits)
	if err != nil {
		panic(err) // DefaultLimits are valid
	}
	return l
}

// Limits returns the limiter's limits.
func (l *Limiter) Limits() Limits { return l.lim }

// Ticket is an admitted stream. Release it when the stream ends (or when
// its peer becomes known); Release is idempotent.
type Ticket struct {
	l       *Limiter
	service string
	peer    peer.ID
	rng     string
	known   bool
	held    bool // guarded by l.mu
}

// Known reports whether the stream's peer was known when it was admitted.
func (t *Ticket) Known() bool { return t.known }

// Priority is the resource-manager priority the stream's memory is
// reserved with: an unknown peer's stream only while the scope is under
// 40% full, a known peer's up to 80%, so that the rest stays for known
// devices even if unknown peers pass the caps (by naming a hosted vault).
func (t *Ticket) Priority() uint8 {
	if t.known {
		return network.ReservationPriorityHigh
	}
	return network.ReservationPriorityLow
}

// Release frees the stream's place among the unknown peers' streams.
func (t *Ticket) Release() {
	if t == nil || t.known {
		return
	}
	l := t.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if !t.held {
		return
	}
	t.held = false
	if l.perPeer[t.peer]--; l.perPeer[t.peer] <= 0 {
		delete(l.perPeer, t.peer)
	}
	if l.byRange[t.rng]--; l.byRange[t.rng] <= 0 {
		delete(l.byRange, t.rng)
	}
	l.total--
	l.m.unknown.WithLabelValues(t.service).Dec()
}

// Admit admits a new inbound stream of service from p at remote: at once
// if p is known, else within the caps. A refusal is a *RefusedError
// (wrapping ErrRefused), already counted in the metrics.
func (l *Limiter) Admit(service string, p peer.ID, remote ma.Multiaddr) (*Ticket, error) {
	t := &Ticket{l: l, service: service, peer: p}
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.known[p]; ok {
		l.order.MoveToFront(e)
		t.known = true
		return t, nil
	}
	t.rng = Range(remote)
	var refused *RefusedError
	switch {
	case l.perPeer[p] >= l.lim.PerPeer:
		refused = &RefusedError{Reason: ReasonPeer, Range: t.rng, Limit: l.lim.PerPeer}
	case l.byRange[t.rng] >= l.lim.PerRange:
		refused = &RefusedError{Reason: ReasonRange, Range: t.rng, Limit: l.lim.PerRange}
	case l.total >= l.lim.Total:
		refused = &RefusedError{Reason: ReasonTotal, Range: t.rng, Limit: l.lim.Total}
	}
	if refused != nil {
		l.m.refusals.WithLabelValues(service, refused.Reason).Inc()
		return nil, refused
	}
	l.perPeer[p]++
	l.byRange[t.rng]++
	l.total++
	t.held = true
	l.m.unknown.WithLabelValues(service).Inc()
	return t, nil
}

// MarkKnown remembers p as known: it completed a session for a vault this
// node hosts and lets it sync, so its streams are no longer counted.
func (l *Limiter) MarkKnown(p peer.ID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.known[p]; ok {
		l.order.MoveToFront(e)
		return
	}
	l.known[p] = l.order.PushFront(p)
	for l.order.Len() > l.lim.MaxKnown {
		oldest := l.order.Back()
		l.order.Remove(oldest)
		delete(l.known, oldest.Value.(peer.ID))
	}
	l.m.known.Set(float64(l.order.Len()))
}

// Known reports whether p is known.
func (l *Limiter) Known(p peer.ID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.known[p]
	return ok
}

// Held returns the streams unknown peers hold, in all.
func (l *Limiter) Held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// Refused counts a refusal the service made itself (ReasonResources,
// ReasonHello, ReasonPolicy) and logs it like Log.
func (l *Limiter) Refused(log *slog.Logger, service, reason, msg string, attrs ...any) {
	l.m.refusals.WithLabelValues(service, reason).Inc()
	l.Log(log, service, reason, msg, attrs...)
}

// Log logs a refusal at Info, at most once per LogEvery for each service
// and reason: a flood of thousands of refusals a second costs a line every
// 10 s, which says how many like it were not logged.
func (l *Limiter) Log(log *slog.Logger, service, reason, msg string, attrs ...any) {
	if log == nil {
		return
	}
	key := service + "\x00" + reason
	now := time.Now()
	l.logMu.Lock()
	st := l.logged[key]
	if st == nil {
		st = &logState{}
		l.logged[key] = st
	}
	if !st.last.IsZero() && now.Sub(st.last) < LogEvery {
		st.suppressed++
		l.logMu.Unlock()
		return
	}
	suppressed := st.suppressed
	st.last, st.suppressed = now, 0
	l.logMu.Unlock()
	attrs = append(attrs, "reason", reason)
	if suppressed > 0 {
		attrs = append(attrs, "like_refusals_not_logged", suppressed, "in_the_last", LogEvery.String())
	}
	log.Info(msg, attrs...)
}

// Range is the address range a connection's remote address counts in:
// its IPv4 /24 or IPv6 /56, or "non-ip" (relayed connections and others
// without an IP of their own).
func Range(remote ma.Multiaddr) string {
	if remote == nil {
		return "non-ip"
	}
	if _, err := remote.ValueForProtocol(ma.P_CIRCUIT); err == nil {
		return "non-ip" // the IP is the relay's
	}
	ip, err := manet.ToIP(remote)
	if err != nil {
		return "non-ip"
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return "non-ip"
	}
	a = a.Unmap()
	bits := IPv6Prefix
	if a.Is4() {
		bits = IPv4Prefix
	}
	pfx, err := a.Prefix(bits)
	if err != nil {
		return "non-ip"
	}
	return pfx.String()
}

type metrics struct {
	refusals *prometheus.CounterVec
	unknown  *prometheus.GaugeVec
	known    prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seedfleet_stream_refusals_total",
			Help: "Inbound vault-sync and blob streams refused before a session or transfer started, by service and reason (unknown_peer, unknown_range, unknown_total: the caps on peers this seed does not know; resources, hello, policy)."},
			[]string{"service", "reason"}),
		unknown: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "seedfleet_unknown_peer_streams",
			Help: "Inbound streams held by peers this seed does not know yet, by service."}, []string{"service"}),
		known: prometheus.NewGauge(prometheus.GaugeOpts{Name: "seedfleet_known_peers",
			Help: "Peers remembered as known (they completed a session for a hosted vault): their streams bypass the unknown-peer caps."}),
	}
	return m
}

// Register registers the limiter's metrics on reg. Registering the same
// limiter twice (two services sharing it) is not an error; registering a
// second limiter where one is registered already is.
func (l *Limiter) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{l.m.refusals, l.m.unknown, l.m.known} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) && are.ExistingCollector == c {
				continue
			}
			return fmt.Errorf("admission metrics: %w", err)
		}
	}
	return nil
}
