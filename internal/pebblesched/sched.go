// Package pebblesched is the compaction scheduler of every Pebble store the
// seeds and devices open: it lets a store run as many compactions at once as
// the store asks for, as Pebble's own scheduler does, but it wakes up only
// when that can change.
//
// Decision: Pebble's default scheduler samples each store's allowance every
// 100 ms on a goroutine of its own, so an idle seed (a vault store and a blob
// store) woke 20 times a second and spent most of its idle CPU there: 108
// context switches a second against 14 without it, measured on an idle seed.
// Seeds of a public fleet sit idle most of the time, and devices run `serve`
// on batteries. This scheduler grants when a compaction ends, when a store
// asks, and when a store reports that its allowance grew (after a flush);
// a store refused for want of allowance is looked at again after
// retryAfter, the only timer it ever sets, and only while a compaction
// waits.
package pebblesched

import (
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// retryAfter is how long a compaction that was refused waits before its
// store is asked again, if no compaction ending or flush comes first.
const retryAfter = time.Second

// Scheduler is a pebble.CompactionScheduler for one store: give each
// pebble.Options a New one (Pebble registers a store with it once).
type Scheduler struct {
	db pebble.DBForCompaction

	mu           sync.Mutex
	granted      *sync.Cond // signalled when granting ends
	running      int        // compactions granted and not yet done
	allowed      int        // the store's allowance when last asked
	granting     bool       // a goroutine is calling into the store to grant
	unregistered bool
	retry        *time.Timer // set while a refused compaction waits
}

var _ pebble.CompactionScheduler = (*Scheduler)(nil)

// New returns a scheduler for one store.
func New() *Scheduler {
	s := &Scheduler{}
	s.granted = sync.NewCond(&s.mu)
	return s
}

// Register is called by the store once it opened.
func (s *Scheduler) Register(_ int, db pebble.DBForCompaction) { s.db = db }

// Unregister is called by the store as it closes: nothing is granted after
// it returns.
func (s *Scheduler) Unregister() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unregistered = true
	if s.retry != nil {
		s.retry.Stop()
		s.retry = nil
	}
	for s.granting {
		s.granted.Wait()
	}
}

// TrySchedule is called by the store, with its own lock held, when it wants
// to run a compaction.
func (s *Scheduler) TrySchedule() (bool, pebble.CompactionGrantHandle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unregistered {
		return false, nil
	}
	s.allowed = s.db.GetAllowedWithoutPermission()
	if s.allowed > s.running {
		s.running++
		return true, s
	}
	// The store now waits to be granted: a compaction ending grants it,
	// and so does the retry, in case none is running to end.
	if s.retry == nil {
		s.retry = time.AfterFunc(retryAfter, s.retryGrant)
	}
	return false, nil
}

// UpdateGetAllowedWithoutPermission is called by the store, possibly with
// its own lock held, when its allowance may have grown (after a flush).
// Granting calls into the store, so it happens on a goroutine of its own.
func (s *Scheduler) UpdateGetAllowedWithoutPermission() {
	s.mu.Lock()
	allowed := s.db.GetAllowedWithoutPermission()
	grew := allowed > s.allowed
	s.allowed = allowed
	s.mu.Unlock()
	if grew {
		go s.grant()
	}
}

func (s *Scheduler) retryGrant() {
	s.mu.Lock()
	s.retry = nil
	s.grantLockedAndUnlock()
}

func (s *Scheduler) grant() {
	s.mu.Lock()
	s.grantLockedAndUnlock()
}

// grantLockedAndUnlock grants the store what its allowance leaves room for,
// while it has compactions waiting. Called with s.mu held and without the
// store's lock; it unlocks s.mu.
func (s *Scheduler) grantLockedAndUnlock() {
	defer s.mu.Unlock()
	for s.granting && !s.unregistered {
		s.granted.Wait()
	}
	if s.unregistered {
		return
	}
	s.allowed = s.db.GetAllowedWithoutPermission()
	room := s.allowed - s.running
	if room <= 0 {
		return
	}
	s.granting = true
	s.mu.Unlock()
	for ; room > 0; room-- {
		// Asked only when a grant is possible, so the store picks no
		// compaction in vain.
		if waiting, _ := s.db.GetWaitingCompaction(); !waiting || !s.db.Schedule(s) {
			break
		}
		s.mu.Lock()
		s.running++
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.granting = false
	s.granted.Broadcast()
}

// Started, MeasureCPU and CumulativeStats are the grant handle's reports,
// which this scheduler does not use.
func (s *Scheduler) Started()                                          {}
func (s *Scheduler) MeasureCPU(pebble.CompactionGoroutineKind)         {}
func (s *Scheduler) CumulativeStats(pebble.CompactionGrantHandleStats) {}

// Done is called by the store, without its lock, when a granted compaction
// ends: what it held is granted to a waiting one.
func (s *Scheduler) Done() {
	s.mu.Lock()
	s.running--
	s.grantLockedAndUnlock()
}
