package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/seednode/blobs"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// blobJob is a blob an entry refers to, and the peers to fetch it from, in
// order: the peer that sent the entry (and so most likely has the blob), or
// for a damaged blob the peers that hold its vault.
type blobJob struct {
	peers []peer.ID
	hash  [32]byte
	size  uint64
	ns    vault.NamespaceID // the vault whose entry refers to it (zero: any)
}

const (
	blobQueueLen     = 16384
	blobFetchWorkers = 2
)

// blobFetcher downloads, in the background, the blobs that entries stored
// by vault sync refer to. The vault's byte quota already bounded those
// entries; each fetch is limited to the size its entry declares.
type blobFetcher struct {
	n        *Node
	queue    chan blobJob
	mu       sync.Mutex
	inFlight map[[32]byte]bool
	scanned  map[replicaKey]time.Time // last repair scan per vault and peer
	scrub    *blobs.Scrubber          // verifies held blobs (see startBlobScrub)
}

// repairEvery bounds how often a vault is scanned for blobs that are still
// missing (a fetch failed, or the queue was full) after sessions with one
// peer. A fetch from the peer that fails makes the next session scan again.
const repairEvery = 30 * time.Second

func newBlobFetcher(n *Node) *blobFetcher {
	return &blobFetcher{n: n, queue: make(chan blobJob, blobQueueLen), inFlight: map[[32]byte]bool{},
		scanned: map[replicaKey]time.Time{}}
}

// sessionEnded is the vault-sync hook after a reconciliation with p: when ns
// may lack blobs, fetch from p the ones still missing. A session that added
// no entry still matters: the fetch for the entries an earlier session
// brought may have failed (the device went away mid-fetch), and until the
// seed holds the blob that device may be the only one that has it.
func (f *blobFetcher) sessionEnded(p peer.ID, ns vault.NamespaceID, _ vault.SyncStats, err error) {
	if err == nil && f.n.blobCounts.mayLack(ns) {
		f.repair(p, ns, repairEvery)
	}
}

// repair looks, unless it did less than every ago, for entries of ns whose
// blobs this node still lacks and queues their fetch from p. The scan runs
// in the background: callers may be vault-sync hooks.
func (f *blobFetcher) repair(p peer.ID, ns vault.NamespaceID, every time.Duration) {
	k := replicaKey{ns, p}
	f.mu.Lock()
	due := time.Since(f.scanned[k]) >= every
	if due {
		f.scanned[k] = time.Now()
	}
	f.mu.Unlock()
	if !due {
		return
	}
	f.n.wg.Add(1)
	go func() {
		defer f.n.wg.Done()
		var missing []vault.Item
		err := f.n.store.ForEach(ns, func(e *vault.SignedEntry) error {
			if !vault.IsBlobRef(&e.Entry) {
				return nil
			}
			if st, err := f.n.blobs.Stat(e.Hash); err == nil && st.State != blobs.Complete {
				missing = append(missing, vault.Item{Entry: *e})
			}
			return nil
		})
		if err == nil && len(missing) > 0 {
			f.stored(p, ns, missing)
		}
	}()
}

// stored queues the fetch, from p, of the blobs items refer to that are not
// being fetched already, and returns how many items refer to a blob. It is
// called from the vault-sync hook, so it never blocks.
func (f *blobFetcher) stored(p peer.ID, ns vault.NamespaceID, items []vault.Item) (blobRefs int) {
	for _, it := range items {
		e := &it.Entry
		if it.Content != nil || !vault.IsBlobRef(&e.Entry) {
			continue
		}
		blobRefs++
		f.queueFetch(blobJob{peers: []peer.ID{p}, hash: e.Hash, size: e.Size, ns: ns})
	}
	return blobRefs
}

// queueFetch queues job unless its blob is being fetched already. It never
// blocks.
func (f *blobFetcher) queueFetch(job blobJob) {
	f.mu.Lock()
	busy := f.inFlight[job.hash]
	if !busy {
		f.inFlight[job.hash] = true
	}
	f.mu.Unlock()
	if busy {
		return
	}
	select {
	case f.queue <- job:
	default:
		// A full queue is caught up by the next sync or GC pass.
		f.done(job.hash)
		f.n.log.Warn("blob fetch queue full; blob will be fetched later", "hash", vault.Hash(job.hash).Short())
	}
}

func (f *blobFetcher) done(h [32]byte) {
	f.mu.Lock()
	delete(f.inFlight, h)
	f.mu.Unlock()
}

func (f *blobFetcher) busy(h [32]byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inFlight[h]
}

func (f *blobFetcher) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case job := <-f.queue:
			f.fetch(ctx, job)
			f.done(job.hash)
		}
	}
}

// fetch fetches job's blob from its peers in turn, until one completes it.
func (f *blobFetcher) fetch(ctx context.Context, job blobJob) {
	for _, p := range job.peers {
		if f.fetchFrom(ctx, p, job) || ctx.Err() != nil {
			return
		}
	}
}

// fetchFrom fetches job's blob from p and reports whether it is complete.
func (f *blobFetcher) fetchFrom(ctx context.Context, p peer.ID, job blobJob) bool {
	size := job.size
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	st, err := f.n.blobSvc.Fetch(ctx, p, job.hash, blobs.FetchOptions{Size: &size, MaxSize: size})
	h := vault.Hash(job.hash).Short()
	if f.n.metrics != nil {
		result := "ok"
		if err != nil {
			result = "error"
		}
		f.n.metrics.blobFetches.WithLabelValues(result).Inc()
		f.n.metrics.blobBytes.Add(float64(st.GroupsFetched * blobs.GroupSize))
	}
	if err != nil {
		f.n.log.Info("blob fetch failed; retried after the next sync", "hash", h, "from", p, "err", err)
		f.mu.Lock()
		delete(f.scanned, replicaKey{job.ns, p})
		f.mu.Unlock()
		return false
	}
	f.n.blobCounts.fetched()
	if !st.AlreadyComplete {
		f.n.log.Debug("blob fetched", "hash", h, "bytes", st.Size, "groups", st.GroupsFetched, "resumed", st.GroupsSkipped)
	}
	return st.Complete
}

// CollectGarbage drops the data of vaults this node no longer hosts and
// deletes every blob that no hosted vault's entries refer to. It returns
// how many blobs it deleted.
func (n *Node) CollectGarbage() (int, error) {
	hosted := map[vault.NamespaceID]bool{}
	for _, ns := range n.hosted.List() {
		hosted[ns] = true
	}
	present, err := n.store.Namespaces()
	if err != nil {
		return 0, err
	}
	for _, ns := range present {
		if !hosted[ns] {
			if err := n.store.DropVault(ns); err != nil {
				return 0, fmt.Errorf("drop vault %s: %w", ns.Short(), err)
			}
			n.log.Info("dropped the replica of a vault no longer hosted", "vault", ns.Short())
		}
	}
	n.blobCounts.retain(hosted)
	for ns := range hosted {
		if err := n.blobCounts.count(ns); err != nil {
			return 0, fmt.Errorf("count blobs of vault %s: %w", ns.Short(), err)
		}
	}
	// A damaged replica no longer lists every blob it refers to: collect no
	// blob until it is rebuilt.
	if d := n.store.Damaged(); len(d) > 0 {
		n.log.Info("blob collection postponed while vault replicas are repaired", "damaged", len(d))
		return 0, nil
	}
	// The referenced set costs 32 bytes per blob-valued entry.
	referenced := map[[32]byte]bool{}
	for ns := range hosted {
		err := n.store.ForEach(ns, func(e *vault.SignedEntry) error {
			if vault.IsBlobRef(&e.Entry) {
				referenced[e.Hash] = true
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	var doomed [][32]byte
	err = n.blobs.List(func(h [32]byte, _ blobs.Status) error {
		if !referenced[h] && !n.fetcher.busy(h) {
			doomed = append(doomed, h)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	deleted := 0
	for _, h := range doomed {
		if err := n.blobs.Delete(h); err != nil {
			n.log.Info("blob not collected", "hash", vault.Hash(h).Short(), "err", err)
			continue
		}
		deleted++
	}
	return deleted, nil
}

func (n *Node) gcLoop(ctx context.Context, every time.Duration) {
	defer n.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.gcNow:
		case <-t.C:
		}
		if err := n.refreshAllowed(); err != nil {
			n.log.Warn("relay allow-list not refreshed", "err", err)
		}
		if deleted, err := n.CollectGarbage(); err != nil {
			n.log.Warn("garbage collection failed", "err", err)
		} else if deleted > 0 {
			n.log.Info("garbage collected blobs", "deleted", deleted)
		}
	}
}

// repairBlobs, after a replica sync with p, fetches from p the blobs of ns
// still missing here (those whose fetch failed before, e.g. because p did
// not have them yet), scanning ns at most once per every.
func (n *Node) repairBlobs(p peer.ID, ns vault.NamespaceID, every time.Duration) {
	if bc, ok := n.blobCounts.get(ns); ok && bc.missing > 0 {
		n.fetcher.repair(p, ns, every)
	}
}
