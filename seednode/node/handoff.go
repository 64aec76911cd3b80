package node

import (
	"context"
	"slices"
	"time"

	"github.com/seedfleet/seedfleet/seednode/hosting"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// When the fleet's membership changes, a subject's ranking may no longer
// include a pod that holds its record: the pod is leaving the subject. It
// keeps the subject's vaults, with the subject's new home pods (its
// successors) as replica peers so that replication copies the vaults to
// them, sends them the record (they host nothing without it), and asks them
// every handoffEvery for the state of the vaults. Once every successor
// reports the fingerprint this pod has and no missing blob, for every vault
// of the subject, the pod drops the record, and with it (at the next
// collection) the vaults' data and blobs, as a release does. A successor
// that cannot be asked, or lags, only delays the drop.

// handoffEvery is how often a pod asks successors about the vaults it hands over.
const handoffEvery = time.Second

func (n *Node) handoffLoop(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.handoff(ctx)
		t.Reset(handoffEvery)
	}
}

// handoff runs one round: asks the successors of every subject this pod is
// leaving, sends the record to those that lack it, and drops the subjects
// whose successors all hold their vaults as this pod does.
func (n *Node) handoff(ctx context.Context) {
	recs := n.selfSvc.leavingRecords()
	if len(recs) == 0 {
		return
	}
	m := n.fleetMembers()
	asks := map[int][][32]byte{}
	homes := make([][]int, len(recs))
	for i, rec := range recs {
		homes[i] = m.Home(hosting.PlacementKey(rec.Kind, rec.Subject))
		for _, o := range homes[i] {
			for _, v := range rec.Vaults {
				asks[o] = append(asks[o], v.Namespace)
			}
		}
	}
	states := map[int]map[[32]byte]hosting.VaultState{}
	for o, vaults := range asks {
		slices.SortFunc(vaults, func(a, b [32]byte) int { return slices.Compare(a[:], b[:]) })
		vaults = slices.Compact(vaults)
		got := map[[32]byte]hosting.VaultState{}
		for chunk := range slices.Chunk(vaults, hosting.MaxStateVaults) {
			sts, err := n.hostingSvc.VaultStates(ctx, m.Pods[o], chunk)
			if err != nil {
				n.log.Info("a successor pod not asked about the vaults handed to it", "pod", m.Pods[o].ID, "err", err)
				break
			}
			for i, st := range sts {
				got[chunk[i]] = st
			}
		}
		states[o] = got
	}
	dropped := 0
	for i, rec := range recs {
		done, lacking := n.handedOver(rec, homes[i], states)
		if len(lacking) > 0 {
			n.hostingSvc.CopyRecord(ctx, rec, lacking)
		}
		if !done {
			continue
		}
		if _, err := n.records.Drop(rec.Subject); err != nil {
			n.log.Warn("a handed-over subject's record not dropped", "err", err)
			continue
		}
		dropped++
	}
	if dropped > 0 {
		n.log.Info("self-service subjects handed over to their new home pods", "subjects", dropped, "left", len(recs)-dropped)
	}
}

// handedOver reports whether every successor (home) holds every vault of
// rec as this pod does, and which successors host none of them yet (they
// need the record).
func (n *Node) handedOver(rec *hosting.Record, home []int, states map[int]map[[32]byte]hosting.VaultState) (bool, []int) {
	done := len(home) > 0
	var lacking []int
	for _, o := range home {
		got := states[o]
		hostsAny := false
		for _, v := range rec.Vaults {
			st, ok := got[v.Namespace]
			if !ok {
				done = false
				hostsAny = true // unknown: not asked, so not sent again
				continue
			}
			if !st.Hosted {
				done = false
				continue
			}
			hostsAny = true
			mine, err := n.store.Stats(vault.NamespaceID(v.Namespace))
			if err != nil || st.Fingerprint != [32]byte(mine.Fingerprint) || st.MissingBlobs > 0 {
				done = false
			}
		}
		if !hostsAny {
			lacking = append(lacking, o)
		}
	}
	return done, lacking
}

// vaultState answers a fleet pod asking about a vault here.
func (n *Node) vaultState(ns [32]byte) hosting.VaultState {
	id := vault.NamespaceID(ns)
	if !n.hosted.Has(id) {
		return hosting.VaultState{}
	}
	st, err := n.store.Stats(id)
	if err != nil {
		return hosting.VaultState{}
	}
	return hosting.VaultState{Hosted: true, Fingerprint: [32]byte(st.Fingerprint), MissingBlobs: uint64(n.blobCounts.lacking(id)),
		LastSync: n.lastDeviceSync(id)}
}
