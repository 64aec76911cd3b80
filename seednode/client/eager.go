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
// as the entry is stored (after a one-shot sync; as it arrives in a live
// one and while serving). Agent state depends on it: a document's snapshot
// is such a value, and the changes it covers are deleted. Larger values are
// fetched when read (get --out, blob get).
const EagerBlobMax = 4 << 20

// eagerBlobs collects the blob refs of the sealed values peers stored here
// in a session, and fetches them from those peers.
type eagerBlobs struct {
	h       *Home
	mu      sync.Mutex
	pending map[[32]byte]eagerBlob
	arrived chan struct{} // signalled when pending grows
}

type eagerBlob struct {
	size uint64
	from peer.ID
}

func newEagerBlobs(h *Home) *eagerBlobs {
	return &eagerBlobs{h: h, pending: map[[32]byte]eagerBlob{}, arrived: make(chan struct{}, 1)}
}

// stored is a vault service's stored hook: it notes the blob refs of the
// sealed values peer p stored in a private vault.
func (e *eagerBlobs) stored(p peer.ID, ns vault.NamespaceID, items []vault.Item) {
	var refs []vault.Item
	for _, it := range items {
		if vault.IsBlobRef(&it.Entry.Entry) && it.Entry.Size <= EagerBlobMax {
			refs = append(refs, it)
		}
	}
	if len(refs) == 0 || !e.h.IsPrivate(ns) { // IsPrivate reads the agent's files: only when needed
		return
	}
	e.mu.Lock()
	for _, it := range refs {
		e.pending[it.Entry.Hash] = eagerBlob{size: it.Entry.Size, from: p}
	}
	e.mu.Unlock()
	select {
	case e.arrived <- struct{}{}:
	default:
	}
}

// take empties the pending set.
func (e *eagerBlobs) take() map[[32]byte]eagerBlob {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.pending
	e.pending = map[[32]byte]eagerBlob{}
	return out
}

// fetch fetches the pending blobs this device does not hold, each from the
// peer whose entry named it. Those that fail stay pending.
func (e *eagerBlobs) fetch(ctx context.Context, bsvc *blobs.Service) error {
	var errs []error
	for hash, b := range e.take() {
		if st, err := e.h.Blobs.Stat(hash); err == nil && st.State == blobs.Complete {
			continue
		}
		size := b.size
		if _, err := bsvc.Fetch(ctx, b.from, hash, blobs.FetchOptions{Size: &size, MaxSize: size}); err != nil {
			errs = append(errs, fmt.Errorf("blob %s from %s: %w", blobs.ID(hash).Short(), b.from, err))
			e.mu.Lock()
			e.pending[hash] = b
			e.mu.Unlock()
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("synced, but %d sealed values (blobs) did not come; a later sync fetches them: %w", len(errs), errors.Join(errs...))
	}
	return nil
}

// fetchLive fetches the pending blobs as they arrive, until ctx ends. A
// blob the peer does not hold yet (a seed passes an entry on live before it
// has fetched the blob from its writer) is asked for again after a backoff
// too (1 s doubling to 30 s).
func (e *eagerBlobs) fetchLive(ctx context.Context, bsvc *blobs.Service) {
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
		if err := e.fetch(ctx, bsvc); err != nil {
			retry = min(max(2*retry, time.Second), 30*time.Second)
		} else {
			retry = 0
		}
	}
}
