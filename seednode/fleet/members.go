package fleet

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Members is a fleet as one pod knows it: every pod's peer ID and
// addresses by ordinal, its own ordinal, and the replicas kept per vault.
// The operator writes it into each pod's configuration and rewrites it when
// the fleet scales; the pods apply the new membership without a restart.
type Members struct {
	Pods     []peer.AddrInfo
	Self     int
	Replicas int
	// Leaving is how many pods at the end of Pods are leaving the fleet
	// (it scales down): still members, whose requests and questions the
	// others answer, but no subject's home any more, so they hand every
	// vault they hold to its home pods before they go.
	Leaving int
}

// Placed is the number of pods vaults are placed on: Pods without the
// leaving ones.
func (m Members) Placed() int {
	return max(len(m.Pods)-max(m.Leaving, 0), 0)
}

// Home returns the ordinals that hold key's vaults, best first.
func (m Members) Home(key string) []int {
	return Top(key, m.Placed(), m.Replicas)
}

// IsMember reports whether p is one of the fleet's pods, and its ordinal.
func (m Members) IsMember(p peer.ID) (int, bool) {
	for i, info := range m.Pods {
		if info.ID == p {
			return i, true
		}
	}
	return -1, false
}

// Peers returns the pods at ordinals.
func (m Members) Peers(ordinals []int) []peer.AddrInfo {
	out := make([]peer.AddrInfo, 0, len(ordinals))
	for _, o := range ordinals {
		if o >= 0 && o < len(m.Pods) {
			out = append(out, m.Pods[o])
		}
	}
	return out
}

// Version names what the pods place by: the pods' peer IDs in order, how
// many of them are leaving, and R (not the pods' addresses, nor Self).
// Pods that report the same version place every vault alike; the operator
// waits for every pod to report the version it wrote before a hand-off
// counts as done.
func (m Members) Version() string {
	h := sha256.New()
	_, _ = fmt.Fprintf(h, "seedfleet fleet members: replicas %d, leaving %d, pods %d\n", m.Replicas, m.Leaving, len(m.Pods))
	for _, p := range m.Pods {
		h.Write(binary.AppendUvarint(nil, uint64(len(p.ID))))
		h.Write([]byte(p.ID))
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// Check reports what makes m unusable as the membership of the pod with
// peer ID self: Self out of range or another pod's, R outside 1 to the
// number of pods, or as many pods leaving as there are.
func (m Members) Check(self peer.ID) error {
	switch {
	case len(m.Pods) == 0:
		return fmt.Errorf("no members")
	case m.Self < 0 || m.Self >= len(m.Pods):
		return fmt.Errorf("self (%d) is not among the %d members", m.Self, len(m.Pods))
	case m.Pods[m.Self].ID != self:
		return fmt.Errorf("member %d is %s, not this pod (%s): the membership is another pod's", m.Self, m.Pods[m.Self].ID, self)
	case m.Replicas < 1 || m.Replicas > len(m.Pods):
		return fmt.Errorf("replicas (%d) must be 1 to the number of members (%d)", m.Replicas, len(m.Pods))
	case m.Leaving < 0 || m.Leaving >= len(m.Pods):
		return fmt.Errorf("leaving (%d) must be 0 to one less than the number of members (%d)", m.Leaving, len(m.Pods))
	}
	seen := make(map[peer.ID]bool, len(m.Pods))
	for i, p := range m.Pods {
		if seen[p.ID] {
			return fmt.Errorf("member %d (%s) is listed twice", i, p.ID)
		}
		seen[p.ID] = true
	}
	return nil
}
