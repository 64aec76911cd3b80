package rendezvous

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/internal/wire"
)

// Register stores rec on seed. rec must be h's own record (signed by the
// key of h's peer ID): seeds refuse records of other devices. The seed must
// be connectable (connected, or its addresses in h's peerstore). A seed's
// refusal is returned as an error wrapping *RefusedError.
func Register(ctx context.Context, h host.Host, seed peer.ID, rec Record) error {
	_, err := RegisterDetailed(ctx, h, seed, rec)
	return err
}

// Registration is a seed's acceptance of a record.
type Registration struct {
	// TTL is how long the seed keeps records after their timestamp.
	TTL time.Duration
	// Expires is when the seed drops this record: its timestamp plus TTL.
	Expires time.Time
}

// RenewAt is when a device registers again: halfway to expiry, so one
// lost registration does not make it unreachable.
func (r Registration) RenewAt(rec Record) time.Time {
	return rec.Time().Add(r.TTL / 2)
}

// RegisterDetailed is Register that also reports how long the seed keeps
// the record.
func RegisterDetailed(ctx context.Context, h host.Host, seed peer.ID, rec Record) (Registration, error) {
	if err := rec.Verify(); err != nil {
		return Registration{}, fmt.Errorf("rendezvous: register: %w", err)
	}
	q := request{kind: reqRegister, record: rec}
	resp, err := roundTrip(ctx, h, seed, reqRegister, q.append(nil))
	if err != nil {
		return Registration{}, fmt.Errorf("rendezvous: register on %s: %w", seed, err)
	}
	if resp.refused != nil {
		return Registration{}, fmt.Errorf("rendezvous: register on %s: %w", seed, resp.refused)
	}
	return Registration{TTL: resp.ttl, Expires: rec.Time().Add(resp.ttl)}, nil
}

// LookupResult is the outcome of a lookup.
type LookupResult struct {
	// Records are the verified records of the agent, at most one per
	// device (the newest), newest first.
	Records []Record
	// Dropped counts records the seed returned that were not kept: not
	// decodable, a bad signature, another agent's, older than any seed
	// may hold them (MaxTTL), or an older duplicate of a device.
	Dropped int
	// DropReason is why the first dropped record was dropped.
	DropReason string
}

// Lookup asks seed for the records of agentDID's devices. Every record is
// verified here (signature, agent); records that fail are dropped, not
// reported as an error (LookupDetailed counts them). A seed's refusal is
// returned as an error wrapping *RefusedError.
func Lookup(ctx context.Context, h host.Host, seed peer.ID, agentDID string) ([]Record, error) {
	res, err := LookupDetailed(ctx, h, seed, agentDID)
	return res.Records, err
}

// LookupDetailed is Lookup that also reports the records it dropped.
func LookupDetailed(ctx context.Context, h host.Host, seed peer.ID, agentDID string) (LookupResult, error) {
	if err := CheckAgentDID(agentDID); err != nil {
		return LookupResult{}, fmt.Errorf("rendezvous: lookup: %w", err)
	}
	q := request{kind: reqLookup, agentDID: agentDID}
	resp, err := roundTrip(ctx, h, seed, reqLookup, q.append(nil))
	if err != nil {
		return LookupResult{}, fmt.Errorf("rendezvous: lookup on %s: %w", seed, err)
	}
	if resp.refused != nil {
		return LookupResult{}, fmt.Errorf("rendezvous: lookup on %s: %w", seed, resp.refused)
	}
	return verifyLookup(resp.records, agentDID, time.Now()), nil
}

// verifyLookup keeps the records a seed may honestly have returned for
// agentDID at time now.
func verifyLookup(raw [][]byte, agentDID string, now time.Time) LookupResult {
	var res LookupResult
	drop := func(format string, args ...any) {
		if res.Dropped == 0 {
			res.DropReason = wire.Sanitize(fmt.Sprintf(format, args...))
		}
		res.Dropped++
	}
	nowUS := micros(now)
	newest := map[string]int{} // device key -> index in res.Records
	for i, b := range raw {
		rec, err := DecodeRecord(b)
		if err != nil {
			drop("record %d: %v", i+1, err)
			continue
		}
		if err := rec.Verify(); err != nil {
			drop("record %d: %v", i+1, err)
			continue
		}
		if rec.AgentDID != agentDID {
			drop("record %d is of agent %s, not %s", i+1, rec.AgentDID, agentDID)
			continue
		}
		if satAdd(rec.Timestamp, uint64(MaxTTL.Microseconds())) <= nowUS {
			drop("record %d is dated %s, older than any seed may keep it (%s)", i+1, rec.Time().UTC().Format(time.RFC3339), MaxTTL)
			continue
		}
		key := string(rec.Device)
		if j, ok := newest[key]; ok {
			if res.Records[j].Timestamp >= rec.Timestamp {
				drop("record %d is an older duplicate of device %s", i+1, shortKey(rec.Device))
				continue
			}
			drop("record %d of device %s is an older duplicate", j+1, shortKey(rec.Device))
			res.Records[j] = rec
			continue
		}
		newest[key] = len(res.Records)
		res.Records = append(res.Records, rec)
	}
	sortNewestFirst(res.Records)
	return res
}

func sortNewestFirst(recs []Record) {
	slices.SortStableFunc(recs, func(a, b Record) int { return cmp.Compare(b.Timestamp, a.Timestamp) })
}

// roundTrip sends one request on a new stream and reads the response.
func roundTrip(ctx context.Context, h host.Host, seed peer.ID, kind byte, msg []byte) (resp response, err error) {
	if len(msg) > MaxRequestSize {
		return response{}, fmt.Errorf("request of %d bytes exceeds the %d-byte limit", len(msg), MaxRequestSize)
	}
	ctx, cancel := context.WithTimeout(ctx, StreamTimeout)
	defer cancel()
	defer func() {
		if err == nil {
			return
		}
		// The stream's deadline is the context's: it may fire a moment
		// before the context reports it.
		cerr := ctx.Err()
		if dl, ok := ctx.Deadline(); cerr == nil && ok && !time.Now().Before(dl) {
			cerr = context.DeadlineExceeded
		}
		if cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w (%v)", cerr, err)
		}
	}()
	st, err := h.NewStream(ctx, seed, ProtocolID)
	if err != nil {
		return response{}, fmt.Errorf("open stream: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = st.Reset() })
	defer stop()
	done := false
	defer func() {
		if !done {
			_ = st.Reset()
		}
	}()
	if err := st.Scope().SetService(ServiceName); err != nil {
		return response{}, fmt.Errorf("resource manager: %w", err)
	}
	if err := st.Scope().ReserveMemory(readBufSize, network.ReservationPriorityMedium); err != nil {
		return response{}, fmt.Errorf("resource manager refused %d bytes: %w", readBufSize, err)
	}
	defer st.Scope().ReleaseMemory(readBufSize)
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	if err := wire.WriteFrame(st, msg); err != nil {
		return response{}, fmt.Errorf("send request: %w", err)
	}
	if err := st.CloseWrite(); err != nil {
		return response{}, fmt.Errorf("send request: %w", err)
	}
	br := bufio.NewReaderSize(st, readBufSize)
	l, err := wire.ReadLength(br, MaxResponseSize, ErrProtocol)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // a request is always answered
	}
	if err != nil {
		return response{}, fmt.Errorf("read response: %w", err)
	}
	if err := st.Scope().ReserveMemory(l, network.ReservationPriorityMedium); err != nil {
		return response{}, fmt.Errorf("resource manager refused %d bytes for the response: %w", l, err)
	}
	defer st.Scope().ReleaseMemory(l)
	body, err := wire.ReadBody(br, nil, l)
	if err != nil {
		return response{}, err
	}
	resp, err = decodeResponse(body, kind)
	if err != nil {
		return response{}, err
	}
	done = true
	_ = st.Close()
	return resp, nil
}
