package admin

import (
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// MaxPeersPerVault bounds the replica peer addresses listed for one vault
// (HostedVaults.Peers, and a line of the seed's hosted vaults file).
const MaxPeersPerVault = 16

// ErrInvalid is wrapped by a Source's SetHostedVaults error when the input
// itself is wrong (for example, the seed's own peer ID listed as a replica
// peer): the Server answers 400 with the error's text instead of 500.
var ErrInvalid = errors.New("invalid hosted vaults")

// ParsePeerAddr parses the full multiaddr of another seed: a transport
// address ending in /p2p/<peer ID>, e.g.
// /dns4/seed-1.seeds.default.svc/tcp/7400/p2p/12D3KooW…. Its errors say what
// is wrong without repeating s.
func ParsePeerAddr(s string) (peer.AddrInfo, error) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("not a multiaddr: %v", err)
	}
	rest, last := ma.SplitLast(m)
	switch {
	case last == nil || last.Code() != ma.P_P2P:
		return peer.AddrInfo{}, errors.New("must end in /p2p/<peer ID>")
	case len(rest) == 0:
		return peer.AddrInfo{}, errors.New("needs an address before /p2p/ (e.g. /dns4/seed.example/tcp/7400/p2p/<peer ID>)")
	}
	info, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("bad peer ID: %v", err)
	}
	return *info, nil
}
