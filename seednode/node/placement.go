package node

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/seedfleet/seedfleet/seednode/admin"
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
}

// placementBuilder collects vaults and their replica peers, refusing peer
// addresses that are malformed, name this seed, or exceed the bound.
type placementBuilder struct {
	self  peer.ID
	p     Placement
	addrs map[vault.NamespaceID]int // peer addresses given per vault so far
}

func newPlacementBuilder(self peer.ID) *placementBuilder {
	return &placementBuilder{self: self, p: Placement{Peers: map[vault.NamespaceID][]peer.AddrInfo{}},
		addrs: map[vault.NamespaceID]int{}}
}

// add hosts ns, with the replica peers at addrs (full multiaddrs ending in
// /p2p/<peer ID>). A vault added twice keeps the peers of both calls.
func (b *placementBuilder) add(ns vault.NamespaceID, addrs []string) error {
	if _, seen := b.addrs[ns]; !seen {
		b.p.Vaults = append(b.p.Vaults, ns)
		b.addrs[ns] = 0
	}
	for _, s := range addrs {
		info, err := admin.ParsePeerAddr(s)
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
// ID optionally followed by the full multiaddrs (ending in /p2p/<peer ID>) of
// the other seeds hosting it, separated by spaces or tabs; blank lines and #
// comments are skipped. self is this seed's peer ID, which must not be
// listed. Errors name the line.
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
		if err := b.add(ns, fields[1:]); err != nil {
			return Placement{}, fmt.Errorf("line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return Placement{}, fmt.Errorf("line %d: %w", line+1, err)
	}
	return b.p, nil
}
