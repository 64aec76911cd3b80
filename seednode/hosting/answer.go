package hosting

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/seedfleet/seedfleet/internal/wire"
	"github.com/seedfleet/seedfleet/seednode/ticket"
)

// Reason says why a request was refused; ReasonNone means it was answered.
type Reason uint8

const (
	ReasonNone          Reason = iota // accepted (host, release) or answered (status)
	ReasonMalformed                   // the request does not decode or its fields do not fit together
	ReasonUnauthorized                // bad signature, key not listed or revoked, clock skew
	ReasonReplay                      // this request was seen before
	ReasonClosed                      // the fleet admits no self-service requests
	ReasonInviteNeeded                // the fleet admits by invite and the request has none
	ReasonInviteInvalid               // the invite is not this fleet's, expired, or forged
	ReasonInviteUsed                  // the invite has no uses left
	ReasonQuota                       // the quota asked for is over the fleet's per-vault or per-agent limit
	ReasonTooManyVaults               // the agent would hold more vaults than the fleet allows
	ReasonRateLimited                 // too many requests from this address, or the fleet is admitting too fast
	ReasonFleetFull                   // the pods that would host the vaults have no room
	ReasonNotHosted                   // release or status of something the fleet does not hold
	ReasonUnavailable                 // the pods that hold the agent cannot be reached now
	reasonCount
)

var reasonNames = [...]string{
	ReasonNone: "None", ReasonMalformed: "Malformed", ReasonUnauthorized: "Unauthorized", ReasonReplay: "Replay",
	ReasonClosed: "Closed", ReasonInviteNeeded: "InviteNeeded", ReasonInviteInvalid: "InviteInvalid",
	ReasonInviteUsed: "InviteUsed", ReasonQuota: "Quota", ReasonTooManyVaults: "TooManyVaults",
	ReasonRateLimited: "RateLimited", ReasonFleetFull: "FleetFull", ReasonNotHosted: "NotHosted",
	ReasonUnavailable: "Unavailable",
}

func (r Reason) String() string {
	if r < reasonCount {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// Limits of an answer.
const (
	MaxMessageLen   = 1024
	MaxAnswerSeeds  = ticket.MaxPeers
	MaxAnswerVaults = 4096
	MaxAnswerSize   = 1 << 20
)

// Usage is how much of a quota is used.
type Usage struct {
	Limit, Used uint64
}

// VaultStatus is what the fleet holds for one vault.
type VaultStatus struct {
	Namespace [32]byte
	Bytes     Usage
	Entries   Usage
	Replicas  int       // replicas the fleet keeps
	Synced    int       // replicas that reported the same fingerprint at the last check
	LastSync  time.Time // the last sync with a device; zero if none yet
	ExpiresAt time.Time // when idle expiry will release the vault; zero if it will not
}

// Answer is a seed's reply to a request.
type Answer struct {
	Reason      Reason
	Message     string        // one line for the user: what happened and what to do
	RetryAfter  time.Duration // for RateLimited and Unavailable; second precision
	Seeds       []peer.AddrInfo
	Vaults      []VaultStatus
	AgentVaults Usage // vaults the agent holds on the fleet, and the fleet's limit
	AgentBytes  Usage // bytes the agent's vaults hold, and the fleet's limit
}

// OK reports whether the request was accepted or answered.
func (a *Answer) OK() bool { return a.Reason == ReasonNone }

// Err is nil for an accepted answer, otherwise an error carrying the reason
// and the seed's message.
func (a *Answer) Err() error {
	if a.OK() {
		return nil
	}
	return &RefusedError{Reason: a.Reason, Message: a.Message, RetryAfter: a.RetryAfter}
}

// RefusedError is a refusal as a device sees it.
type RefusedError struct {
	Reason     Reason
	Message    string
	RetryAfter time.Duration
}

func (e *RefusedError) Error() string {
	s := "fleet refused the request (" + e.Reason.String() + ")"
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

const answerVersion = 1

// Marshal encodes the answer. The message is cut to MaxMessageLen at a
// character boundary, and lists beyond their limits are cut.
func (a *Answer) Marshal() []byte {
	b := []byte{answerVersion, byte(a.Reason)}
	msg := wire.Truncate(a.Message, MaxMessageLen)
	b = wire.AppendLenBytes(b, msg)
	b = binary.AppendUvarint(b, uint64(max(a.RetryAfter, 0)/time.Second))
	seeds := a.Seeds[:min(len(a.Seeds), MaxAnswerSeeds)]
	b = binary.AppendUvarint(b, uint64(len(seeds)))
	for _, s := range seeds {
		b = wire.AppendLenBytes(b, s.ID)
		addrs := s.Addrs[:min(len(s.Addrs), ticket.MaxAddrsPerPeer)]
		b = binary.AppendUvarint(b, uint64(len(addrs)))
		for _, addr := range addrs {
			b = wire.AppendLenBytes(b, addr.Bytes())
		}
	}
	vaults := a.Vaults[:min(len(a.Vaults), MaxAnswerVaults)]
	b = binary.AppendUvarint(b, uint64(len(vaults)))
	for _, v := range vaults {
		b = append(b, v.Namespace[:]...)
		b = appendUsage(b, v.Bytes)
		b = appendUsage(b, v.Entries)
		b = binary.AppendUvarint(b, uint64(max(v.Replicas, 0)))
		b = binary.AppendUvarint(b, uint64(max(v.Synced, 0)))
		b = binary.AppendUvarint(b, micros(v.LastSync))
		b = binary.AppendUvarint(b, micros(v.ExpiresAt))
	}
	b = appendUsage(b, a.AgentVaults)
	return appendUsage(b, a.AgentBytes)
}

func appendUsage(b []byte, u Usage) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(b, u.Limit), u.Used)
}

// UnmarshalAnswer decodes an answer from a seed, which is as hostile as any
// peer: every length is bounded and the message is cleaned of control
// characters before anyone prints it.
func UnmarshalAnswer(p []byte) (*Answer, error) {
	if len(p) > MaxAnswerSize {
		return nil, fmt.Errorf("%w: answer of %d bytes, at most %d", ErrMalformed, len(p), MaxAnswerSize)
	}
	d := &wire.Decoder{B: p, Sentinel: ErrMalformed}
	if v := d.Byte("version"); d.Err == nil && v != answerVersion {
		return nil, fmt.Errorf("%w: answer version %d, this device reads %d", ErrMalformed, v, answerVersion)
	}
	a := &Answer{Reason: Reason(d.Byte("reason"))}
	if d.Err == nil && a.Reason >= reasonCount {
		return nil, fmt.Errorf("%w: unknown reason %d", ErrMalformed, a.Reason)
	}
	a.Message = wire.Sanitize(string(d.LenBytes("message", MaxMessageLen)))
	retry := d.Uvarint("retry after")
	a.RetryAfter = time.Duration(min(retry, uint64(math.MaxInt64/time.Second))) * time.Second
	a.Seeds = decodeSeeds(d)
	n := d.Uvarint("vault count")
	if n > MaxAnswerVaults {
		return nil, fmt.Errorf("%w: %d vaults in an answer, at most %d", ErrMalformed, n, MaxAnswerVaults)
	}
	for i := uint64(0); i < n && d.Err == nil; i++ {
		var v VaultStatus
		d.Fixed(v.Namespace[:], "vault namespace")
		v.Bytes, v.Entries = usage(d), usage(d)
		v.Replicas = smallInt(d, "replicas", ticket.MaxFleetReplicas)
		v.Synced = smallInt(d, "synced replicas", ticket.MaxFleetReplicas)
		v.LastSync, v.ExpiresAt = timeField(d, "last sync"), timeField(d, "expiry")
		a.Vaults = append(a.Vaults, v)
	}
	a.AgentVaults, a.AgentBytes = usage(d), usage(d)
	if err := d.Done("agent usage"); err != nil {
		return nil, err
	}
	return a, nil
}

func decodeSeeds(d *wire.Decoder) []peer.AddrInfo {
	n := d.Uvarint("seed count")
	if n > MaxAnswerSeeds {
		d.Err = fmt.Errorf("%w: %d seeds in an answer, at most %d", ErrMalformed, n, MaxAnswerSeeds)
		return nil
	}
	var seeds []peer.AddrInfo
	for i := uint64(0); i < n && d.Err == nil; i++ {
		id, err := peer.IDFromBytes(d.LenBytes("seed peer ID", ticket.MaxPeerIDLen))
		if d.Err == nil && err != nil {
			d.Err = fmt.Errorf("%w: seed %d: %v", ErrMalformed, i+1, err)
		}
		info := peer.AddrInfo{ID: id}
		m := d.Uvarint("address count")
		if m > ticket.MaxAddrsPerPeer {
			d.Err = fmt.Errorf("%w: seed %d has %d addresses, at most %d", ErrMalformed, i+1, m, ticket.MaxAddrsPerPeer)
		}
		for j := uint64(0); j < m && d.Err == nil; j++ {
			raw := d.LenBytes("seed address", ticket.MaxAddrLen)
			if d.Err != nil {
				break
			}
			if err := ticket.ValidAddr(raw); err != nil {
				d.Err = fmt.Errorf("%w: seed %d address %d: %v", ErrMalformed, i+1, j+1, err)
				break
			}
			addr, _ := ma.NewMultiaddrBytes(bytes.Clone(raw))
			info.Addrs = append(info.Addrs, addr)
		}
		seeds = append(seeds, info)
	}
	return seeds
}

func usage(d *wire.Decoder) Usage {
	return Usage{Limit: d.Uvarint("limit"), Used: d.Uvarint("used")}
}

func smallInt(d *wire.Decoder, what string, limit int) int {
	v := d.Uvarint(what)
	if v > uint64(limit) {
		d.Err = fmt.Errorf("%w: %s %d, at most %d", ErrMalformed, what, v, limit)
		return 0
	}
	return int(v)
}

func timeField(d *wire.Decoder, what string) time.Time {
	v := d.Uvarint(what)
	if v == 0 || v > math.MaxInt64 {
		if v != 0 {
			d.Fail(what)
		}
		return time.Time{}
	}
	return time.UnixMicro(int64(v)).UTC()
}
