package node

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/discovery"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// DHTConfig configures the node's part in the DHT.
type DHTConfig struct {
	// Mode is config.DHTServer (the default for seeds), config.DHTClient
	// or config.DHTOff.
	Mode              config.DHTMode
	ProtocolPrefix    string
	BootstrapPeers    []peer.AddrInfo
	ReprovideInterval time.Duration // default discovery.DefaultReprovideInterval
}

// mode is the configured mode, config.DHTServer when unset.
func (c DHTConfig) mode() config.DHTMode {
	if c.Mode == "" {
		return config.DHTServer
	}
	return c.Mode
}

// check refuses a mode that is none of the config constants (a literal
// spelt differently from them would otherwise pass for a server).
func (c DHTConfig) check() error {
	switch m := c.mode(); m {
	case config.DHTServer, config.DHTClient, config.DHTOff:
		return nil
	default:
		return fmt.Errorf("DHT mode %q: want %q, %q or %q", m, config.DHTServer, config.DHTClient, config.DHTOff)
	}
}

// startDiscovery starts the DHT and the provider loop (unless off).
func (n *Node) startDiscovery() error {
	c := n.cfg.DHT
	if c.mode() == config.DHTOff {
		return nil
	}
	store, err := discovery.OpenDatastore(filepath.Join(n.cfg.DataDir, "dht"))
	if err != nil {
		return err
	}
	d, err := discovery.NewDHT(n.host, discovery.DHTOptions{
		Server: c.mode() == config.DHTServer, ProtocolPrefix: c.ProtocolPrefix, BootstrapPeers: c.BootstrapPeers,
		Datastore: store})
	if err != nil {
		store.Close()
		if c.ProtocolPrefix != "" {
			// kad-dht refuses some prefixes (/ipfs): name the setting, as the
			// configuration file spells it, that the operator has to change.
			return fmt.Errorf("dht.protocolPrefix %q: %w", c.ProtocolPrefix, err)
		}
		return err
	}
	n.dhtStore = store
	n.dht = d
	opts := []discovery.ProviderOption{discovery.WithRegisterer(n.reg)}
	if c.ReprovideInterval > 0 {
		opts = append(opts, discovery.WithReprovideInterval(c.ReprovideInterval))
	}
	if n.provider, err = discovery.NewProvider(d, opts...); err != nil {
		return err
	}
	n.provider.Set(vaultKeys(n.hosted.List()))
	n.wg.Add(2)
	go func() { defer n.wg.Done(); n.provider.Run(n.ctx) }()
	go func() {
		defer n.wg.Done()
		n.bootstrapDHT()
	}()
	return nil
}

// bootstrapDHT connects to the configured peers, retrying until one answers.
func (n *Node) bootstrapDHT() {
	backoff := time.Second
	for {
		ok := len(n.cfg.DHT.BootstrapPeers) == 0
		for _, p := range n.cfg.DHT.BootstrapPeers {
			ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
			if err := n.host.Connect(ctx, p); err == nil {
				ok = true
			} else {
				n.log.Info("DHT bootstrap peer unreachable; retrying", "peer", p.ID, "err", err)
			}
			cancel()
		}
		if ok {
			_ = n.dht.Bootstrap(n.ctx)
			n.bootstrapped.Store(true)
			return
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
}

func vaultKeys(list []vault.NamespaceID) []cid.Cid {
	keys := make([]cid.Cid, 0, len(list))
	for _, ns := range list {
		keys = append(keys, discovery.VaultCID(ns))
	}
	return keys
}

// setProvided announces every hosted vault and every agent those vaults are
// bound to, so a device finds its seeds by namespace or by agent DID.
func (n *Node) setProvided() {
	if n.provider == nil {
		return
	}
	keys := vaultKeys(n.hosted.List())
	n.agentsMu.RLock()
	for _, doc := range n.agentDocs {
		keys = append(keys, discovery.AgentCID(doc.DID()))
	}
	n.agentsMu.RUnlock()
	n.provider.Set(keys)
}
