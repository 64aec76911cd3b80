/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"cmp"
	"slices"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/seednode/fleet"
)

// Placement is the fleet's rendezvous hashing (seednode/fleet), the same
// function pods use for self-service vaults; here it also skips full pods.

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
		spec := av.Spec // defaulted as the API server would (a fake client's objects are not)
		spec.Default()
		want := min(int(spec.Replicas), pods)
		var chosen []int
		for _, o := range fleet.Rank(ns, pods) {
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
