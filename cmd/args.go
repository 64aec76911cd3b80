package cmd

import (
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// agentAlias names the agent's private vault wherever a namespace ID is expected.
const agentAlias = client.AgentVaultName

// vaultArg resolves a NAMESPACE argument (client.Home.ResolveVault): a
// namespace ID, "agent" or "agent/PROJECT", with what to do when the home
// does not know it.
func vaultArg(h *client.Home, s string) (vault.NamespaceID, error) {
	ns, err := h.ResolveVault(s)
	switch {
	case errors.Is(err, client.ErrBadVaultName):
		return ns, fmt.Errorf("%w (`seedfleet vault create` prints one)", err)
	case errors.Is(err, client.ErrUnknownVault):
		return ns, fmt.Errorf("%w: `seedfleet vault list --home %s` lists the vaults it knows (check the namespace and --home); a vault created on another device is read after a sync: seedfleet sync %s <seed multiaddr>", err, h.Dir, ns)
	}
	return ns, err
}

func parseNS(s string) (vault.NamespaceID, error) {
	ns, err := vault.ParseNamespaceID(s)
	if err != nil {
		return ns, fmt.Errorf("%w (`seedfleet vault create` prints one)", err)
	}
	return ns, nil
}

// peerAddrHint is what a valid peer address looks like. A multiaddr parser's
// own words ("multihash length inconsistent") mean nothing to a user who
// pasted half a peer ID.
const peerAddrHint = "a peer address is a full multiaddr ending in /p2p/<peer ID>, " +
	"e.g. /ip4/127.0.0.1/tcp/7400/p2p/12D3KooW…; copy it whole from the seed's \"listening on\" lines"

// parsePeer parses one peer multiaddr given as what (a flag or argument name).
func parsePeer(what, s string) (peer.AddrInfo, error) {
	info, err := p2p.ParsePeerAddr(s)
	if err != nil {
		return info, fmt.Errorf("%s: %w\n(%s)", what, err, peerAddrHint)
	}
	return info, nil
}

// parsePeers parses the peer multiaddrs given as what.
func parsePeers(what string, addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, a := range addrs {
		info, err := parsePeer(what, a)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// checkListen refuses a listen multiaddr that does not parse, before a host
// reports it in libp2p's words.
func checkListen(flag string, addrs []string) error {
	for _, a := range addrs {
		if _, err := ma.NewMultiaddr(a); err != nil {
			return fmt.Errorf("--%s %q: %w\n(a listen address is a multiaddr such as /ip4/127.0.0.1/tcp/0 or /ip4/0.0.0.0/tcp/7500; port 0 picks a free one)", flag, a, err)
		}
	}
	return nil
}
