/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strconv"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
)

// Placement by rendezvous (highest-random-weight) hashing: every pod
// ordinal gets a score per vault, and a vault lives on the pods with the
// highest scores. Adding pod k only moves the vaults for which k ranks among
// the top R, about R/(k+1) of them; removing a pod moves only its own.

// score is the rendezvous weight of pod ordinal for vault ns.
func score(ns string, ordinal int) uint64 {
	h := sha256.New()
	h.Write([]byte("seedfleet placement v1\x00"))
	h.Write([]byte(ns))
	h.Write([]byte{0})
	h.Write([]byte(strconv.Itoa(ordinal)))
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0]))
}

// Rank orders the pod ordinals 0..pods-1 as vault ns prefers them: without
// per-pod limits, a vault with R replicas lives on the first R. Tools and
// tests use it to tell where a vault will go before the operator places it.
func Rank(ns string, pods int) []int {
	type scored struct {
		ordinal int
		score   uint64
	}
	all := make([]scored, pods)
	for i := range all {
		all[i] = scored{i, score(ns, i)}
	}
	slices.SortFunc(all, func(a, b scored) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.ordinal, b.ordinal)
	})
	out := make([]int, pods)
	for i, s := range all {
		out[i] = s.ordinal
	}
	return out
}

// placement maps each vault (namespace ID) to the ordinals that should host it.
type placement map[string][]int

// place computes where each AgentVault of one SeedNode with pods pods should
// live. Vaults being deleted get no place. With maxPerPod > 0, pods that are
// full are skipped (vaults are placed oldest first, so an older vault never
// moves because a newer one arrived); a vault that finds fewer pods than it
// asks for gets what there is.
func place(vaults []seedv1.AgentVault, pods int, maxPerPod int) placement {
	out := make(placement, len(vaults))
	if pods <= 0 {
		return out
	}
	order := make([]*seedv1.AgentVault, 0, len(vaults))
	for i := range vaults {
		if vaults[i].DeletionTimestamp.IsZero() {
			order = append(order, &vaults[i])
		}
	}
	if maxPerPod > 0 {
		slices.SortFunc(order, func(a, b *seedv1.AgentVault) int {
			if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
				return c
			}
			return cmp.Compare(a.Name, b.Name)
		})
	}
	load := make([]int, pods)
	for _, av := range order {
		ns := av.Spec.NamespaceID
		if _, dup := out[ns]; dup {
			continue // two AgentVaults for one vault share its replicas
		}
		want := min(int(max(av.Spec.Replicas, 1)), pods)
		var chosen []int
		for _, o := range Rank(ns, pods) {
			if len(chosen) == want {
				break
			}
			if maxPerPod > 0 && load[o] >= maxPerPod {
				continue
			}
			chosen = append(chosen, o)
			load[o]++
		}
		slices.Sort(chosen)
		out[ns] = chosen
	}
	return out
}
