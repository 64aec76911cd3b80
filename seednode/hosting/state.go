package hosting

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/internal/wire"
)

// VaultState is what a pod reports of one vault to another pod of the
// fleet: whether it hosts it, the fingerprint of its entries and how many
// of the blobs they refer to it lacks. A pod handing a vault over drops its
// own replica only once every successor reports its fingerprint and no
// missing blobs. LastSync, the last sync with a device the pod saw (zero if
// none; a restart counts as one), travels only when asked for (LastSyncs):
// idle expiry needs every home pod to have seen the vault idle.
type VaultState struct {
	Hosted       bool
	Fingerprint  [32]byte
	MissingBlobs uint64
	LastSync     time.Time
}

// stateWithSync, in a state question's optional trailing flags byte, asks
// for each vault's LastSync too. (A question without flags is the original
// one: pods that predate the flag refuse a question with it, and idle
// expiry then waits.)
const stateWithSync = 1

// MaxStateVaults bounds the vaults one state question names.
const MaxStateVaults = 4096

// answerState answers a state question: uvarint count, then that many
// namespaces, then optionally a flags byte; the answer holds, per vault, a
// hosted byte, the fingerprint, a uvarint of missing blobs and, if the
// flags ask for it, a uvarint of the last device sync in Unix seconds (0:
// none).
func (s *Service) answerState(body []byte) ([]byte, error) {
	d := &wire.Decoder{B: body, Sentinel: ErrMalformed}
	n := d.Uvarint("vault count")
	if d.Err == nil && n > MaxStateVaults {
		return nil, fmt.Errorf("%w: %d vaults, at most %d", ErrMalformed, n, MaxStateVaults)
	}
	nss := make([][32]byte, 0, n)
	for i := uint64(0); i < n && d.Err == nil; i++ {
		var ns [32]byte
		d.Fixed(ns[:], "namespace")
		nss = append(nss, ns)
	}
	var flags byte
	if d.Err == nil && len(d.B) > 0 {
		if flags = d.Byte("flags"); flags&^stateWithSync != 0 {
			d.Fail("flags")
		}
	}
	if err := d.Done("state question"); err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(nss)*(40+5*int(flags)))
	for _, ns := range nss {
		st := s.cfg.state(ns)
		h := byte(0)
		if st.Hosted {
			h = 1
		}
		out = append(out, h)
		out = append(out, st.Fingerprint[:]...)
		out = binary.AppendUvarint(out, st.MissingBlobs)
		if flags&stateWithSync != 0 {
			out = binary.AppendUvarint(out, unixOrZero(st.LastSync))
		}
	}
	return out, nil
}

func unixOrZero(t time.Time) uint64 {
	if t.IsZero() || t.Unix() <= 0 {
		return 0
	}
	return uint64(t.Unix())
}

// VaultStates asks pod p of the fleet for the state of vaults there, in
// the order named (at most MaxStateVaults), without LastSync.
func (s *Service) VaultStates(ctx context.Context, p peer.AddrInfo, vaults [][32]byte) ([]VaultState, error) {
	return s.askStates(ctx, p, vaults, 0)
}

// LastSyncs asks pod p of the fleet when a device last synced each of
// vaults there (zero: none since it started), in the order named.
func (s *Service) LastSyncs(ctx context.Context, p peer.AddrInfo, vaults [][32]byte) ([]time.Time, error) {
	sts, err := s.askStates(ctx, p, vaults, stateWithSync)
	if err != nil {
		return nil, err
	}
	out := make([]time.Time, len(sts))
	for i, st := range sts {
		out[i] = st.LastSync
	}
	return out, nil
}

func (s *Service) askStates(ctx context.Context, p peer.AddrInfo, vaults [][32]byte, flags byte) ([]VaultState, error) {
	if len(vaults) > MaxStateVaults {
		return nil, fmt.Errorf("hosting: %d vaults in one state question, at most %d", len(vaults), MaxStateVaults)
	}
	msg := binary.AppendUvarint([]byte{kindState}, uint64(len(vaults)))
	for _, ns := range vaults {
		msg = append(msg, ns[:]...)
	}
	per := 1 + 32 + binary.MaxVarintLen64
	if flags != 0 {
		msg = append(msg, flags)
		per += binary.MaxVarintLen64
	}
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	if len(p.Addrs) > 0 {
		s.host.Peerstore().AddAddrs(p.ID, p.Addrs, time.Hour)
	}
	frame, err := roundTrip(ctx, s.host, p.ID, msg, len(vaults)*per+1)
	if err != nil {
		return nil, err
	}
	return decodeStates(frame, len(vaults), flags&stateWithSync != 0)
}

// maxUnix bounds a reported sync time: year 9999, as far as time.Time
// formats.
const maxUnix = 253402300799

// decodeStates reads n vault states (with LastSync if withSync); frame is
// hostile.
func decodeStates(frame []byte, n int, withSync bool) ([]VaultState, error) {
	d := &wire.Decoder{B: frame, Sentinel: ErrMalformed}
	out := make([]VaultState, 0, n)
	for i := 0; i < n && d.Err == nil; i++ {
		var st VaultState
		switch h := d.Byte("hosted"); {
		case d.Err != nil:
		case h > 1:
			d.Fail("hosted flag")
		default:
			st.Hosted = h == 1
		}
		d.Fixed(st.Fingerprint[:], "fingerprint")
		st.MissingBlobs = d.Uvarint("missing blobs")
		if withSync {
			switch sec := d.Uvarint("last sync"); {
			case d.Err != nil || sec == 0:
			case sec > maxUnix:
				d.Fail("last sync")
			default:
				st.LastSync = time.Unix(int64(sec), 0)
			}
		}
		out = append(out, st)
	}
	if err := d.Done("vault states"); err != nil {
		return nil, fmt.Errorf("a pod's vault states: %w", err)
	}
	return out, nil
}

// LastSyncElsewhere asks rec's subject's other home pods when a device last
// synced each of vaults there and returns the latest per vault; it is the
// Admitter's view of the fleet for idle expiry. A home pod that does not
// answer is an error: a vault is never taken for idle on a guess.
func (s *Service) LastSyncElsewhere(ctx context.Context, rec *Record, vaults [][32]byte) ([]time.Time, error) {
	m := s.cfg.members()
	out := make([]time.Time, len(vaults))
	for _, o := range m.Home(PlacementKey(rec.Kind, rec.Subject)) {
		if o == m.Self {
			continue
		}
		for start := 0; start < len(vaults); start += MaxStateVaults {
			chunk := vaults[start:min(len(vaults), start+MaxStateVaults)]
			times, err := s.LastSyncs(ctx, m.Pods[o], chunk)
			if err != nil {
				return nil, fmt.Errorf("home pod %d (%s): %w", o, m.Pods[o].ID, err)
			}
			for i, t := range times {
				if t.After(out[start+i]) {
					out[start+i] = t
				}
			}
		}
	}
	return out, nil
}
