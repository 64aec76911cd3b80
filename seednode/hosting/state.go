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
// missing blobs.
type VaultState struct {
	Hosted       bool
	Fingerprint  [32]byte
	MissingBlobs uint64
}

// MaxStateVaults bounds the vaults one state question names.
const MaxStateVaults = 4096

// answerState answers a state question: uvarint count, then that many
// namespaces; the answer holds, per vault, a hosted byte, the fingerprint and
// a uvarint of missing blobs.
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
	if err := d.Done("state question"); err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(nss)*40)
	for _, ns := range nss {
		st := s.cfg.state(ns)
		h := byte(0)
		if st.Hosted {
			h = 1
		}
		out = append(out, h)
		out = append(out, st.Fingerprint[:]...)
		out = binary.AppendUvarint(out, st.MissingBlobs)
	}
	return out, nil
}

// VaultStates asks pod p of the fleet for the state of vaults there, in
// the order named (at most MaxStateVaults).
func (s *Service) VaultStates(ctx context.Context, p peer.AddrInfo, vaults [][32]byte) ([]VaultState, error) {
	if len(vaults) > MaxStateVaults {
		return nil, fmt.Errorf("hosting: %d vaults in one state question, at most %d", len(vaults), MaxStateVaults)
	}
	msg := binary.AppendUvarint([]byte{kindState}, uint64(len(vaults)))
	for _, ns := range vaults {
		msg = append(msg, ns[:]...)
	}
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	if len(p.Addrs) > 0 {
		s.host.Peerstore().AddAddrs(p.ID, p.Addrs, time.Hour)
	}
	frame, err := roundTrip(ctx, s.host, p.ID, msg, len(vaults)*(1+32+binary.MaxVarintLen64)+1)
	if err != nil {
		return nil, err
	}
	return decodeStates(frame, len(vaults))
}

// decodeStates reads n vault states; frame is hostile.
func decodeStates(frame []byte, n int) ([]VaultState, error) {
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
		out = append(out, st)
	}
	if err := d.Done("vault states"); err != nil {
		return nil, fmt.Errorf("a pod's vault states: %w", err)
	}
	return out, nil
}
