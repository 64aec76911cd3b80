package client

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/seedfleet/seedfleet/seednode/discovery"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// Where a peer to sync with came from, in the order SyncAny tries them:
// peers the device already knows (given, then remembered from earlier
// syncs), peers on the local network (mDNS, when enabled), seeds
// announcing the vault in the DHT, and the agent's other devices, from the
// rendezvous records they keep on the agent's seeds while they serve.
const (
	SourceGiven      = "given"
	SourceKnown      = "known"
	SourceLAN        = "mdns"
	SourceDHT        = "dht"
	SourceRendezvous = "rendezvous"
)

// Candidate is a peer SyncAny tried, and where it came from.
type Candidate struct {
	Peer   peer.AddrInfo
	Source string
}

// DiscoverOptions tune SyncAny.
type DiscoverOptions struct {
	vault.SyncOptions
	// Peers to try first, in order: an address on the command line, a
	// ticket's seeds, the agent's seeds.
	Peers []peer.AddrInfo
	// LAN browses the local network with mDNS for devices serving the vault
	// (multicast leaves this machine, so it is off unless asked for) and
	// waits LANWait (default 2 s) for answers. The device then listens on
	// all interfaces and is announced too while it syncs.
	LAN     bool
	LANWait time.Duration
	// NoDHT skips the DHT lookup.
	NoDHT bool
	// NoRendezvous skips asking the agent's seeds for its other devices.
	NoRendezvous bool
	// DialTimeout bounds each connection attempt (default 10 s).
	DialTimeout time.Duration
	// Attempt, if set, hears of every peer tried and how it went (nil error:
	// it served the vault).
	Attempt func(Candidate, error)
}

// ErrNoPeer: no peer from any source served the vault.
var ErrNoPeer = errors.New("no peer served the vault")

// maxRemembered is how many peers a device remembers per vault.
const maxRemembered = 8

// SyncAny reconciles ns with the first peer that serves it, looking for
// peers source by source (see SourceGiven and the constants after it) and
// never trying a peer twice. A peer that refuses the vault or cannot be
// reached is reported through o.Attempt and the next one is tried; a sync
// that fails midway is returned as it is, since retrying elsewhere would
// repeat the transfer. The peer that served is remembered for next time.
func (h *Home) SyncAny(ctx context.Context, ns vault.NamespaceID, o DiscoverOptions) (vault.SyncStats, Candidate, error) {
	var listen []string
	if o.LAN {
		// mDNS answers only hosts with an address: on the local network
		// this device is announced too, for as long as it syncs.
		listen = []string{"/ip4/0.0.0.0/tcp/0"}
	}
	sess, err := h.openSession(ns, listen...)
	if err != nil {
		return vault.SyncStats{}, Candidate{}, err
	}
	defer sess.close()
	hst := sess.hst
	f := &finder{h: h, hst: hst, ns: ns, o: o, tried: map[peer.ID]bool{}}
	for _, src := range []struct {
		name string
		find func(context.Context) ([]peer.AddrInfo, error)
	}{
		{SourceGiven, func(context.Context) ([]peer.AddrInfo, error) { return o.Peers, nil }},
		{SourceKnown, func(context.Context) ([]peer.AddrInfo, error) { return h.RememberedPeers(ns) }},
		{SourceLAN, f.lan},
		{SourceDHT, f.dht},
		{SourceRendezvous, f.rendezvous},
	} {
		peers, err := src.find(ctx)
		if err != nil {
			f.failures = append(f.failures, fmt.Sprintf("%s: %v", src.name, err))
		}
		for _, p := range peers {
			if p.ID == hst.ID() || f.tried[p.ID] || len(p.Addrs) == 0 {
				continue
			}
			f.tried[p.ID] = true
			c := Candidate{Peer: p, Source: src.name}
			st, err := sess.sync(ctx, p, o.SyncOptions, o.DialTimeout)
			if o.Attempt != nil {
				o.Attempt(c, err)
			}
			if err == nil {
				return st, c, nil
			}
			if _, ok := errors.AsType[*sessionError](err); ok || ctx.Err() != nil {
				return st, c, unwrapSession(err)
			}
			f.failures = append(f.failures, fmt.Sprintf("%s %s: %v", src.name, p.ID, err))
		}
	}
	if len(f.failures) == 0 {
		return vault.SyncStats{}, Candidate{}, fmt.Errorf("%w %s: this device knows no peer for it; give a seed's multiaddr or a ticket", ErrNoPeer, ns.Short())
	}
	return vault.SyncStats{}, Candidate{}, fmt.Errorf("%w %s:\n  %s", ErrNoPeer, ns.Short(), strings.Join(f.failures, "\n  "))
}

type finder struct {
	h        *Home
	hst      host.Host
	ns       vault.NamespaceID
	o        DiscoverOptions
	tried    map[peer.ID]bool
	failures []string
}

// seeds are the peers tried so far that can answer DHT
// queries: any peer this device connected to.
func (f *finder) seeds() []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, id := range f.hst.Network().Peers() {
		out = append(out, f.hst.Peerstore().PeerInfo(id))
	}
	return out
}

// lan browses mDNS for LANServiceName(ns) for LANWait.
func (f *finder) lan(ctx context.Context) ([]peer.AddrInfo, error) {
	if !f.o.LAN {
		return nil, nil
	}
	wait := f.o.LANWait
	if wait <= 0 {
		wait = 2 * time.Second
	}
	found := &lanNotifee{}
	m := mdns.NewMdnsService(f.hst, LANServiceName(f.ns), found)
	if err := m.Start(); err != nil {
		return nil, fmt.Errorf("mDNS: %w", err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(wait):
	}
	m.Close()
	return found.peers(), nil
}

type lanNotifee struct {
	discard bool
	mu      sync.Mutex
	found   []peer.AddrInfo
}

func (n *lanNotifee) HandlePeerFound(p peer.AddrInfo) {
	if n.discard {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.found = append(n.found, p)
}

func (n *lanNotifee) peers() []peer.AddrInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.found)
}

// dht asks the DHT, through every peer connected so far (seeds are DHT
// servers), which seeds announce the vault.
func (f *finder) dht(ctx context.Context) ([]peer.AddrInfo, error) {
	if f.o.NoDHT {
		return nil, nil
	}
	boot := f.seeds()
	if len(boot) == 0 {
		return nil, nil
	}
	d, err := discovery.NewDHT(f.hst, discovery.DHTOptions{BootstrapPeers: boot})
	if err != nil {
		return nil, err
	}
	defer d.Close()
	lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if !waitRoutingTable(lctx, d) {
		return nil, errors.New("no connected peer answers DHT queries")
	}
	found := discovery.FindProvidersVia(lctx, d, boot, discovery.VaultCID(f.ns), 8)
	if len(found) == 0 {
		return nil, fmt.Errorf("no seed announces vault %s", f.ns.Short())
	}
	return found, nil
}

// waitRoutingTable waits until the client DHT has a server to ask.
func waitRoutingTable(ctx context.Context, d *dht.IpfsDHT) bool {
	if err := d.Bootstrap(ctx); err != nil {
		return false
	}
	for d.RoutingTable().Size() == 0 {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return true
}

// LANServiceName is the mDNS service a device serving ns announces. It is
// derived from the namespace ID (the read capability) so that the local
// network learns nothing of which vaults are served without holding it.
func LANServiceName(ns vault.NamespaceID) string {
	sum := sha256.Sum256(append([]byte("seedfleet/mdns/v1\x00"), ns[:]...))
	return "_sf-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:10])) + "._udp"
}

// rememberedPeer is one line of <home>/peers/<namespace>.json.
type rememberedPeer struct {
	ID       string   `json:"id"`
	Addrs    []string `json:"addrs"`
	LastSync int64    `json:"lastSync"` // Unix seconds
}

func (h *Home) peersPath(ns vault.NamespaceID) string {
	return filepath.Join(h.Dir, "peers", ns.String()+".json")
}

// RememberedPeers are the peers that served ns to this device, most recent
// first. A damaged file is an error naming it (delete it to start over).
func (h *Home) RememberedPeers(ns vault.NamespaceID) ([]peer.AddrInfo, error) {
	recs, err := h.readRemembered(ns)
	if err != nil {
		return nil, err
	}
	out := make([]peer.AddrInfo, 0, len(recs))
	for _, r := range recs {
		id, err := peer.Decode(r.ID)
		if err != nil {
			continue
		}
		info := peer.AddrInfo{ID: id}
		for _, s := range r.Addrs {
			if a, err := ma.NewMultiaddr(s); err == nil {
				info.Addrs = append(info.Addrs, a)
			}
		}
		out = append(out, info)
	}
	return out, nil
}

func (h *Home) readRemembered(ns vault.NamespaceID) ([]rememberedPeer, error) {
	path := h.peersPath(ns)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var recs []rememberedPeer
	if err := json.Unmarshal(b, &recs); err != nil {
		return nil, fmt.Errorf("%s: %w (delete it: the device relearns its peers at the next sync)", path, err)
	}
	return recs, nil
}

// rememberPeer puts p first in ns's remembered peers.
func (h *Home) rememberPeer(ns vault.NamespaceID, p peer.AddrInfo) error {
	recs, err := h.readRemembered(ns)
	if err != nil {
		recs = nil // a damaged file is replaced by what is known now
	}
	r := rememberedPeer{ID: p.ID.String(), LastSync: time.Now().Unix()}
	for _, a := range p.Addrs {
		r.Addrs = append(r.Addrs, a.String())
	}
	recs = slices.DeleteFunc(recs, func(o rememberedPeer) bool { return o.ID == r.ID })
	recs = append([]rememberedPeer{r}, recs...)
	if len(recs) > maxRemembered {
		recs = recs[:maxRemembered]
	}
	if err := os.MkdirAll(filepath.Dir(h.peersPath(ns)), 0o700); err != nil {
		return err
	}
	return writeJSON(h.peersPath(ns), recs)
}
