package discovery

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mh "github.com/multiformats/go-multihash"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultProtocolPrefix keeps Seedfleet's DHT apart from the public IPFS
// one: seeds never answer or query it, and it has no public-address filter.
const DefaultProtocolPrefix = "/seedfleet"

func key(domain string, b []byte) cid.Cid {
	sum := sha256.Sum256(append([]byte(domain), b...))
	m, _ := mh.Encode(sum[:], mh.SHA2_256)
	return cid.NewCidV1(cid.Raw, m)
}

// VaultCID is the DHT key under which seeds announce that they host a vault.
func VaultCID(ns [32]byte) cid.Cid { return key("seedfleet/vault/v1\x00", ns[:]) }

// AgentCID is the DHT key for an agent: its seeds, and through them its devices.
func AgentCID(did string) cid.Cid { return key("seedfleet/agent/v1\x00", []byte(did)) }

// DHTOptions configure NewDHT.
type DHTOptions struct {
	// Server answers queries and stores records (seeds); client only asks (devices).
	Server         bool
	ProtocolPrefix string
	BootstrapPeers []peer.AddrInfo
	// Datastore holds provider records (nil: kad-dht's in-memory map, fine
	// for devices; seeds pass an ordered one, see OpenDatastore).
	Datastore ds.Batching
}

// NewDHT starts a Kademlia DHT on h with Seedfleet's settings: providers
// only (no values), the given protocol prefix (default /seedfleet), and no
// public bootstrap peers unless configured.
func NewDHT(h host.Host, o DHTOptions) (*dht.IpfsDHT, error) {
	prefix := o.ProtocolPrefix
	if prefix == "" {
		prefix = DefaultProtocolPrefix
	}
	mode := dht.ModeClient
	if o.Server {
		mode = dht.ModeServer
	}
	opts := []dht.Option{
		dht.Mode(mode),
		dht.ProtocolPrefix(protocol.ID(prefix)),
		dht.DisableValues(),
		// Explicitly empty: kad-dht's default is the public IPFS list.
		dht.BootstrapPeers(o.BootstrapPeers...),
	}
	if o.Datastore != nil {
		opts = append(opts, dht.Datastore(o.Datastore))
	}
	d, err := dht.New(h, opts...)
	if err != nil {
		// kad-dht refuses some prefixes (/ipfs needs values enabled, which
		// a providers-only DHT does not have): name the one given.
		return nil, fmt.Errorf("start DHT with protocol prefix %s: %w", prefix, err)
	}
	return d, nil
}

// Defaults of a Provider.
const (
	DefaultReprovideInterval = time.Hour
	DefaultProvideWorkers    = 8
	// MaxReprovideInterval is how long a provider record lives: announced
	// less often, a key would be missing from the DHT between announcements.
	MaxReprovideInterval = 48 * time.Hour
)

// Provider keeps a set of keys announced in the DHT and re-announces each
// one every interval (provider records expire after 48 h). It starts
// nothing by itself: the caller runs Run in a goroutine of its own and ends
// it with Run's context.
type Provider struct {
	d        *dht.IpfsDHT
	interval time.Duration
	workers  int
	// epoch is the origin of the stamps in keys.
	epoch time.Time

	mu     sync.Mutex
	keys   map[cid.Cid]provided
	wake   chan struct{}
	errors prometheus.Counter
}

// provided is when a key was last announced: to the network (broadcast)
// and in this node's own provider store only (local, while the routing
// table is empty). A seed of a public fleet announces one key per hosted
// vault, so this is kept small: whole seconds since the provider's epoch,
// plus one (0: never), 8 bytes where two time.Time took 48.
type provided struct{ broadcast, local uint32 }

// stamp is t as a provided field.
func (p *Provider) stamp(t time.Time) uint32 { return uint32(max(t.Sub(p.epoch), 0)/time.Second) + 1 }

// at is the time of a provided field (zero for 0, never).
func (p *Provider) at(s uint32) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return p.epoch.Add(time.Duration(s-1) * time.Second)
}

// isDue reports whether a key last announced at s (a stamp) is due at now.
func (p *Provider) isDue(s uint32, now time.Time) bool {
	return s == 0 || now.Sub(p.at(s)) >= p.interval
}

type providerConfig struct {
	interval time.Duration
	workers  int
	reg      prometheus.Registerer
}

// ProviderOption configures NewProvider. An option given an invalid
// argument makes NewProvider fail with an error that names it.
type ProviderOption func(*providerConfig) error

// WithReprovideInterval sets how often each key is announced again
// (default DefaultReprovideInterval); it must be positive and, since
// records expire after 48 h, at most MaxReprovideInterval.
func WithReprovideInterval(d time.Duration) ProviderOption {
	return func(c *providerConfig) error {
		if d <= 0 || d > MaxReprovideInterval {
			return fmt.Errorf("DHT provider: WithReprovideInterval: %s is not between 0 and %s (records expire after 48h)", d, MaxReprovideInterval)
		}
		c.interval = d
		return nil
	}
}

// WithProvideWorkers sets how many announcements run at once (default
// DefaultProvideWorkers); it must be positive.
func WithProvideWorkers(n int) ProviderOption {
	return func(c *providerConfig) error {
		if n <= 0 {
			return fmt.Errorf("DHT provider: WithProvideWorkers: %d is not positive", n)
		}
		c.workers = n
		return nil
	}
}

// WithRegisterer registers the provider's metrics
// (seedfleet_dht_provide_errors_total, seedfleet_dht_reprovide_lag_seconds,
// seedfleet_dht_provided_keys) on reg (default: none are registered).
func WithRegisterer(reg prometheus.Registerer) ProviderOption {
	return func(c *providerConfig) error {
		if reg == nil {
			return errors.New("DHT provider: WithRegisterer: nil registerer")
		}
		c.reg = reg
		return nil
	}
}

// NewProvider returns a provider loop announcing in d (required). The
// options' defaults are in their doc comments.
func NewProvider(d *dht.IpfsDHT, opts ...ProviderOption) (*Provider, error) {
	if d == nil {
		return nil, errors.New("DHT provider: nil DHT")
	}
	c := providerConfig{interval: DefaultReprovideInterval, workers: DefaultProvideWorkers}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	p := &Provider{d: d, interval: c.interval, workers: c.workers, epoch: time.Now(), keys: map[cid.Cid]provided{}, wake: make(chan struct{}, 1)}
	p.errors = prometheus.NewCounter(prometheus.CounterOpts{Name: "seedfleet_dht_provide_errors_total",
		Help: "DHT announcements that failed (retried at the next pass)."})
	if c.reg != nil {
		lag := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "seedfleet_dht_reprovide_lag_seconds",
			Help: "How far the oldest hosted-vault announcement is past its re-provide interval (0 when on schedule)."},
			func() float64 { return p.Lag().Seconds() })
		count := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "seedfleet_dht_provided_keys",
			Help: "Keys this node announces in the DHT."}, func() float64 { p.mu.Lock(); defer p.mu.Unlock(); return float64(len(p.keys)) })
		for _, m := range []prometheus.Collector{p.errors, lag, count} {
			if err := c.reg.Register(m); err != nil {
				return nil, fmt.Errorf("DHT provider: metrics: %w", err)
			}
		}
	}
	return p, nil
}

// Set replaces the announced keys; new ones are announced promptly.
func (p *Provider) Set(keys []cid.Cid) {
	p.mu.Lock()
	next := make(map[cid.Cid]provided, len(keys))
	for _, k := range keys {
		next[k] = p.keys[k]
	}
	p.keys = next
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Lag is how far the oldest announcement is past due.
func (p *Provider) Lag() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var worst time.Duration
	now := time.Now()
	for _, pr := range p.keys {
		if pr.broadcast == 0 {
			continue // never announced yet: counted once it is due below
		}
		if l := now.Sub(p.at(pr.broadcast)) - p.interval; l > worst {
			worst = l
		}
	}
	return worst
}

// LastProvided returns when k was last announced to the network (zero:
// not yet).
func (p *Provider) LastProvided(k cid.Cid) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.at(p.keys[k].broadcast)
}

// due lists the keys to announce: with peers (broadcast), those never
// announced to the network or longer ago than the interval; without, those
// not stored in the local provider store within the interval. Keys stored
// locally are not stored again at every pass while the routing table stays
// empty: a seed with 100,000 hosted vaults and no DHT peer rewrote them all
// every 2 s, which kept it busy and its DHT store growing.
func (p *Provider) due(broadcast bool) []cid.Cid {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []cid.Cid
	now := time.Now()
	for k, pr := range p.keys {
		s := pr.local
		if broadcast {
			s = pr.broadcast
		}
		if p.isDue(s, now) {
			out = append(out, k)
		}
	}
	return out
}

// Run announces due keys until ctx ends (call it once). Keys are first stored locally, so
// a node that knows no peers yet still answers for its own vaults; the
// network announcement waits until the routing table has peers.
func (p *Provider) Run(ctx context.Context) {
	// A short tick: keys announced only locally (no peers yet) go out soon
	// after the routing table fills; due() is cheap when nothing is due.
	t := time.NewTicker(min(p.interval/4, 2*time.Second))
	defer t.Stop()
	for {
		p.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-t.C:
		}
	}
}

func (p *Provider) pass(ctx context.Context) {
	broadcast := p.d.RoutingTable().Size() > 0
	keys := p.due(broadcast)
	if len(keys) == 0 {
		return
	}
	jobs := make(chan cid.Cid)
	var wg sync.WaitGroup
	for range p.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range jobs {
				pctx, cancel := context.WithTimeout(ctx, time.Minute)
				err := p.d.Provide(pctx, k, broadcast)
				cancel()
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						p.errors.Inc()
					}
					continue
				}
				now := p.stamp(time.Now())
				p.mu.Lock()
				if pr, still := p.keys[k]; still {
					pr.local = now
					if broadcast {
						pr.broadcast = now
					}
					p.keys[k] = pr
				}
				p.mu.Unlock()
			}
		}()
	}
	for _, k := range keys {
		select {
		case jobs <- k:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
}

// FindProvidersVia is FindProviders for a device that knows its seeds:
// when the client's routing table has emptied it puts the seeds back
// first. kad-dht removes a peer from the table after one query to it
// fails (a timeout when the seed is busy), and a device whose table holds
// only its seeds would otherwise find nothing until it restarts.
func FindProvidersVia(ctx context.Context, d *dht.IpfsDHT, seeds []peer.AddrInfo, c cid.Cid, n int) []peer.AddrInfo {
	if d.RoutingTable().Size() == 0 {
		for _, s := range seeds {
			if d.Host().Network().Connectedness(s.ID) != network.Connected {
				if err := d.Host().Connect(ctx, s); err != nil {
					continue
				}
			}
			// queryPeer: it is known to answer; not replaceable by
			// peers learnt later.
			_, _ = d.RoutingTable().TryAddPeer(s.ID, true, false)
		}
	}
	return FindProviders(ctx, d, c, n)
}

// FindProviders returns up to n peers announcing c.
func FindProviders(ctx context.Context, d *dht.IpfsDHT, c cid.Cid, n int) []peer.AddrInfo {
	var out []peer.AddrInfo
	for info := range d.FindProvidersAsync(ctx, c, n) {
		out = append(out, info)
	}
	return out
}
