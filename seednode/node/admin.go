package node

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/internal/version"
	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// DefaultAdminListen is the admin API's default address: loopback, like the
// libp2p listener; pods expose it to the kubelet and the operator.
const DefaultAdminListen = "127.0.0.1:7401"

// adminSource serves the admin API from the node.
type adminSource struct{ n *Node }

func (a adminSource) Ready(context.Context) error { return a.n.Ready() }

// StartVerify implements admin.Verifier: a verification pass starts now.
func (a adminSource) StartVerify(context.Context) error {
	a.n.integrity.requestPass()
	return nil
}

// HostedVaults answers the hosted vaults (sorted), the replica peers of
// each, as full multiaddrs grouped by peer, and their options.
func (a adminSource) HostedVaults() admin.HostedVaults {
	list := a.n.hosted.List()
	hv := admin.HostedVaults{Vaults: make([]string, len(list))}
	for i, ns := range list {
		hv.Vaults[i] = ns.String()
	}
	slices.Sort(hv.Vaults)
	for ns, infos := range a.n.replicas.placed() {
		if !a.n.hosted.Has(ns) {
			continue
		}
		var addrs []string
		for _, info := range infos {
			full, err := peer.AddrInfoToP2pAddrs(&info)
			if err != nil {
				continue // placed peers always have an ID and addresses
			}
			for _, m := range full {
				addrs = append(addrs, m.String())
			}
		}
		if hv.Peers == nil {
			hv.Peers = map[string][]string{}
		}
		hv.Peers[ns.String()] = addrs
	}
	if m := a.n.options.Load(); m != nil {
		for ns, o := range *m {
			if !a.n.hosted.Has(ns) {
				continue
			}
			if hv.Options == nil {
				hv.Options = map[string]admin.VaultOptions{}
			}
			hv.Options[ns.String()] = o
		}
	}
	return hv
}

// SetHostedVaults replaces the placement. The Server has checked the input's
// form; what only the node can check (its own peer ID listed as a replica
// peer) is refused with admin.ErrInvalid.
func (a adminSource) SetHostedVaults(_ context.Context, hv admin.HostedVaults) error {
	b := newPlacementBuilder(a.n.self)
	for i, s := range hv.Vaults {
		ns, err := vault.ParseNamespaceID(s)
		if err != nil {
			return fmt.Errorf("%w: vaults[%d]: %w", admin.ErrInvalid, i, err)
		}
		if err := b.add(ns, hv.Peers[s]); err != nil {
			return fmt.Errorf("%w: peers[%q]: %w", admin.ErrInvalid, s, err)
		}
		b.setOptions(ns, hv.Options[s])
	}
	a.n.SetPlacement(b.p)
	return nil
}

func (a adminSource) Status(ctx context.Context) (admin.Status, error) {
	n := a.n
	st := admin.Status{PeerID: n.host.ID().String(), Version: version.String(), StartedAt: n.started}
	for _, m := range n.Addrs() {
		st.Addrs = append(st.Addrs, m.String())
	}
	if n.dht != nil {
		st.DHT = admin.DHTStatus{Mode: string(n.cfg.DHT.mode()), RoutingTableSize: n.dht.RoutingTable().Size(),
			ReprovideLagSeconds: n.provider.Lag().Seconds()}
	}
	if n.acl != nil {
		st.Relay = admin.RelayStatus{Mode: string(n.acl.Mode()), AllowedPeers: n.acl.AllowedCount()}
	}
	st.Integrity = n.integrity.status()
	for _, ns := range n.hosted.List() {
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		vs := admin.VaultStatus{Namespace: ns.String(), Replicas: n.replicas.status(ns), Damage: damageStatus(n.store.Damage(ns))}
		if vs.Damage == nil || vs.Damage.State != admin.DamageQuarantined {
			s, err := n.store.Stats(ns)
			if err != nil {
				// One unreadable vault must not hide the others: report it
				// as damaged (integrity quarantines it).
				vs.Damage = &admin.VaultDamage{State: admin.DamageQuarantined, Reason: err.Error(), Since: time.Now()}
			} else {
				vs.Entries, vs.Bytes, vs.Fingerprint = s.Entries, s.Bytes, hex.EncodeToString(s.Fingerprint[:])
			}
		}
		vs.LastSync = n.history.lastSync(ns)
		if bc, ok := n.blobCounts.get(ns); ok {
			vs.BlobsComplete, vs.BlobsMissing = bc.complete, bc.missing
		}
		vs.Peers = n.history.peerCount(ns)
		st.Vaults = append(st.Vaults, vs)
	}
	return st, nil
}

// startAdmin starts the admin API (unless AdminListen is "off").
func (n *Node) startAdmin() error {
	addr := n.cfg.AdminListen
	if addr == "off" {
		return nil
	}
	if addr == "" {
		addr = DefaultAdminListen
	}
	token, err := n.adminToken()
	if err != nil {
		return err
	}
	srv, err := admin.New(addr, adminSource{n}, n.reg, admin.WithRuntimeMetrics(), admin.WithLogger(n.log), admin.WithToken(token))
	if err != nil {
		return fmt.Errorf("admin API on %s: %w", addr, err)
	}
	n.admin = srv
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := srv.Serve(); err != nil {
			n.log.Warn("admin API stopped", "err", err)
		}
	}()
	return nil
}

// AdminURL is the admin API's base URL ("" when disabled).
func (n *Node) AdminURL() string {
	if n.admin == nil {
		return ""
	}
	return n.admin.URL()
}
