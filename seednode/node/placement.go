package node

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"os"
	"strconv"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// Placement is what a seed hosts: the vaults and, for each, the other seeds
// hosting it too (its replica peers), with which the seed syncs the vault on
// its own so that replicas converge without any device.
type Placement struct {
	Vaults []vault.NamespaceID
	// Peers holds at most admin.MaxPeersPerVault addresses per vault, one
	// entry per peer ID. Peers of vaults not in Vaults are ignored.
	Peers map[vault.NamespaceID][]peer.AddrInfo
	// Options are per-vault settings (quota, relay); a vault without an
	// entry gets the seed's defaults. Options of vaults not in Vaults are
	// ignored.
	Options map[vault.NamespaceID]admin.VaultOptions
}

// placementBuilder collects vaults and their replica peers, refusing peer
// addresses that are malformed, name this seed, or exceed the bound.
type placementBuilder struct {
	self  peer.ID
	p     Placement
	addrs map[vault.NamespaceID]int // peer addresses given per vault so far
}

func newPlacementBuilder(self peer.ID) *placementBuilder {
	return &placementBuilder{self: self, p: Placement{Peers: map[vault.NamespaceID][]peer.AddrInfo{},
		Options: map[vault.NamespaceID]admin.VaultOptions{}}, addrs: map[vault.NamespaceID]int{}}
}

// setOptions sets the options of ns (added before). Set fields replace
// earlier ones, so a vault listed twice gets the options of both lines.
func (b *placementBuilder) setOptions(ns vault.NamespaceID, o admin.VaultOptions) {
	if o == (admin.VaultOptions{}) {
		return
	}
	cur := b.p.Options[ns]
	if o.MaxEntries != 0 {
		cur.MaxEntries = o.MaxEntries
	}
	if o.MaxBytes != 0 {
		cur.MaxBytes = o.MaxBytes
	}
	cur.NoRelay = cur.NoRelay || o.NoRelay
	b.p.Options[ns] = cur
}

// add hosts ns, with the replica peers at addrs (full multiaddrs ending in
// /p2p/<peer ID>). A vault added twice keeps the peers of both calls.
func (b *placementBuilder) add(ns vault.NamespaceID, addrs []string) error {
	if _, seen := b.addrs[ns]; !seen {
		b.p.Vaults = append(b.p.Vaults, ns)
		b.addrs[ns] = 0
	}
	for _, s := range addrs {
		info, err := p2p.ParseDialAddr(s)
		if err != nil {
			return fmt.Errorf("peer %q: %w", s, err)
		}
		if info.ID == b.self {
			return fmt.Errorf("peer %q is this seed's own peer ID: list only the other seeds hosting the vault", s)
		}
		if b.addrs[ns]++; b.addrs[ns] > admin.MaxPeersPerVault {
			return fmt.Errorf("more than %d peer addresses for vault %s", admin.MaxPeersPerVault, ns.Short())
		}
		b.p.Peers[ns] = mergePeer(b.p.Peers[ns], info)
	}
	return nil
}

// mergePeer adds info to infos: its addresses join the entry with the same
// peer ID if there is one (without repeating an address), else it is appended.
func mergePeer(infos []peer.AddrInfo, info peer.AddrInfo) []peer.AddrInfo {
	for i := range infos {
		if infos[i].ID != info.ID {
			continue
		}
		for _, a := range info.Addrs {
			if !containsAddr(infos[i].Addrs, a) {
				infos[i].Addrs = append(infos[i].Addrs, a)
			}
		}
		return infos
	}
	return append(infos, info)
}

func containsAddr(list []ma.Multiaddr, a ma.Multiaddr) bool {
	for _, b := range list {
		if b.Equal(a) {
			return true
		}
	}
	return false
}

// ParseVaultList reads a hosted vaults file: one vault per line, a namespace
// ID optionally followed, in any order and separated by spaces or tabs, by
// the full multiaddrs (starting with '/', ending in /p2p/<peer ID>) of the
// other seeds hosting it and by options:
//
//	maxEntries=N  the vault's entry quota instead of the seed's (N ≥ 1)
//	maxBytes=N    the vault's byte quota instead of the seed's (N ≥ 1)
//	relay=none    the vault's devices get no relay reservations through it
//
// Blank lines and # comments are skipped. self is this seed's peer ID, which
// must not be listed. Errors name the line.
func ParseVaultList(data []byte, self peer.ID) (Placement, error) {
	b := newPlacementBuilder(self)
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		text, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		ns, err := vault.ParseNamespaceID(fields[0])
		if err != nil {
			return Placement{}, fmt.Errorf("line %d: %w", line, err)
		}
		var addrs []string
		var opts admin.VaultOptions
		given := map[string]bool{}
		for _, f := range fields[1:] {
			if strings.HasPrefix(f, "/") {
				addrs = append(addrs, f)
				continue
			}
			if err := parseVaultOption(&opts, given, f); err != nil {
				return Placement{}, fmt.Errorf("line %d: %w", line, err)
			}
		}
		if err := b.add(ns, addrs); err != nil {
			return Placement{}, fmt.Errorf("line %d: %w", line, err)
		}
		b.setOptions(ns, opts)
	}
	if err := sc.Err(); err != nil {
		return Placement{}, fmt.Errorf("line %d: %w", line+1, err)
	}
	return b.p, nil
}

// parseVaultOption reads one option token of a vaults file line into o;
// given holds the options already read from the line, which may not repeat.
func parseVaultOption(o *admin.VaultOptions, given map[string]bool, tok string) error {
	name, value, ok := strings.Cut(tok, "=")
	if !ok {
		return fmt.Errorf("%q: not a multiaddr (peer addresses start with /), nor an option (maxEntries=N, maxBytes=N, relay=none)", tok)
	}
	if given[name] {
		return fmt.Errorf("%q: option %s given twice", tok, name)
	}
	given[name] = true
	switch name {
	case "maxEntries", "maxBytes":
		n, err := strconv.ParseUint(value, 10, 64)
		if err != nil || n == 0 {
			return fmt.Errorf("%q: %s must be a whole number of at least 1 (leave it out for the seed's limit)", tok, name)
		}
		if name == "maxEntries" {
			o.MaxEntries = n
		} else {
			o.MaxBytes = n
		}
	case "relay":
		if value != "none" {
			return fmt.Errorf("%q: the only relay option is relay=none", tok)
		}
		o.NoRelay = true
	default:
		return fmt.Errorf("%q: unknown option %q (want maxEntries=N, maxBytes=N or relay=none)", tok, name)
	}
	return nil
}

// SetPlacement replaces the hosted vaults, their replica peers and options:
// sync policy, replication, quotas (of sessions started from now on), DHT
// announcements and (at the next collection, triggered now) the relay
// allow-list and the data of vaults no longer hosted.
func (n *Node) SetPlacement(p Placement) {
	n.placeMu.Lock()
	n.placed = p
	n.placeMu.Unlock()
	n.replacePlacement()
}

// replacePlacement hosts what the administrator placed and what the fleet's
// self-service records give this pod; it runs after either changes.
func (n *Node) replacePlacement() {
	n.placeMu.Lock()
	placed := n.placed
	n.placeMu.Unlock()
	p := mergePlacements(placed, n.selfServicePlacement())
	collect := n.place(p)
	if err := n.integrity.settleRebuild(p.Vaults); err != nil {
		n.log.Warn("vaults of the rebuilt store not marked", "err", err)
	}
	n.setProvided()
	// A collection reads every hosted vault: it runs when vaults left (their
	// data goes) or a vault's relay access changed (the allow-list is
	// rebuilt), not for every admission (new vaults are empty).
	if collect {
		select {
		case n.gcNow <- struct{}{}:
		default:
		}
	}
}

// SetHostedVaults replaces the hosted vaults, with no replica peers.
func (n *Node) SetHostedVaults(list []vault.NamespaceID) { n.SetPlacement(Placement{Vaults: list}) }

// place replaces the hosted set, the replica peers and the options (of
// hosted vaults only), together: the vaults file and the admin API may place
// at once. It reports whether a collection is needed: a vault hosted before
// is not any more, or a vault's relay access changed.
func (n *Node) place(p Placement) bool {
	hosted := make(map[vault.NamespaceID]bool, len(p.Vaults))
	for _, ns := range p.Vaults {
		hosted[ns] = true
	}
	peers := maps.Clone(p.Peers)
	maps.DeleteFunc(peers, func(ns vault.NamespaceID, _ []peer.AddrInfo) bool { return !hosted[ns] })
	options := maps.Clone(p.Options)
	if options == nil {
		options = map[vault.NamespaceID]admin.VaultOptions{}
	}
	maps.DeleteFunc(options, func(ns vault.NamespaceID, o admin.VaultOptions) bool {
		return !hosted[ns] || o == (admin.VaultOptions{})
	})
	n.placeMu.Lock()
	defer n.placeMu.Unlock()
	collect := false
	for _, ns := range n.hosted.List() {
		if !hosted[ns] {
			collect = true
			break
		}
	}
	if old := n.options.Load(); !collect && old != nil {
		collect = relayAccessChanged(*old, options)
	}
	n.hosted.Replace(p.Vaults)
	n.replicas.set(peers)
	n.options.Store(&options)
	return collect
}

// relayAccessChanged reports whether a vault's NoRelay differs between the
// options before and after.
func relayAccessChanged(before, after map[vault.NamespaceID]admin.VaultOptions) bool {
	for ns, o := range before {
		if o.NoRelay != after[ns].NoRelay {
			return true
		}
	}
	for ns, o := range after {
		if o.NoRelay != before[ns].NoRelay {
			return true
		}
	}
	return false
}

// vaultOptions returns the placement options of ns (zero if it has none).
func (n *Node) vaultOptions(ns vault.NamespaceID) admin.VaultOptions {
	if m := n.options.Load(); m != nil {
		return (*m)[ns]
	}
	return admin.VaultOptions{}
}

// limitsFor is the store's vault.StoreOptions.LimitsFor: the configured
// limits, with the vault's own quota where its options set one.
func (n *Node) limitsFor(ns vault.NamespaceID) vault.Limits {
	lim, o := n.cfg.Limits, n.vaultOptions(ns)
	if o.MaxEntries != 0 {
		lim.MaxEntries = o.MaxEntries
	}
	if o.MaxBytes != 0 {
		lim.MaxBytes = o.MaxBytes
	}
	return lim
}

// reloadVaultsFile re-reads the hosted vaults and their replica peers. The
// first load, in New, changes nothing else (no collection before the node
// has run).
func (n *Node) reloadVaultsFile(first bool) error {
	data, err := os.ReadFile(n.cfg.VaultsFile)
	if err != nil {
		return fmt.Errorf("hosted vaults file: %w", err)
	}
	p, err := ParseVaultList(data, n.self)
	if err != nil {
		return fmt.Errorf("hosted vaults file %s: %w", n.cfg.VaultsFile, err)
	}
	p.Vaults = append(p.Vaults, n.cfg.HostedVaults...)
	if first {
		n.place(p)
		return nil
	}
	n.SetPlacement(p)
	n.log.Info("hosted vaults reloaded", "count", len(n.hosted.List()), "withPeers", len(p.Peers))
	return nil
}
