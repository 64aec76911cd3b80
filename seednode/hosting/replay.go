package hosting

import (
	"container/heap"
	"crypto/sha256"
	"sync"
	"time"
)

// Replay remembers the requests a seed accepted within the clock-skew window,
// so each (subject, nonce) is accepted once. A request older than the window
// is refused by Verify, so nothing needs remembering longer. It holds at most
// capacity requests: when full it refuses new ones (ErrReplayFull) rather
// than forget one that could then be replayed.
type Replay struct {
	mu       sync.Mutex
	capacity int
	seen     map[[16]byte]struct{}
	expiry   expiryHeap
}

// NewReplay returns a guard for capacity requests; size it as the most
// requests a seed accepts per second times twice MaxClockSkew.
func NewReplay(capacity int) *Replay {
	return &Replay{capacity: max(capacity, 1), seen: make(map[[16]byte]struct{})}
}

// replayKey names a request by its subject and nonce.
func replayKey(r *Request) [16]byte {
	h := sha256.New()
	h.Write(r.Subject)
	h.Write(r.Nonce[:])
	var sum [sha256.Size]byte
	return [16]byte(h.Sum(sum[:0]))
}

// Check records r as seen at now and reports whether it is new: false for a
// replay. A full guard reports false too, with full set, so the caller can
// tell the device to retry later instead of calling it a replay.
func (g *Replay) Check(r *Request, now time.Time) (fresh, full bool) {
	k := replayKey(r)
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(g.expiry) > 0 && !g.expiry[0].at.After(now) {
		delete(g.seen, heap.Pop(&g.expiry).(expiring).key)
	}
	if _, ok := g.seen[k]; ok {
		return false, false
	}
	if len(g.seen) >= g.capacity {
		return false, true
	}
	g.seen[k] = struct{}{}
	// Verify accepts a request until MaxClockSkew after its time; keep it a
	// second longer so the boundary is covered.
	heap.Push(&g.expiry, expiring{key: k, at: r.Time.Add(MaxClockSkew + time.Second)})
	return true, false
}

// Len is how many requests the guard holds.
func (g *Replay) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.seen)
}

type expiring struct {
	key [16]byte
	at  time.Time
}

type expiryHeap []expiring

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiring)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
