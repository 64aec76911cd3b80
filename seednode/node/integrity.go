package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

const (
	// DefaultScrubInterval is how often every hosted vault is verified
	// against its stored sums in the background.
	DefaultScrubInterval = 24 * time.Hour
	// verifyAtStartBytes: a vault store smaller than this is verified
	// before the seed serves (about a second of reading at most); a larger
	// one right after, in the background.
	verifyAtStartBytes = 256 << 20
	// scrubDuty bounds the scrub to this share of one core's time.
	scrubDuty = 10
)

// integrity keeps the seed's vault replicas sound. It verifies each hosted
// vault (stored sums, key index and bytes against the entries; every entry
// decoded): at start, after the store reports damage, and every scrub
// interval. A vault whose reads fail is quarantined, its data cut out and
// rebuilt by syncing with its replica peers (or the next device); a vault
// whose derived state disagrees keeps its entries, has its sums recomputed
// and is rebuilt the same way, since entries it held are gone. A rebuilt
// vault is healed by its next successful sync: with a replica peer when it
// has any, else with any peer.
type integrity struct {
	n        *Node
	interval time.Duration
	wake     chan struct{}

	verified    *prometheus.CounterVec
	quarantines prometheus.Counter

	mu       sync.Mutex
	running  bool
	lastPass time.Time // when the latest complete pass over every vault began
}

func newIntegrity(n *Node, interval time.Duration) *integrity {
	if interval <= 0 {
		interval = DefaultScrubInterval
	}
	return &integrity{n: n, interval: interval, wake: make(chan struct{}, 1),
		verified: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seedfleet_vault_verifications_total",
			Help: "Verifications of a vault replica's stored sums against its entries, by result (ok, rederived, quarantined, error)."},
			[]string{"result"}),
		quarantines: prometheus.NewCounter(prometheus.CounterOpts{Name: "seedfleet_vault_quarantines_total",
			Help: "Vault replicas quarantined because their stored data was damaged."}),
	}
}

// register adds the integrity metrics to reg.
func (g *integrity) register(reg prometheus.Registerer) error {
	damaged := func(state vault.DamageState) prometheus.GaugeFunc {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "seedfleet_vault_replicas_damaged",
			Help:        "Hosted vault replicas being repaired, by state (Quarantined, Rebuilding).",
			ConstLabels: prometheus.Labels{"state": state.String()}},
			func() float64 {
				c := 0
				for _, d := range g.n.store.Damaged() {
					if d.State == state {
						c++
					}
				}
				return float64(c)
			})
	}
	storeErrors := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "seedfleet_store_errors_total",
		Help: "Errors the vault store's Pebble logged (each is also logged)."},
		func() float64 { return float64(g.n.store.PebbleErrors()) })
	corruptions := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "seedfleet_store_corruptions_total",
		Help: "Damaged data found in the vault store (checksum errors, records that do not decode)."},
		func() float64 { return float64(g.n.store.Corruptions()) })
	return register(reg, g.verified, g.quarantines, damaged(vault.Quarantined), damaged(vault.Rebuilding), storeErrors, corruptions)
}

// requestPass asks for a verification pass soon: the store reported damage
// (its OnCorruption), or someone asked (the admin API).
func (g *integrity) requestPass() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// start settles what the store reported at open, then verifies the
// vaults (hosted or held) now if that is cheap or the store predates store
// IDs; the caller then runs the background loop.
func (g *integrity) start(ctx context.Context) (verified bool, err error) {
	st := g.n.store
	if err := g.settleRebuild(g.n.hosted.List()); err != nil {
		return false, err
	}
	if st.NeedsVerify() || st.DiskUsage() < verifyAtStartBytes {
		g.pass(ctx, false)
		return true, nil
	}
	return false, nil
}

// settleRebuild marks the vaults of a store-wide rebuild (the store was
// rebuilt, or its write-ahead log lost) as Rebuilding: those it still holds
// and those placed. The store-wide record is cleared once a placement is
// known (placed non-empty), since a seed placed by the operator learns its
// vaults only after it starts.
func (g *integrity) settleRebuild(placed []vault.NamespaceID) error {
	st := g.n.store
	d, ok := st.PendingRebuild()
	if !ok {
		return nil
	}
	held, err := st.Namespaces()
	if err != nil {
		return err
	}
	for _, ns := range append(held, placed...) {
		if err := st.MarkRebuilding(ns, d.Reason); err != nil {
			return err
		}
	}
	if len(placed) == 0 {
		return nil
	}
	return st.ClearPendingRebuild()
}

// vaults are the vaults to verify: those hosted and those the store holds
// (a seed placed by its operator learns what it hosts after it starts).
func (g *integrity) vaults() []vault.NamespaceID {
	list := g.n.hosted.List()
	held, err := g.n.store.Namespaces()
	if err != nil {
		g.n.log.Warn("vaults held in the store not listed; verifying the hosted ones", "err", err)
	}
	hosted := make(map[vault.NamespaceID]bool, len(list))
	for _, ns := range list {
		hosted[ns] = true
	}
	for _, ns := range held {
		if !hosted[ns] {
			list = append(list, ns)
		}
	}
	return list
}

// run verifies every hosted vault every interval, paced, and at full speed
// when the store reports damage or someone asks (the first pass, when start
// left it, is paced).
func (g *integrity) run(ctx context.Context, verifiedAtStart bool) {
	defer g.n.wg.Done()
	first := time.Duration(0)
	if verifiedAtStart {
		first = g.interval
	}
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		paced := true
		select {
		case <-ctx.Done():
			return
		case <-g.wake:
			paced = false
		case <-t.C:
		}
		g.pass(ctx, paced)
		t.Reset(g.interval)
	}
}

// pass checks every hosted vault; paced, it takes at most a tenth of a core.
func (g *integrity) pass(ctx context.Context, paced bool) {
	g.setRunning(true)
	defer g.setRunning(false)
	began := time.Now()
	for _, ns := range g.vaults() {
		start := time.Now()
		g.check(ctx, ns)
		if !paced {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Since(start) * (scrubDuty - 1)):
		}
	}
	g.mu.Lock()
	g.lastPass = began
	g.mu.Unlock()
}

func (g *integrity) setRunning(r bool) {
	g.mu.Lock()
	g.running = r
	g.mu.Unlock()
}

// status reports the verification for /status.
func (g *integrity) status() admin.IntegrityStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	return admin.IntegrityStatus{Verifying: g.running, LastPass: g.lastPass, Damaged: len(g.n.store.Damaged())}
}

// check verifies one vault and repairs what it finds.
func (g *integrity) check(ctx context.Context, ns vault.NamespaceID) {
	st, log := g.n.store, g.n.log.With("vault", ns.Short())
	if d, ok := st.Damage(ns); ok {
		if d.State == vault.Quarantined {
			g.repair(ctx, ns)
		}
		return // a rebuilding vault is verified again once healed
	}
	rep, err := st.VerifyVault(ns)
	switch {
	case err != nil && isDamage(err):
		g.verified.WithLabelValues("quarantined").Inc()
		g.quarantine(ctx, ns, "its stored data cannot be read: "+damageText(err))
	case err != nil:
		g.verified.WithLabelValues("error").Inc()
		log.Warn("vault not verified", "err", err)
	case rep.Problem != "":
		g.verified.WithLabelValues("rederived").Inc()
		log.Error("vault replica lost entries: its stored sums disagree with the entries it holds; "+
			"recomputing them and rebuilding the rest from other replicas", "problem", rep.Problem, "entries", rep.Entries)
		if err := st.Rederive(ns); err != nil {
			g.quarantine(ctx, ns, "its stored sums disagree with its entries and cannot be recomputed: "+err.Error())
			return
		}
		if err := st.MarkRebuilding(ns, rep.Problem); err != nil {
			log.Warn("damage not recorded", "err", err)
		}
		g.n.replicas.syncNow(ns)
	default:
		g.verified.WithLabelValues("ok").Inc()
	}
}

func (g *integrity) quarantine(ctx context.Context, ns vault.NamespaceID, reason string) {
	if err := g.n.store.Quarantine(ns, reason); err != nil {
		g.n.log.Warn("vault not quarantined", "vault", ns.Short(), "err", err)
		return
	}
	g.quarantines.Inc()
	g.repair(ctx, ns)
}

// repair removes a quarantined vault's data and starts rebuilding it.
func (g *integrity) repair(ctx context.Context, ns vault.NamespaceID) {
	if err := g.n.store.Repair(ctx, ns); err != nil {
		g.n.log.Error("damaged vault not repaired; will retry at the next verification", "vault", ns.Short(), "err", err)
		return
	}
	g.n.replicas.syncNow(ns)
}

// sessionEnded heals a rebuilding vault after a successful sync: with one of
// its replica peers if it has any, else with any peer.
func (g *integrity) sessionEnded(p peer.ID, ns vault.NamespaceID, err error) {
	if err != nil {
		return
	}
	if d, ok := g.n.store.Damage(ns); !ok || d.State != vault.Rebuilding {
		return
	}
	if peers := g.n.replicas.placed()[ns]; len(peers) > 0 && !containsPeer(peers, p) {
		return
	}
	if err := g.n.store.Healed(ns); err != nil {
		g.n.log.Warn("healed vault not recorded", "vault", ns.Short(), "err", err)
	}
}

func containsPeer(infos []peer.AddrInfo, p peer.ID) bool {
	for _, i := range infos {
		if i.ID == p {
			return true
		}
	}
	return false
}

// damageText is err's first line: Pebble's corruption errors carry more
// lines of detail, for the log.
func damageText(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

func isDamage(err error) bool {
	return errors.Is(err, vault.ErrDamaged) || pebble.IsCorruptionError(err)
}

// damageStatus is the admin API's view of a vault's damage (nil if sound).
func damageStatus(d vault.Damage, ok bool) *admin.VaultDamage {
	if !ok {
		return nil
	}
	state := admin.DamageQuarantined
	if d.State == vault.Rebuilding {
		state = admin.DamageRebuilding
	}
	return &admin.VaultDamage{State: state, Reason: d.Reason, Since: d.Since}
}

// syncPolicy serves sessions for hosted vaults whose replica is not
// quarantined.
type syncPolicy struct{ n *Node }

func (p syncPolicy) AllowSync(id peer.ID, ns vault.NamespaceID) error {
	if err := p.n.hosted.AllowSync(id, ns); err != nil {
		return err
	}
	if d, ok := p.n.store.Damage(ns); ok && d.State == vault.Quarantined {
		return fmt.Errorf("%w (%s); sync with another seed hosting it, or retry in a minute", vault.ErrQuarantined, d.Reason)
	}
	return nil
}
