package fleet

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func vaultName(i int) string { return fmt.Sprintf("vault-%06d", i) }

// TestScoreIsStable pins the score: a change would move every vault of every
// fleet at the next upgrade.
func TestScoreIsStable(t *testing.T) {
	// Pinned values: sha256(domain ‖ vault ‖ 0 ‖ decimal ordinal), first 8 bytes.
	tests := []struct {
		vault   string
		ordinal int
		want    uint64
	}{
		{"", 0, referenceScore("", 0)},
		{"b5u2jy6r5a4x6ksmyc2bqj4n5m3kpp5u6vxxfq7jdhcapf6f2gsq", 0, 0xb0231cbcc0d1cb76},
		{"b5u2jy6r5a4x6ksmyc2bqj4n5m3kpp5u6vxxfq7jdhcapf6f2gsq", 7, 0xafbe317e2fec82ef},
	}
	for _, tt := range tests {
		if got := Score(tt.vault, tt.ordinal); got != tt.want {
			t.Errorf("Score(%q, %d) = %#x, want %#x", tt.vault, tt.ordinal, got, tt.want)
		}
	}
	long := strings.Repeat("x", 3*maxVaultLen)
	if Score(long, 3) != referenceScore(long, 3) {
		t.Error("a vault string longer than the stack buffer scores differently")
	}
}

func TestTopMatchesRank(t *testing.T) {
	for pods := 0; pods <= 12; pods++ {
		for i := range 200 {
			v := vaultName(i)
			rank := Rank(v, pods)
			if len(rank) != pods {
				t.Fatalf("Rank(%q, %d) has %d ordinals", v, pods, len(rank))
			}
			sorted := slices.Clone(rank)
			slices.Sort(sorted)
			for o := range pods {
				if sorted[o] != o {
					t.Fatalf("Rank(%q, %d) = %v is not a permutation", v, pods, rank)
				}
			}
			for r := 0; r <= pods+1; r++ {
				top := Top(v, pods, r)
				if want := rank[:min(r, pods)]; !slices.Equal(top, want) {
					t.Fatalf("Top(%q, %d, %d) = %v, want %v", v, pods, r, top, want)
				}
				for o := range pods {
					if got, want := Hosts(v, pods, r, o), slices.Contains(top, o); got != want {
						t.Fatalf("Hosts(%q, %d, %d, %d) = %v, want %v", v, pods, r, o, got, want)
					}
				}
			}
		}
	}
	if Top("v", 3, -1) == nil || len(Top("v", -3, 2)) != 0 || Hosts("v", 3, 1, 3) || Hosts("v", 3, 1, -1) {
		t.Fatal("out-of-range arguments are not handled")
	}
}

// TestScalingMovesOnlyReranked: growing a fleet by one pod moves a vault only
// onto the new pod, and about R/(N+1) of all replicas; shrinking moves only
// the vaults the removed pod held.
func TestScalingMovesOnlyReranked(t *testing.T) {
	const vaults, r = 20000, 3
	for _, pods := range []int{3, 4, 10} {
		moved := 0
		for i := range vaults {
			v := vaultName(i)
			before, after := Top(v, pods, r), Top(v, pods+1, r)
			for _, o := range after {
				if !slices.Contains(before, o) {
					if o != pods {
						t.Fatalf("%s moved onto old pod %d when pod %d joined", v, o, pods)
					}
					moved++
				}
			}
			// Shrinking back: the vault returns to where it was.
			if !slices.Equal(Top(v, pods, r), before) {
				t.Fatalf("%s does not return to %v", v, before)
			}
		}
		ideal := float64(vaults*r) / float64(pods+1)
		if ratio := float64(moved) / ideal; math.Abs(ratio-1) > 0.06 {
			t.Errorf("%d→%d pods: %d replicas moved, %.3f of the ideal %.0f", pods, pods+1, moved, ratio, ideal)
		}
	}
}

func referenceScore(vault string, ordinal int) uint64 {
	h := sha256.New()
	h.Write([]byte("seedfleet placement v1\x00"))
	h.Write([]byte(vault))
	h.Write([]byte{0})
	h.Write([]byte(strconv.Itoa(ordinal)))
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0]))
}
