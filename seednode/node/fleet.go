package node

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/hosting"
	"github.com/seedfleet/seedfleet/seednode/ticket"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// FleetConfig makes the seed one pod of a public fleet: it answers
// self-service hosting requests for the whole fleet and hosts the vaults of
// the subjects whose placement includes it, next to those an administrator
// places.
type FleetConfig struct {
	Members fleet.Members
	Policy  hosting.Policy
}

// idleExpiryEvery is how often vaults past their idle expiry are released.
const idleExpiryEvery = time.Hour

// startFleet opens the hosting records and starts the hosting service.
func (n *Node) startFleet() error {
	f := n.cfg.Fleet
	if f == nil {
		return nil
	}
	m := f.Members
	if m.Self < 0 || m.Self >= len(m.Pods) || m.Pods[m.Self].ID != n.self {
		return fmt.Errorf("fleet.self (%d) does not name this seed (%s) among the %d members: the configuration is another pod's", m.Self, n.self, len(m.Pods))
	}
	var err error
	if n.records, err = hosting.OpenRecordsDir(filepath.Join(n.cfg.DataDir, "hosting"), n.log); err != nil {
		return err
	}
	adm, err := hosting.NewAdmitter(f.Policy, n.records, n.vaultUsage, nil)
	if err != nil {
		return err
	}
	members := f.Members
	if n.hostingSvc, err = hosting.New(n.host, adm, hosting.WithMembers(func() fleet.Members { return members }),
		hosting.WithAdmission(n.sync.Admission()), hosting.WithLogger(n.log), hosting.WithRegisterer(n.reg)); err != nil {
		return err
	}
	n.admitter = adm
	n.records.OnChange(n.recordChanged)
	n.replacePlacement()
	n.wg.Add(1)
	go n.replaceLoop(n.ctx)
	if f.Policy.IdleExpiry > 0 {
		n.wg.Add(1)
		go n.expireIdleLoop(n.ctx)
	}
	return nil
}

// replaceEvery bounds how often record changes re-place every vault: a
// re-placement reads every record, so it runs at most this often however
// fast agents are admitted.
const replaceEvery = 250 * time.Millisecond

// recordChanged hosts a newly admitted subject's vaults at once (a device
// syncs right after its request is accepted) and has everything re-placed
// shortly, which also applies quotas and drops what was released.
func (n *Node) recordChanged(subject ed25519.PublicKey, rec *hosting.Record) {
	if rec != nil {
		m := n.cfg.Fleet.Members
		if slices.Contains(m.Home(hosting.PlacementKey(rec.Kind, rec.Subject)), m.Self) {
			for _, v := range rec.Vaults {
				n.hosted.Add(vault.NamespaceID(v.Namespace))
			}
		}
	}
	select {
	case n.replaceNow <- struct{}{}:
	default:
	}
}

// replaceLoop re-places after record changes, at most every replaceEvery.
func (n *Node) replaceLoop(ctx context.Context) {
	defer n.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.replaceNow:
		}
		n.replacePlacement()
		select {
		case <-ctx.Done():
			return
		case <-time.After(replaceEvery):
		}
	}
}

// vaultUsage tells the admitter what a hosted vault holds and when a device
// last synced it. A restart restarts the idle clock: a vault is never
// released early for what this pod did not see.
func (n *Node) vaultUsage(ns [32]byte) hosting.VaultUsage {
	u := hosting.VaultUsage{LastSync: n.history.lastDeviceSync(vault.NamespaceID(ns))}
	if u.LastSync.Before(n.started) {
		u.LastSync = n.started
	}
	if st, err := n.store.Stats(vault.NamespaceID(ns)); err == nil {
		u.Bytes, u.Entries = st.Bytes, st.Entries
	}
	u.Synced = 1 + n.replicas.syncedPeers(vault.NamespaceID(ns), 3*n.cfg.ReplicateInterval)
	return u
}

// selfServicePlacement is what the records make this pod host: every vault
// of a subject whose home includes it, with the vault's quota and the other
// home pods as replica peers.
func (n *Node) selfServicePlacement() Placement {
	p := Placement{Peers: map[vault.NamespaceID][]peer.AddrInfo{}, Options: map[vault.NamespaceID]admin.VaultOptions{}}
	if n.records == nil {
		return p
	}
	m := n.cfg.Fleet.Members
	err := n.records.Each(func(rec *hosting.Record) bool {
		home := m.Home(hosting.PlacementKey(rec.Kind, rec.Subject))
		if !slices.Contains(home, m.Self) {
			// Not this pod's any more (the fleet scaled): kept until the
			// moves land; see the fleet exchange.
			return true
		}
		var peers []peer.AddrInfo
		for _, o := range home {
			if o != m.Self {
				peers = append(peers, m.Pods[o])
			}
		}
		for _, v := range rec.Vaults {
			ns := vault.NamespaceID(v.Namespace)
			if _, seen := p.Options[ns]; !seen {
				p.Vaults = append(p.Vaults, ns)
			}
			// A vault claimed by several subjects gets the largest quota.
			o := p.Options[ns]
			o.MaxBytes, o.MaxEntries = max(o.MaxBytes, v.QuotaBytes), max(o.MaxEntries, v.QuotaEntries)
			p.Options[ns] = o
			for _, peer := range peers {
				p.Peers[ns] = mergePeer(p.Peers[ns], peer)
			}
		}
		return true
	})
	if err != nil {
		n.log.Error("hosting records unreadable: self-service vaults are not placed", "err", err)
	}
	return p
}

// mergePlacements is what a pod hosts: the administrator's placement and the
// self-service one. An administrator's options win where both set a vault's.
func mergePlacements(placed, self Placement) Placement {
	out := Placement{Vaults: slices.Clone(placed.Vaults), Peers: map[vault.NamespaceID][]peer.AddrInfo{},
		Options: map[vault.NamespaceID]admin.VaultOptions{}}
	for ns, o := range self.Options {
		out.Options[ns] = o
	}
	for ns, o := range placed.Options {
		out.Options[ns] = o
	}
	for ns, ps := range self.Peers {
		out.Peers[ns] = slices.Clone(ps)
	}
	for ns, ps := range placed.Peers {
		for _, p := range ps {
			out.Peers[ns] = mergePeer(out.Peers[ns], p)
		}
	}
	for _, ns := range self.Vaults {
		if !slices.Contains(out.Vaults, ns) {
			out.Vaults = append(out.Vaults, ns)
		}
	}
	return out
}

// expireIdleLoop releases, every hour, the self-service vaults past their
// idle expiry.
func (n *Node) expireIdleLoop(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTicker(idleExpiryEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			released, err := n.admitter.ExpireIdle()
			if err != nil {
				n.log.Error("idle expiry", "err", err)
			}
			if len(released) > 0 {
				n.log.Info("released idle self-service vaults", "vaults", len(released))
			}
		}
	}
}

// FleetTicket is the fleet's ticket as this pod tells it; false without a fleet.
func (n *Node) FleetTicket() (ticket.FleetTicket, bool) {
	if n.hostingSvc == nil {
		return ticket.FleetTicket{}, false
	}
	return n.hostingSvc.Ticket(), true
}
