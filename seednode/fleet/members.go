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
}

// Home returns the ordinals that hold key's vaults, best first.
func (m Members) Home(key string) []int {
	return Top(key, len(m.Pods), m.Replicas)
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
