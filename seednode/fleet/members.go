package fleet

import (
	"github.com/libp2p/go-libp2p/core/peer"
)

// Members is a fleet as one pod knows it: every pod's peer ID and
// addresses by ordinal, its own ordinal, and the replicas kept per vault.
// The operator writes it into each pod's configuration and rewrites it when
// the fleet scales.
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
