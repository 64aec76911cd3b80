package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/seednode/blobs"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// EagerBlobMax is the largest sealed value a sync of a private vault
// brings with the entry: a sealed value over 1 KiB travels as a blob, and
// one up to this size is fetched from the peer the entry came from as soon
// as the entry is stored (after a one-shot sync, as it arrives in a live
// one). Agent state depends on it: a document's snapshot is such a value,
// and the changes it covers are deleted. Larger values are fetched when
// read (get --out, blob get).
const EagerBlobMax = 4 << 20

// eagerBlobs collects the blob refs of sealed values stored in a session.
type eagerBlobs struct {
	mu      sync.Mutex
	pending map[[32]byte]uint64 // hash -> size
	arrived chan struct{}       // signalled when pending grows
}

func newEagerBlobs() *eagerBlobs {
	return &eagerBlobs{pending: map[[32]byte]uint64{}, arrived: make(chan struct{}, 1)}
}

// stored is the vault service's stored hook: it notes the blob refs of
// what a peer sent.
func (e *eagerBlobs) stored(_ peer.ID, _ vault.NamespaceID, items []vault.Item) {
	added := false
	e.mu.Lock()
	for _, it := range items {
		if vault.IsBlobRef(&it.Entry.Entry) && it.Entry.Size <= EagerBlobMax {
			e.pending[it.Entry.Hash] = it.Entry.Size
			added = true
		}
	}
	e.mu.Unlock()
	if added {
		select {
		case e.arrived <- struct{}{}:
		default:
		}
	}
}

// take empties the pending set.
func (e *eagerBlobs) take() map[[32]byte]uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.pending
	e.pending = map[[32]byte]uint64{}
	return out
}

// fetch fetches from p the pending blobs this device does not hold. Those
// that fail stay pending.
func (e *eagerBlobs) fetch(ctx context.Context, h *Home, bsvc *blobs.Service, p peer.ID) error {
	var errs []error
	for hash, size := range e.take() {
		if st, err := h.Blobs.Stat(hash); err == nil && st.State == blobs.Complete {
			continue
		}
		if _, err := bsvc.Fetch(ctx, p, hash, blobs.FetchOptions{Size: &size, MaxSize: size}); err != nil {
			errs = append(errs, fmt.Errorf("blob %s: %w", blobs.ID(hash).Short(), err))
			e.mu.Lock()
			e.pending[hash] = size
			e.mu.Unlock()
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("synced, but %d sealed values (blobs) did not come from %s; a later sync fetches them: %w", len(errs), p, errors.Join(errs...))
	}
	return nil
}

// fetchLive fetches the pending blobs from p as they arrive, until ctx
// ends; one that fails is asked for again with the next arrival.
// A blob the peer does not hold yet (a seed passes an entry on live before
// it has fetched the blob from its writer) is asked for again after a
// backoff too (1 s doubling to 30 s).
func (e *eagerBlobs) fetchLive(ctx context.Context, h *Home, bsvc *blobs.Service, p peer.ID) {
	var retry time.Duration
	for {
		var again <-chan time.Time
		if retry > 0 {
			again = time.After(retry)
		}
		select {
		case <-ctx.Done():
			return
		case <-e.arrived:
		case <-again:
		}
		if err := e.fetch(ctx, h, bsvc, p); err != nil {
			retry = min(max(2*retry, time.Second), 30*time.Second)
		} else {
			retry = 0
		}
	}
}
