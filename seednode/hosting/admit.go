package hosting

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/ticket"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// VaultUsage is what the seed knows of a hosted vault's use, for answers and
// idle expiry.
type VaultUsage struct {
	Bytes, Entries uint64
	LastSync       time.Time // the last sync with a device; zero if none
	Synced         int       // replicas that agreed at the last check
	Replicas       int       // R: the replicas the fleet keeps of the vault now
}

// Admitter decides hosting requests at a subject's home pod: it checks the
// request, applies the fleet's policy and limits, and keeps the records.
// Requests reach it from the service, which has already placed the subject.
type Admitter struct {
	policy  Policy
	records *Records
	replay  *Replay
	usage   func(ns [32]byte) VaultUsage
	now     func() time.Time

	admissions *rate.Limiter // new subjects per second, per pod
	mu         sync.Mutex
	ranges     map[string]*rate.Limiter // requests per address range
}

// maxRanges bounds the address ranges whose request rate is tracked.
const maxRanges = 1 << 16

// NewAdmitter returns an Admitter for policy over records. usage reports a
// hosted vault's use (nil: nothing known); now is the clock (nil: time.Now).
func NewAdmitter(policy Policy, records *Records, usage func([32]byte) VaultUsage, now func() time.Time) (*Admitter, error) {
	policy = policy.WithDefaults()
	if err := policy.Validate(); err != nil {
		return nil, fmt.Errorf("hosting policy: %w", err)
	}
	if usage == nil {
		usage = func([32]byte) VaultUsage { return VaultUsage{} }
	}
	if now == nil {
		now = time.Now
	}
	// Every accepted request stays in the replay guard for twice the skew.
	window := (2*MaxClockSkew + time.Second).Seconds()
	capacity := int(window * (policy.AdmissionsPerSecond*4 + float64(policy.RequestsPerRangePerMinute)))
	return &Admitter{
		policy: policy, records: records, usage: usage, now: now,
		replay:     NewReplay(max(capacity, 1<<16)),
		admissions: rate.NewLimiter(rate.Limit(policy.AdmissionsPerSecond), max(int(2*policy.AdmissionsPerSecond), 1)),
		ranges:     make(map[string]*rate.Limiter),
	}, nil
}

// Policy is the policy in force, defaults filled in.
func (a *Admitter) Policy() Policy { return a.policy }

func refuse(reason Reason, format string, args ...any) *Answer {
	return &Answer{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Handle answers a decoded request that arrived from address range from
// (admission.Range of the device's address).
func (a *Admitter) Handle(req *Request, from string) *Answer { return a.handle(req, from, false) }

// handle answers a request; replicated is a request another home pod of the
// subject accepted and passed on, which no rate limit holds back.
func (a *Admitter) handle(req *Request, from string, replicated bool) *Answer {
	now := a.now()
	if !replicated {
		if ans := a.rateLimit(from, now); ans != nil {
			return ans
		}
	}
	rec, err := a.records.Get(req.Subject)
	if err != nil {
		return refuse(ReasonUnavailable, "this seed cannot read its hosting records (%v); try another seed of the fleet", err)
	}
	var held *identity.AgentDocument
	if rec != nil && len(rec.AgentDoc) != 0 {
		held, _ = identity.ParseAgentDocument(rec.AgentDoc) // verified when stored
	}
	// A replicated request comes from a home pod of the subject, an
	// authenticated fleet member, that checked its signature and the
	// signer's authority before accepting it: the signature is not checked
	// again (the agent document's authority still is, against the newest
	// document this pod holds). See doc.go, "Trust between pods".
	doc, err := req.verify(a.policy.Fleet, now, held, !replicated)
	if err != nil {
		return refuse(ReasonUnauthorized, "%v", err)
	}
	if rec != nil && !req.Time.After(rec.LastRequest) {
		return refuse(ReasonReplay, "a request at least as new was already accepted: sign a new request")
	}
	switch fresh, full := a.replay.Check(req, now); {
	case full:
		return &Answer{Reason: ReasonRateLimited, Message: "the fleet is admitting too many requests; try again in a minute", RetryAfter: time.Minute}
	case !fresh:
		return refuse(ReasonReplay, "this request was already received: sign a new request")
	}
	if rec != nil && rec.Released() {
		rec = nil // a tombstone: it only keeps older requests out
	}
	switch req.Op {
	case OpStatus:
		return a.status(req, rec, now)
	case OpRelease:
		return a.release(req, doc)
	default:
		return a.host(req, doc, replicated)
	}
}

// rateLimit refuses a range that sends too many requests.
func (a *Admitter) rateLimit(from string, now time.Time) *Answer {
	a.mu.Lock()
	defer a.mu.Unlock()
	l, ok := a.ranges[from]
	if !ok {
		if len(a.ranges) >= maxRanges {
			a.pruneRanges(now)
		}
		if len(a.ranges) >= maxRanges {
			return &Answer{Reason: ReasonRateLimited, Message: "the fleet is answering too many addresses at once; try again in a minute", RetryAfter: time.Minute}
		}
		per := float64(a.policy.RequestsPerRangePerMinute) / 60
		l = rate.NewLimiter(rate.Limit(per), max(a.policy.RequestsPerRangePerMinute/4, 1))
		a.ranges[from] = l
	}
	if r := l.ReserveN(now, 1); !r.OK() || r.DelayFrom(now) > 0 {
		delay := r.DelayFrom(now)
		r.CancelAt(now)
		return &Answer{Reason: ReasonRateLimited, Message: fmt.Sprintf("too many requests from %s; try again later", from),
			RetryAfter: max(delay.Round(time.Second), time.Second)}
	}
	return nil
}

// pruneRanges forgets ranges whose bucket has refilled: they lose nothing.
func (a *Admitter) pruneRanges(now time.Time) {
	for k, l := range a.ranges {
		if l.TokensAt(now) >= float64(l.Burst()) {
			delete(a.ranges, k)
		}
	}
}

// host admits the subject or changes its vaults' quotas.
func (a *Admitter) host(req *Request, doc *identity.AgentDocument, replicated bool) *Answer {
	now := a.now()
	var refusal *Answer
	rec, err := a.records.Update(req.Subject, a.policy.MaxVaultsPerPod, func(old *Record, b *Batch) (*Record, error) {
		next, ans := a.admit(req, old, b, now, replicated)
		if ans != nil {
			refusal = ans
			return nil, errRefused
		}
		if doc != nil {
			next.AgentDoc = docBytes(req, old, doc)
		}
		return next, nil
	})
	if refusal != nil {
		return refusal
	}
	if errors.Is(err, ErrPodFull) {
		return refuse(ReasonFleetFull, "the seeds that would hold these vaults are full (%d vaults); try another fleet, or ask its operators to add pods",
			a.records.Vaults())
	}
	if err != nil {
		return refuse(ReasonUnavailable, "this seed could not record the admission (%v); try again", err)
	}
	ans := a.statusOf(rec, now)
	ans.Message = fmt.Sprintf("the fleet hosts %d vault(s) for this %s", len(rec.Vaults), subjectWord(rec.Kind))
	return ans
}

var errRefused = errors.New("refused")

// docBytes keeps the newest signed agent document: the request's if Verify
// chose it, else the one held.
func docBytes(req *Request, old *Record, doc *identity.AgentDocument) []byte {
	if len(req.AgentDoc) != 0 {
		if sent, err := identity.ParseAgentDocument(req.AgentDoc); err == nil && sent.Version == doc.Version {
			return req.AgentDoc
		}
	}
	if old != nil {
		return old.AgentDoc
	}
	return nil
}

// admit applies the policy to a host request: the new record, or a refusal.
func (a *Admitter) admit(req *Request, old *Record, b *Batch, now time.Time, replicated bool) (*Record, *Answer) {
	p := a.policy
	next := &Record{Kind: req.Kind, Subject: req.Subject, Admitted: now}
	if old != nil && !old.Released() {
		c := *old
		c.Vaults = slices.Clone(old.Vaults)
		next = &c
	} else if ans := a.admitNew(req, next, b, now, replicated); ans != nil {
		return nil, ans
	}
	next.LastRequest = req.Time
	for _, ask := range req.Vaults {
		qb, qe := ask.QuotaBytes, ask.QuotaEntries
		if qb == 0 {
			qb = p.DefaultQuotaBytes
		}
		if qe == 0 {
			qe = p.DefaultQuotaEntries
		}
		if qb > p.MaxQuotaBytes || qe > p.MaxQuotaEntries {
			return nil, refuse(ReasonQuota, "vault %s asks for %d bytes and %d entries; this fleet allows at most %d bytes and %d entries per vault",
				vault.NamespaceID(ask.Namespace).Short(), qb, qe, p.MaxQuotaBytes, p.MaxQuotaEntries)
		}
		i := slices.IndexFunc(next.Vaults, func(v VaultRecord) bool { return v.Namespace == ask.Namespace })
		if i >= 0 {
			next.Vaults[i].QuotaBytes, next.Vaults[i].QuotaEntries = qb, qe
			continue
		}
		next.Vaults = append(next.Vaults, VaultRecord{Namespace: ask.Namespace, QuotaBytes: qb, QuotaEntries: qe, Admitted: now})
	}
	if len(next.Vaults) > p.MaxVaultsPerAgent {
		return nil, refuse(ReasonTooManyVaults, "this %s would hold %d vaults; this fleet allows %d: release some first (seedfleet host release)",
			subjectWord(req.Kind), len(next.Vaults), p.MaxVaultsPerAgent)
	}
	if total := next.QuotaBytes(); total > p.MaxAgentBytes {
		return nil, refuse(ReasonQuota, "the vaults' quotas add up to %d bytes; this fleet allows %d per %s: ask for less",
			total, p.MaxAgentBytes, subjectWord(req.Kind))
	}
	return next, nil
}

// admitNew applies what only a subject's first admission needs: the policy,
// an invite, the admission rate.
//
// An Open fleet with a key honours invites too: an invited subject is not
// held back by the fleet's admissions per second (a flood of fresh keys
// cannot starve the agents its operators invited), but by everything else:
// the invite's uses, the per-agent limits and the pod's vault limit.
func (a *Admitter) admitNew(req *Request, next *Record, b *Batch, now time.Time, replicated bool) *Answer {
	invited := false
	switch a.policy.Admission {
	case fleet.Closed:
		return refuse(ReasonClosed, "this fleet hosts only vaults its operators place; ask them, or use another fleet")
	case fleet.Invite:
		if req.Invite == "" {
			return refuse(ReasonInviteNeeded, "this fleet admits by invitation: ask its operators for an invite ticket and pass it with --invite")
		}
		fallthrough
	default:
		if req.Invite == "" || len(a.policy.FleetKey) != ed25519.PublicKeySize {
			break
		}
		if ans := a.useInvite(req, next, b, now, replicated); ans != nil {
			return ans
		}
		invited = true
	}
	if !replicated && !invited && !a.admissions.AllowN(now, 1) {
		return &Answer{Reason: ReasonRateLimited, Message: "the fleet is admitting new agents as fast as it may; try again shortly",
			RetryAfter: time.Duration(float64(time.Second)/a.policy.AdmissionsPerSecond*2).Round(time.Second) + time.Second}
	}
	return nil
}

// useInvite checks the request's invite and counts one use of it.
func (a *Admitter) useInvite(req *Request, next *Record, b *Batch, now time.Time, replicated bool) *Answer {
	inv, err := ticket.ParseInviteTicket(req.Invite)
	if err == nil && !replicated {
		err = inv.Verify(a.policy.Fleet, a.policy.FleetKey, now)
	}
	if err != nil {
		return refuse(ReasonInviteInvalid, "%v", err)
	}
	if err := b.UseInvite(inv.ID, inv.Uses); err != nil {
		if errors.Is(err, errInviteUsed) {
			return refuse(ReasonInviteUsed, "this invite was already used %d time(s), all it allows: ask for another", inv.Uses)
		}
		return refuse(ReasonUnavailable, "this seed cannot count the invite's uses (%v); try again", err)
	}
	next.Invite = inv.ID
	return nil
}

// release gives back the named vaults, or all of them.
func (a *Admitter) release(req *Request, _ *identity.AgentDocument) *Answer {
	now := a.now()
	var refusal *Answer
	rec, err := a.records.Update(req.Subject, 0, func(old *Record, _ *Batch) (*Record, error) {
		if old == nil || old.Released() {
			refusal = refuse(ReasonNotHosted, "the fleet holds nothing for this %s", subjectWord(req.Kind))
			return nil, errRefused
		}
		next := *old
		next.LastRequest = req.Time
		next.Vaults = slices.DeleteFunc(slices.Clone(old.Vaults), func(v VaultRecord) bool {
			return len(req.Vaults) == 0 || slices.ContainsFunc(req.Vaults, func(ask VaultAsk) bool { return ask.Namespace == v.Namespace })
		})
		if len(next.Vaults) == len(old.Vaults) {
			refusal = refuse(ReasonNotHosted, "the fleet hosts none of the named vaults for this %s (seedfleet host status lists them)", subjectWord(req.Kind))
			return nil, errRefused
		}
		return &next, nil // with no vaults left, a tombstone (Records)
	})
	if refusal != nil {
		return refusal
	}
	if err != nil {
		return refuse(ReasonUnavailable, "this seed could not record the release (%v); try again", err)
	}
	if rec.Released() {
		return &Answer{Message: "released every vault; the fleet holds nothing more for this " + subjectWord(req.Kind)}
	}
	ans := a.statusOf(rec, now)
	ans.Message = fmt.Sprintf("released; the fleet still hosts %d vault(s)", len(rec.Vaults))
	return ans
}

// status reports what the fleet holds for the subject.
func (a *Admitter) status(req *Request, rec *Record, now time.Time) *Answer {
	if rec == nil {
		return refuse(ReasonNotHosted, "the fleet holds nothing for this %s: ask it to with seedfleet host request", subjectWord(req.Kind))
	}
	ans := a.statusOf(rec, now)
	ans.Message = fmt.Sprintf("the fleet hosts %d vault(s)", len(rec.Vaults))
	return ans
}

// statusOf describes a record with the vaults' current use.
func (a *Admitter) statusOf(rec *Record, now time.Time) *Answer {
	ans := &Answer{
		AgentVaults: Usage{Limit: uint64(a.policy.MaxVaultsPerAgent), Used: uint64(len(rec.Vaults))},
		AgentBytes:  Usage{Limit: a.policy.MaxAgentBytes},
	}
	for _, v := range rec.Vaults {
		u := a.usage(v.Namespace)
		ans.AgentBytes.Used = addSat(ans.AgentBytes.Used, u.Bytes)
		ans.Vaults = append(ans.Vaults, VaultStatus{
			Namespace: v.Namespace,
			Bytes:     Usage{Limit: v.QuotaBytes, Used: u.Bytes},
			Entries:   Usage{Limit: v.QuotaEntries, Used: u.Entries},
			Replicas:  u.Replicas,
			Synced:    u.Synced,
			LastSync:  u.LastSync,
			ExpiresAt: a.expiresAt(v, u, now),
		})
	}
	return ans
}

// expiresAt is when idle expiry releases v, or zero if it will not: a vault
// idle for IdleExpiry gets NoticePeriod more, shown in status all along.
func (a *Admitter) expiresAt(v VaultRecord, u VaultUsage, now time.Time) time.Time {
	if a.policy.IdleExpiry == 0 {
		return time.Time{}
	}
	active := u.LastSync
	if active.Before(v.Admitted) {
		active = v.Admitted
	}
	if now.Sub(active) < a.policy.IdleExpiry {
		return time.Time{}
	}
	return active.Add(a.policy.IdleExpiry + a.policy.NoticePeriod())
}

// LastSyncElsewhere reports, for each of a subject's vaults named, the last
// device sync that the subject's other home pods saw (zero: none). An error
// means that could not be learned: nothing of the subject expires then.
type LastSyncElsewhere func(ctx context.Context, rec *Record, vaults [][32]byte) ([]time.Time, error)

// ExpireIdle releases every vault whose idle expiry has passed and returns
// them. The caller drops their data once no other claim holds them.
//
// A vault is idle only if it is idle at every home pod: devices may sync
// with any of them, so this pod's view (its own usage) is checked against
// what elsewhere reports for the vaults that look due here (nil elsewhere:
// a pod alone). Each home pod then decides for itself, so the release is
// not passed on: the record keeps its version (LastRequest), and a subject
// left with no vault keeps a tombstone dated by its Admitted time, so that
// the record exchange neither spreads it nor brings the record back.
func (a *Admitter) ExpireIdle(ctx context.Context, elsewhere LastSyncElsewhere) ([][32]byte, error) {
	if a.policy.IdleExpiry == 0 {
		return nil, nil
	}
	now := a.now()
	var due []*Record
	err := a.records.Each(func(rec *Record) bool {
		if len(a.dueVaults(rec, nil, now)) > 0 {
			due = append(due, rec)
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	var released [][32]byte
	var errs []error
	for _, rec := range due {
		seen, err := a.syncedElsewhere(ctx, rec, now, elsewhere)
		if err != nil {
			errs = append(errs, fmt.Errorf("agent %x: %w", rec.Subject[:6], err))
			continue
		}
		r, err := a.expire(rec.Subject, seen, now)
		released = append(released, r...)
		if err != nil {
			return released, err
		}
	}
	if len(errs) > 0 {
		return released, fmt.Errorf("idle expiry waits for %d subjects, whose use at the other home pods is unknown: %w", len(errs), errors.Join(errs...))
	}
	return released, nil
}

// dueVaults lists rec's vaults whose idle expiry has passed at now, by this
// pod's usage and the syncs seen elsewhere.
func (a *Admitter) dueVaults(rec *Record, seen map[[32]byte]time.Time, now time.Time) [][32]byte {
	var out [][32]byte
	for _, v := range rec.Vaults {
		u := a.usage(v.Namespace)
		if t := seen[v.Namespace]; t.After(u.LastSync) {
			u.LastSync = t
		}
		if at := a.expiresAt(v, u, now); !at.IsZero() && !now.Before(at) {
			out = append(out, v.Namespace)
		}
	}
	return out
}

// syncedElsewhere asks elsewhere about rec's vaults that are due here.
func (a *Admitter) syncedElsewhere(ctx context.Context, rec *Record, now time.Time, elsewhere LastSyncElsewhere) (map[[32]byte]time.Time, error) {
	if elsewhere == nil {
		return nil, nil
	}
	vaults := a.dueVaults(rec, nil, now)
	times, err := elsewhere(ctx, rec, vaults)
	if err != nil {
		return nil, err
	}
	if len(times) != len(vaults) {
		return nil, fmt.Errorf("%d sync times for %d vaults", len(times), len(vaults))
	}
	seen := make(map[[32]byte]time.Time, len(vaults))
	for i, ns := range vaults {
		seen[ns] = times[i]
	}
	return seen, nil
}

// expire releases the subject's vaults that are due, with the syncs seen
// elsewhere, and returns them.
func (a *Admitter) expire(subject ed25519.PublicKey, seen map[[32]byte]time.Time, now time.Time) ([][32]byte, error) {
	var released [][32]byte
	_, err := a.records.Update(subject, 0, func(old *Record, _ *Batch) (*Record, error) {
		released = released[:0]
		if old == nil {
			return nil, errUnchanged
		}
		due := a.dueVaults(old, seen, now)
		if len(due) == 0 {
			return nil, errUnchanged
		}
		next := *old
		next.Vaults = slices.DeleteFunc(slices.Clone(old.Vaults), func(v VaultRecord) bool {
			return slices.Contains(due, v.Namespace)
		})
		released = due
		if len(next.Vaults) == 0 {
			next.Admitted = now // the tombstone's lifetime starts now
		}
		return &next, nil
	})
	if errors.Is(err, errUnchanged) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return released, nil
}

func subjectWord(k SubjectKind) string {
	if k == SubjectVault {
		return "vault"
	}
	return "agent"
}
