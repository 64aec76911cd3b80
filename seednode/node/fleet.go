package node

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

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
	// File, if set, is the file the membership came from, and Reload reads
	// the membership again: the seed calls it whenever File changes and
	// applies what it returns without a restart (SetFleetMembers).
	File   string
	Reload func() (fleet.Members, error)
}

// idleExpiryEvery is how often vaults past their idle expiry are released
// and tombstones past their lifetime purged.
const idleExpiryEvery = time.Hour

// recordSyncFactor: pods compare their hosting records every this many
// replicate intervals (30 s by default): records change far less often than
// vaults.
const recordSyncFactor = 3

// startFleet opens the hosting records and starts the hosting service.
func (n *Node) startFleet() error {
	f := n.cfg.Fleet
	if f == nil {
		return nil
	}
	if err := f.Members.Check(n.self); err != nil {
		return fmt.Errorf("fleet members: %w", err)
	}
	n.members.Store(&f.Members)
	var err error
	if n.records, err = hosting.OpenRecordsDir(filepath.Join(n.cfg.DataDir, "hosting"), n.log); err != nil {
		return err
	}
	adm, err := hosting.NewAdmitter(f.Policy, n.records, n.vaultUsage, nil)
	if err != nil {
		return err
	}
	if n.hostingSvc, err = hosting.New(n.host, adm, hosting.WithMembers(n.fleetMembers),
		hosting.WithVaultState(n.vaultState), hosting.WithRecordSync(recordSyncFactor*n.cfg.ReplicateInterval),
		hosting.WithAdmission(n.sync.Admission()), hosting.WithLogger(n.log), hosting.WithRegisterer(n.reg)); err != nil {
		return err
	}
	n.admitter = adm
	n.selfSvc = &selfService{}
	if err := n.selfSvc.reset(f.Members, n.records); err != nil {
		return err
	}
	n.records.OnChange(n.recordChanged)
	n.replacePlacement()
	n.wg.Add(3)
	go n.replaceLoop(n.ctx)
	go n.handoffLoop(n.ctx)
	go n.expireIdleLoop(n.ctx)
	if f.File != "" && f.Reload != nil {
		n.wg.Add(1)
		go n.watchFile(f.File, "fleet membership", time.Time{}, n.reloadFleetMembers)
	}
	return nil
}

// fleetMembers is the fleet's membership as this pod knows it now (the
// zero Members on a seed that is no fleet's pod).
func (n *Node) fleetMembers() fleet.Members {
	if m := n.members.Load(); m != nil {
		return *m
	}
	return fleet.Members{}
}

// SetFleetMembers applies a new membership of the fleet while the seed
// runs: the hosting service answers and forwards by it at once, every
// record is placed again (the pod starts hosting the vaults it became a
// home of, and hands over those it no longer is, see handoff.go), and the
// pods compare records and vaults with the new peers. Connections and
// live sessions stay up. A membership that is not this pod's, or cannot be
// used, is refused with an error wrapping admin.ErrBadMembers (and on a
// seed that is no fleet's pod, admin.ErrNoFleet).
func (n *Node) SetFleetMembers(m fleet.Members) error {
	if n.selfSvc == nil {
		return admin.ErrNoFleet
	}
	if err := m.Check(n.self); err != nil {
		return fmt.Errorf("%w: %v", admin.ErrBadMembers, err)
	}
	if m.Replicas > ticket.MaxFleetReplicas {
		return fmt.Errorf("%w: replicas (%d) above %d", admin.ErrBadMembers, m.Replicas, ticket.MaxFleetReplicas)
	}
	n.fleetMu.Lock()
	defer n.fleetMu.Unlock()
	if old := n.fleetMembers(); sameMembers(old, m) {
		return nil
	}
	if err := n.selfSvc.reset(m, n.records); err != nil {
		return fmt.Errorf("fleet members not applied: %w", err)
	}
	n.members.Store(&m)
	n.hostingSvc.MembersChanged()
	n.fleetStats.forget()
	n.membersMoved.Store(true)
	select {
	case n.replaceNow <- struct{}{}:
	default:
	}
	n.log.Info("fleet membership applied", "pods", len(m.Pods), "leaving", m.Leaving, "replicas", m.Replicas, "version", m.Version())
	return nil
}

// sameMembers reports whether a and b are the same membership, the pods'
// addresses included.
func sameMembers(a, b fleet.Members) bool {
	return a.Self == b.Self && a.Replicas == b.Replicas && a.Leaving == b.Leaving &&
		slices.EqualFunc(a.Pods, b.Pods, func(x, y peer.AddrInfo) bool {
			return x.ID == y.ID && slices.EqualFunc(x.Addrs, y.Addrs, ma.Multiaddr.Equal)
		})
}

// reloadFleetMembers reads the membership again (its file changed) and
// applies it.
func (n *Node) reloadFleetMembers() error {
	m, err := n.cfg.Fleet.Reload()
	if err != nil {
		return err
	}
	return n.SetFleetMembers(m)
}

// replaceEvery bounds how often record changes re-place every vault; a
// re-placement that took d waits replaceCost·d before the next one, so that
// at any size re-placing takes at most a small share of a core.
const (
	replaceEvery = 250 * time.Millisecond
	replaceCost  = 50
)

// recordChanged applies one record change to the self-service index: a
// newly admitted subject's vaults are hosted at once (a device syncs right
// after its request is accepted), and everything is re-placed shortly, which
// also applies quotas, replica peers and drops what was released.
func (n *Node) recordChanged(subject ed25519.PublicKey, old, rec *hosting.Record) {
	added := n.selfSvc.apply(old, rec)
	for _, ns := range added {
		n.hosted.Add(ns)
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
		start := time.Now()
		moved := n.membersMoved.Swap(false)
		n.replacePlacement()
		if moved {
			n.replicas.exchangeSoon()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(replaceEvery, replaceCost*time.Since(start))):
		}
	}
}

// vaultUsage tells the admitter what a hosted vault holds and when a device
// last synced it.
func (n *Node) vaultUsage(ns [32]byte) hosting.VaultUsage {
	u := hosting.VaultUsage{LastSync: n.lastDeviceSync(vault.NamespaceID(ns)), Replicas: n.fleetMembers().Replicas}
	if st, err := n.store.Stats(vault.NamespaceID(ns)); err == nil {
		u.Bytes, u.Entries = st.Bytes, st.Entries
	}
	u.Synced = 1 + n.replicas.syncedPeers(vault.NamespaceID(ns), 3*n.cfg.ReplicateInterval)
	return u
}

// lastDeviceSync is when a device last synced ns here. A restart restarts
// the idle clock: a vault is never released early for what this pod did not
// see.
func (n *Node) lastDeviceSync(ns vault.NamespaceID) time.Time {
	if t := n.history.lastDeviceSync(ns); t.After(n.started) {
		return t
	}
	return n.started
}

// selfServicePlacement is what the records make this pod host: every vault
// of a subject whose home includes it, with the vault's quota and the other
// home pods as replica peers, and the vaults it hands over to their new home
// pods (see handoff.go), with those as peers.
func (n *Node) selfServicePlacement() Placement {
	if n.selfSvc == nil {
		return Placement{}
	}
	return n.selfSvc.placement()
}

// mergePlacements is what a pod hosts: the administrator's placement and the
// self-service one. An administrator's options win where both set a vault's.
func mergePlacements(placed, self Placement) Placement {
	if len(placed.Vaults) == 0 && len(placed.Peers) == 0 && len(placed.Options) == 0 {
		return self // a fleet pod nobody places vaults on: nothing to merge
	}
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
	listed := make(map[vault.NamespaceID]bool, len(out.Vaults))
	for _, ns := range out.Vaults {
		listed[ns] = true
	}
	for _, ns := range self.Vaults {
		if !listed[ns] {
			listed[ns] = true
			out.Vaults = append(out.Vaults, ns)
		}
	}
	return out
}

// expireIdleLoop releases, every hour, the self-service vaults past their
// idle expiry (if the policy sets one), and purges the tombstones of
// released subjects past their lifetime.
func (n *Node) expireIdleLoop(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTicker(idleExpiryEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		released, err := n.admitter.ExpireIdle(ctx, n.hostingSvc.LastSyncElsewhere)
		if err != nil {
			n.log.Error("idle expiry", "err", err)
		}
		if len(released) > 0 {
			n.log.Info("released idle self-service vaults", "vaults", len(released))
		}
		if _, err := n.records.PurgeReleased(time.Now()); err != nil {
			n.log.Error("purging released subjects' tombstones", "err", err)
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
