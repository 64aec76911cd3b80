package node

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/seedfleet/seedfleet/seednode/blobs"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// recountGap is the least time between two background recount passes; a
// pass that took longer than a tenth of it waits ten times its duration, so
// recounting never takes more than a tenth of a core.
const recountGap = time.Second

// blobCount is how many of the blobs a vault's entries refer to are here.
type blobCount struct {
	complete, missing int
	// fetches is how many blob fetches had completed when the count began:
	// a count with missing blobs is stale once more have completed.
	fetches uint64
}

// blobCounter keeps each hosted vault's blobCount for /status. A count scans
// the vault, so it is not made per request: every vault is counted when the
// node starts (or, if status asks first, when status asks), the collection
// pass counts every vault, and a background pass recounts a vault soon after
// entries referring to blobs are stored in it, while it lacks blobs soon
// after blobs are fetched, and after a held blob was found damaged.
type blobCounter struct {
	n    *Node
	wake chan struct{}

	mu      sync.Mutex
	counts  map[vault.NamespaceID]blobCount
	dirty   map[vault.NamespaceID]bool
	fetches uint64 // blob fetches completed
}

func newBlobCounter(n *Node) *blobCounter {
	return &blobCounter{n: n, wake: make(chan struct{}, 1),
		counts: map[vault.NamespaceID]blobCount{}, dirty: map[vault.NamespaceID]bool{}}
}

func (c *blobCounter) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// get returns the latest count of ns. A vault not counted yet (after a
// start, before the first pass reached it; just placed) is counted first,
// here: /status must never report an uncounted vault as missing nothing, as
// the operator drops a moved vault's old replica on that word. It is false
// only for a vault that is not hosted or could not be scanned.
func (c *blobCounter) get(ns vault.NamespaceID) (blobCount, bool) {
	c.mu.Lock()
	bc, ok := c.counts[ns]
	c.mu.Unlock()
	if ok {
		return bc, true
	}
	empty, err := c.countVault(ns)
	if err != nil {
		c.n.log.Warn("blobs of a vault not counted", "vault", ns.Short(), "err", err)
		return blobCount{}, false
	}
	if empty {
		return blobCount{}, c.n.hosted.Has(ns)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	bc, ok = c.counts[ns]
	return bc, ok
}

// lacking is vault.WithLackedBlobs: how many blobs ns lacks, at least 1
// while a recount is due (entries that refer to blobs arrived since).
func (c *blobCounter) lacking(ns vault.NamespaceID) int {
	if !c.mayLack(ns) {
		return 0
	}
	bc, ok := c.get(ns)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dirty[ns] {
		return max(bc.missing, 1)
	}
	if !ok {
		return 0
	}
	return bc.missing
}

// mayLack reports, without scanning, whether ns may lack blobs: it is not
// counted yet, a recount is due, or its count has blobs missing.
func (c *blobCounter) mayLack(ns vault.NamespaceID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	bc, ok := c.counts[ns]
	return !ok || c.dirty[ns] || bc.missing > 0
}

// damaged notes that a blob this node held complete lost groups (rot found
// by the scrubber or while serving it): every vault is recounted, as the
// blob may be any of theirs and a count is cheaper than finding out which.
func (c *blobCounter) damaged() {
	c.mu.Lock()
	for ns := range c.counts {
		c.dirty[ns] = true
	}
	c.mu.Unlock()
	c.poke()
}

// stored asks for a recount of ns after entries were stored in it: always
// if they refer to blobs or delete entries (tombstones drop references),
// else only if it lacked blobs (an overwrite may have dropped a reference to
// a missing one).
func (c *blobCounter) stored(ns vault.NamespaceID, blobRefs int, deletes bool) {
	c.mu.Lock()
	recount := blobRefs > 0 || deletes || c.counts[ns].missing > 0
	if recount {
		c.dirty[ns] = true
	}
	c.mu.Unlock()
	if recount {
		c.poke()
	}
}

// fetched notes a completed blob fetch: vaults that lacked blobs are recounted.
func (c *blobCounter) fetched() {
	c.mu.Lock()
	c.fetches++
	c.mu.Unlock()
	c.poke()
}

// retain drops the counts of vaults no longer hosted.
func (c *blobCounter) retain(hosted map[vault.NamespaceID]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ns := range c.counts {
		if !hosted[ns] {
			delete(c.counts, ns)
		}
	}
	for ns := range c.dirty {
		if !hosted[ns] {
			delete(c.dirty, ns)
		}
	}
}

// count scans ns and records its count (unless ns stopped being hosted).
func (c *blobCounter) count(ns vault.NamespaceID) error {
	_, err := c.countVault(ns)
	return err
}

// countVault is count, and reports whether ns holds no entries at all. The
// count of an empty vault is not kept: scanning it again costs one seek,
// and a public fleet's seed hosts 100,000 vaults, mostly empty and idle,
// whose zero counts took ~90 bytes each.
func (c *blobCounter) countVault(ns vault.NamespaceID) (empty bool, err error) {
	c.mu.Lock()
	bc := blobCount{fetches: c.fetches}
	c.mu.Unlock()
	entries := 0
	err = c.n.store.ForEach(ns, func(e *vault.SignedEntry) error {
		entries++
		if !vault.IsBlobRef(&e.Entry) {
			return nil
		}
		if st, err := c.n.blobs.Stat(e.Hash); err == nil && st.State == blobs.Complete {
			bc.complete++
		} else {
			bc.missing++
		}
		return nil
	})
	if err != nil || !c.n.hosted.Has(ns) {
		return false, err
	}
	c.mu.Lock()
	if entries == 0 {
		delete(c.counts, ns)
		c.mu.Unlock()
		return true, nil
	}
	c.counts[ns] = bc
	stale := bc.missing > 0 && c.fetches > bc.fetches
	c.mu.Unlock()
	if stale { // a fetch completed during the scan
		c.poke()
	}
	return false, nil
}

// due takes the vaults to recount: those asked for, and those lacking blobs
// whose count began before the latest fetch completed.
func (c *blobCounter) due() []vault.NamespaceID {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []vault.NamespaceID
	for ns := range c.dirty {
		out = append(out, ns)
	}
	clear(c.dirty)
	for ns, bc := range c.counts {
		if bc.missing > 0 && bc.fetches < c.fetches && !slices.Contains(out, ns) {
			out = append(out, ns)
		}
	}
	return out
}

// run counts every hosted vault not counted yet, then recounts what is due
// whenever asked, at most once per recountGap.
func (c *blobCounter) run(ctx context.Context) {
	defer c.n.wg.Done()
	for _, ns := range c.n.hosted.List() {
		if ctx.Err() != nil {
			return
		}
		c.get(ns) // a failure is logged; status tries again when asked
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		}
		start := time.Now()
		for _, ns := range c.due() {
			if ctx.Err() != nil {
				return
			}
			if err := c.count(ns); err != nil {
				c.n.log.Debug("blob count not updated", "vault", ns.Short(), "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(recountGap, 10*time.Since(start))):
		}
	}
}
