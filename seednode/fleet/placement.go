package fleet

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
)

// Placement by rendezvous (highest-random-weight) hashing: every pod ordinal
// gets a score per vault, and a vault lives on the pods with the highest
// scores. Adding pod k moves only the vaults for which k ranks among the top
// R, about R/(k+1) of them; removing a pod moves only its own. The score
// depends on nothing but the vault and the ordinal, so any pod (and the
// operator) computes the same answer from the fleet's size alone.
//
// The score's input is fixed: changing it would move every vault of every
// fleet at the next upgrade.
const scoreDomain = "seedfleet placement v1\x00"

// maxVaultLen bounds the vault string Score hashes without allocating; longer
// ones (never a namespace ID) take the slow path.
const maxVaultLen = 128

// Score is the rendezvous weight of pod ordinal for vault (the namespace ID's
// text form, as in vault.NamespaceID.String and AgentVault's spec).
func Score(vault string, ordinal int) uint64 {
	var buf [len(scoreDomain) + maxVaultLen + 1 + 20]byte
	b := append(buf[:0], scoreDomain...)
	if len(vault) > maxVaultLen {
		b = append(make([]byte, 0, len(scoreDomain)+len(vault)+21), scoreDomain...)
	}
	b = append(b, vault...)
	b = append(b, 0)
	b = strconv.AppendInt(b, int64(ordinal), 10)
	sum := sha256.Sum256(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// before reports whether ordinal a with score sa ranks before ordinal b with
// score sb: the higher score first, the lower ordinal on a tie.
func before(sa uint64, a int, sb uint64, b int) bool {
	if sa != sb {
		return sa > sb
	}
	return a < b
}

// Rank orders the ordinals 0..pods-1 as vault prefers them: without per-pod
// limits, a vault with R replicas lives on the first R.
func Rank(vault string, pods int) []int {
	return Top(vault, pods, pods)
}

// Top returns the first r ordinals of Rank(vault, pods), best first, without
// sorting the rest: what a pod computes per request, in O(pods·r).
func Top(vault string, pods, r int) []int {
	r = min(max(r, 0), max(pods, 0))
	ords := make([]int, 0, r)
	if r == 0 {
		return ords
	}
	scores := make([]uint64, 0, r)
	for o := range pods {
		s := Score(vault, o)
		if len(ords) == r && !before(s, o, scores[r-1], ords[r-1]) {
			continue
		}
		// Insert at its rank, dropping the last when full.
		i := len(ords)
		for i > 0 && before(s, o, scores[i-1], ords[i-1]) {
			i--
		}
		if len(ords) < r {
			ords, scores = append(ords, 0), append(scores, 0)
		}
		copy(ords[i+1:], ords[i:len(ords)-1])
		copy(scores[i+1:], scores[i:len(scores)-1])
		ords[i], scores[i] = o, s
	}
	return ords
}

// Hosts reports whether ordinal is among vault's r replicas in a fleet of
// pods.
func Hosts(vault string, pods, r, ordinal int) bool {
	if ordinal < 0 || ordinal >= pods {
		return false
	}
	mine := Score(vault, ordinal)
	better := 0
	for o := range pods {
		if o != ordinal && before(Score(vault, o), o, mine, ordinal) {
			if better++; better >= r {
				return false
			}
		}
	}
	return better < r
}
