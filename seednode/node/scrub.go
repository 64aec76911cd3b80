package node

import (
	"errors"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/seednode/blobs"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// damageQueueLen bounds the damaged blobs waiting for their refetch to be
// queued; beyond it, the blob counts (which now show the blob missing) and
// the repair scan after the next sync catch up.
const damageQueueLen = 256

// startBlobScrub starts the blob scrubber and the refetch of what it (or a
// transfer to a peer) finds damaged: the damaged groups are fetched again
// from the peers that hold the blob, the vault's replica peers first, then
// the devices that synced the vault. Its metrics go on the node's registry.
func (n *Node) startBlobScrub() error {
	scrubbed := prometheus.NewCounter(prometheus.CounterOpts{Name: "seedfleet_blob_scrubbed_bytes_total",
		Help: "Bytes of stored blobs (data and tree) verified by the background scrubber."})
	damaged := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seedfleet_blob_damaged_groups_total",
		Help: "16 KiB groups of held blobs found damaged on disk and dropped to be fetched again, by where they were found (scrub, serve)."},
		[]string{"found"})
	if err := register(n.reg, scrubbed, damaged); err != nil {
		return err
	}
	queue := make(chan blobs.Damage, damageQueueLen)
	n.blobs.OnDamage(func(d blobs.Damage) {
		damaged.WithLabelValues(d.Found).Add(float64(d.Groups.Groups()))
		select { // called with the store busy: never block it
		case queue <- d:
		default:
			n.log.Warn("damaged blob not queued for refetch; fetched after the next sync", "hash", vault.Hash(d.Hash).Short())
		}
	})
	n.fetcher.scrub = blobs.NewScrubber(n.blobs, blobs.ScrubOptions{Logger: n.log,
		Scrubbed: func(b uint64) { scrubbed.Add(float64(b)) }})
	n.wg.Add(2)
	go func() { defer n.wg.Done(); n.fetcher.scrub.Run(n.ctx) }()
	go func() {
		defer n.wg.Done()
		for {
			select {
			case <-n.ctx.Done():
				return
			case d := <-queue:
				n.refetchDamaged(d)
			}
		}
	}()
	return nil
}

// refetchDamaged queues the fetch of a damaged blob's dropped groups.
func (n *Node) refetchDamaged(d blobs.Damage) {
	n.log.Warn("held blob damaged on disk; fetching the damaged groups again", "hash", vault.Hash(d.Hash).Short(),
		"groups", d.Groups.Groups(), "found", d.Found)
	n.blobCounts.damaged()
	peers := n.blobHolders(d.Hash)
	if len(peers) == 0 {
		n.log.Warn("no peer known to hold a damaged blob; it stays missing until a peer that has it syncs", "hash", vault.Hash(d.Hash).Short())
		return
	}
	n.fetcher.queueFetch(blobJob{peers: peers, hash: d.Hash, size: d.Size})
}

// errFound stops a vault scan at the entry it looks for.
var errFound = errors.New("found")

// blobHolders are the peers likely to hold blob h: the replica peers of the
// hosted vaults that refer to it (their addresses put in the peerstore for
// a while), then the devices that synced those vaults.
func (n *Node) blobHolders(h [32]byte) []peer.ID {
	var out []peer.ID
	seen := map[peer.ID]bool{n.self: true}
	add := func(p peer.ID) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	placed := n.replicas.placed()
	var devices []peer.ID
	for _, ns := range n.hosted.List() {
		err := n.store.ForEach(ns, func(e *vault.SignedEntry) error {
			if vault.IsBlobRef(&e.Entry) && e.Hash == h {
				return errFound
			}
			return nil
		})
		if !errors.Is(err, errFound) {
			continue
		}
		for _, info := range placed[ns] {
			n.host.Peerstore().AddAddrs(info.ID, info.Addrs, peerstore.TempAddrTTL)
			add(info.ID)
		}
		devices = append(devices, n.history.syncedPeers(ns)...)
	}
	for _, p := range devices {
		add(p)
	}
	return out
}
