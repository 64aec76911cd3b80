/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strings"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/seednode/admin"
)

// vaultHosting is where one vault lives now: the pods placement wants, and
// the pods that still hold a replica placement no longer wants. A leaving
// replica is kept (and keeps syncing with the others) until every wanted
// replica has caught up; only then is it dropped.
type vaultHosting struct {
	Desired []int
	Leaving []int
	// Synced is true when every desired replica is readable, hosts the
	// vault, holds every blob, and all holders agree on the fingerprint.
	Synced bool
	// Options are the vault's own quota and relay access.
	Options admin.VaultOptions
}

// members are the pods that must host the vault now.
func (h *vaultHosting) members() []int {
	out := slices.Concat(h.Desired, h.Leaving)
	slices.Sort(out)
	return out
}

// hostingPlan is vaultHosting per namespace ID.
type hostingPlan map[string]*vaultHosting

// planHosting decides, per vault, which pods host it now. published is what
// each pod was last told (its per-pod ConfigMap); fleet is what each pod
// reports. A pod holds a vault if it reports so or, when it cannot be read,
// if it was told so. Vaults missing from desired (their AgentVault is gone or
// being deleted) are dropped at once: there is no successor to wait for.
func planHosting(desired placement, published map[int]map[string]bool, fleet *fleetView) hostingPlan {
	plan := make(hostingPlan, len(desired))
	holders := map[string][]int{}
	seen := map[int]bool{}
	addHolder := func(ns string, o int) {
		if !slices.Contains(holders[ns], o) {
			holders[ns] = append(holders[ns], o)
		}
	}
	if fleet != nil {
		for o, p := range fleet.Pods {
			if p.Hosted == nil {
				continue
			}
			seen[o] = true
			for _, ns := range p.Hosted.Vaults {
				addHolder(ns, o)
			}
		}
	}
	for o, set := range published {
		if seen[o] {
			continue
		}
		for ns := range set {
			addHolder(ns, o)
		}
	}
	for ns, want := range desired {
		h := &vaultHosting{Desired: slices.Clone(want)}
		for _, o := range holders[ns] {
			if !slices.Contains(want, o) {
				h.Leaving = append(h.Leaving, o)
			}
		}
		slices.Sort(h.Leaving)
		h.Synced = replicasSynced(ns, h, fleet)
		if h.Synced {
			h.Leaving = nil
		}
		plan[ns] = h
	}
	return plan
}

// replicasSynced reports whether every desired replica of ns has caught up
// with every other holder.
func replicasSynced(ns string, h *vaultHosting, fleet *fleetView) bool {
	if fleet == nil {
		return len(h.Leaving) == 0 && len(h.Desired) == 0
	}
	fingerprint := ""
	for i, o := range h.members() {
		p := fleet.Pods[o]
		v := p.vault(ns)
		if v == nil || !p.hosts(ns) || v.Damage != nil {
			return false
		}
		if slices.Contains(h.Desired, o) && v.BlobsMissing > 0 {
			return false
		}
		if i == 0 {
			fingerprint = v.Fingerprint
		} else if v.Fingerprint != fingerprint {
			return false
		}
	}
	return true
}

// podHosting renders what pod o must host: the admin API body and the same
// list as a hosted-vaults file ("<namespace> <peer> ..." per line). addrs
// returns the full multiaddrs of a pod, used as replica peers.
func podHosting(plan hostingPlan, o int, addrs func(int) []string) (admin.HostedVaults, []byte) {
	hv := admin.HostedVaults{Vaults: []string{}}
	for ns, h := range plan {
		if slices.Contains(h.Desired, o) || slices.Contains(h.Leaving, o) {
			hv.Vaults = append(hv.Vaults, ns)
		}
	}
	slices.Sort(hv.Vaults)
	var file bytes.Buffer
	file.WriteString("# Vaults this pod hosts, written by the Seedfleet operator: <namespace ID> <replica peers...>\n")
	for _, ns := range hv.Vaults {
		var peers []string
		for _, m := range plan[ns].members() {
			if m != o {
				peers = append(peers, addrs(m)...)
			}
		}
		if len(peers) > admin.MaxPeersPerVault {
			peers = peers[:admin.MaxPeersPerVault]
		}
		if len(peers) > 0 {
			if hv.Peers == nil {
				hv.Peers = map[string][]string{}
			}
			hv.Peers[ns] = peers
		}
		file.WriteString(ns)
		if opts := plan[ns].Options; opts != (admin.VaultOptions{}) {
			if hv.Options == nil {
				hv.Options = map[string]admin.VaultOptions{}
			}
			hv.Options[ns] = opts
			file.WriteString(optionTokens(opts))
		}
		for _, p := range peers {
			file.WriteByte(' ')
			file.WriteString(p)
		}
		file.WriteByte('\n')
	}
	return hv, file.Bytes()
}

// optionTokens renders options in the hosted-vaults file's syntax.
func optionTokens(o admin.VaultOptions) string {
	var b strings.Builder
	if o.MaxEntries > 0 {
		fmt.Fprintf(&b, " maxEntries=%d", o.MaxEntries)
	}
	if o.MaxBytes > 0 {
		fmt.Fprintf(&b, " maxBytes=%d", o.MaxBytes)
	}
	if o.NoRelay {
		b.WriteString(" relay=none")
	}
	return b.String()
}

// vaultOptions are what an AgentVault asks of each replica beyond the
// SeedNode's defaults (which every pod's seed.yaml already holds).
func vaultOptions(av *seedv1.AgentVault) admin.VaultOptions {
	var o admin.VaultOptions
	if q := av.Spec.Quota.MaxEntries; q != nil && *q > 0 {
		o.MaxEntries = uint64(*q)
	}
	if q := av.Spec.Quota.MaxBytes; q != nil && q.Value() > 0 {
		o.MaxBytes = uint64(q.Value())
	}
	o.NoRelay = av.Spec.RelayAccess == seedv1.RelayAccessNone
	return o
}

// parseVaultsFile returns the namespace IDs a hosted-vaults file lists.
func parseVaultsFile(data []byte) map[string]bool {
	out := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out[strings.Fields(line)[0]] = true
	}
	return out
}

// sameHosting reports whether a pod already runs with hv.
func sameHosting(got *admin.HostedVaults, want admin.HostedVaults) bool {
	if got == nil {
		return false
	}
	a, b := slices.Clone(got.Vaults), slices.Clone(want.Vaults)
	slices.Sort(a)
	slices.Sort(b)
	if !slices.Equal(a, b) || len(got.Peers) != len(want.Peers) || len(got.Options) != len(want.Options) {
		return false
	}
	for ns, o := range want.Options {
		if got.Options[ns] != o {
			return false
		}
	}
	for ns, p := range want.Peers {
		if !slices.Equal(got.Peers[ns], p) {
			return false
		}
	}
	return true
}
