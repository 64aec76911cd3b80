/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/ticket"
)

// A public fleet (spec.hosting.selfService): the fleet key Secret, each
// pod's fleet section, and the fleet's part of the status.
//
// Membership without restarts: every pod's seed.yaml lists every pod's
// address by ordinal (fleet.members), how many of the last are leaving
// (fleet.leaving) and R (fleet.replicas, which follows spec.replicas when
// unset). The operator gives them to every running pod through its admin
// API (pushMembers), and the seeds also re-read them when the kubelet
// updates the mounted file; either way they apply them without a restart,
// and each reports the version of the membership it places by (GET
// /v1/fleet, fleet.Members.Version). The pod
// template's config hash covers the rest of the fleet section, not the
// membership: scaling a public fleet restarts no pod, and drops no live
// session. Until every pod reports the membership written, the pods may
// place some vaults differently (a pod that gets a request forwarded by a
// pod it does not count as a member, or for a subject it does not place
// on itself, tells the device to try again shortly), and the SeedNode is
// Progressing with reason ApplyingMembers; a hand-off waits for it.

// Names of the fleet key: its Secret (one per SeedNode, created once and
// never rewritten, like the pods' identities), the Secret's key, and where
// the install-fleet-key init container copies it for the seed.
const (
	// KeyFleetKey is the fleet key Secret's key: the key in PEM.
	KeyFleetKey        = "fleet.key"
	fleetKeyVolumeName = "fleet-key"
	fleetKeyMountPath  = "/etc/seedfleet/fleet-key"
	fleetKeyContainer  = "install-fleet-key"
	// AnnotationFleetKeyDID on the fleet key Secret is its public key as a did:key.
	AnnotationFleetKeyDID = "seedfleet.io/fleet-key"
)

// FleetKeySecretName holds a public fleet's Ed25519 key, which signs and
// checks its invites (seedfleet fleet invite --seednode reads it).
func FleetKeySecretName(sn *seedv1.SeedNode) string { return sn.Name + "-fleet-key" }

// FleetName is the public fleet's name of sn: <namespace>/<name>.
func FleetName(sn *seedv1.SeedNode) string { return sn.Namespace + "/" + sn.Name }

// buildFleetKeySecret holds the fleet's key, annotated with its public half
// as a did:key.
func buildFleetKeySecret(sn *seedv1.SeedNode, key ed25519.PrivateKey) (*corev1.Secret, error) {
	pem, err := identity.EncodePEM(key)
	if err != nil {
		return nil, err
	}
	meta := childMeta(sn, FleetKeySecretName(sn), seedLabels(sn))
	meta.Annotations = map[string]string{AnnotationFleetKeyDID: identity.DIDKey(key.Public().(ed25519.PublicKey))}
	return &corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{KeyFleetKey: pem}}, nil
}

// ensureFleetKey creates the fleet key Secret of a public fleet. It is kept
// when selfService is removed again (invites minted with it stay valid if
// it comes back) and goes with the SeedNode.
func (r *SeedNodeReconciler) ensureFleetKey(ctx context.Context, st *seedState) error {
	if st.sn.Spec.Hosting.SelfService == nil {
		return nil
	}
	obj := &corev1.Secret{}
	obj.Namespace, obj.Name = st.sn.Namespace, FleetKeySecretName(st.sn)
	s, _, err := r.createOnce(ctx, st.sn, obj, func() (*corev1.Secret, error) {
		key, err := identity.Generate()
		if err != nil {
			return nil, err
		}
		return buildFleetKeySecret(st.sn, key)
	})
	if err != nil {
		return err
	}
	if _, err := identity.DecodePEM(s.Data[KeyFleetKey]); err != nil {
		return &invalidSpecError{fmt.Errorf("fleet key Secret %s: key %s: %w; delete it to have a new one generated (invites minted with the old key stop working)", s.Name, KeyFleetKey, err)}
	}
	return nil
}

// fleetMembers are the public fleet's members by ordinal: one full TCP
// multiaddr of each of the spec.replicas pods (more while the last ones hand
// off: fleetLeaving), as the operator computes it before the pods run
// (stableAddrs, so a restarting pod changes nothing). nil without
// selfService, or while a pod's peer ID is not known.
func (st *seedState) fleetMembers() []string {
	return st.fleetMemberAddrs(max(st.fleetPods, int(st.sn.WithDefaults().Spec.Replicas)))
}

// fleetMemberAddrs are the first n members' addresses; nil without
// selfService or while one is not known.
func (st *seedState) fleetMemberAddrs(n int) []string {
	if st.sn.Spec.Hosting.SelfService == nil {
		return nil
	}
	out := make([]string, 0, n)
	for o := range n {
		addrs := st.stableAddrs(o)
		i := slices.IndexFunc(addrs, func(a string) bool { return strings.Contains(a, "/tcp/") })
		if i < 0 {
			return nil
		}
		out = append(out, addrs[i])
	}
	return out
}

// membersVersion is the version (fleet.Members.Version) of the membership
// of the first n members, the last leaving of them leaving, as the pods
// report it once they place by it; "" while a member is not known.
func (st *seedState) membersVersion(n, leaving int) string {
	addrs := st.fleetMemberAddrs(n)
	if len(addrs) == 0 {
		return ""
	}
	m, err := config.Fleet{Members: addrs, Leaving: leaving, Replicas: int(st.sn.Spec.SelfServiceReplicas())}.Membership()
	if err != nil {
		return ""
	}
	return m.Version()
}

// membersNotApplied names the pods among the first n that report a
// membership other than that of n members with leaving leaving, and, if
// silent is true, those that report none.
func (st *seedState) membersNotApplied(n, leaving int, silent bool) []string {
	want := st.membersVersion(n, leaving)
	var out []string
	for o := range n {
		f := st.podFleet(o)
		if (f == nil && silent) || (f != nil && f.Members != want) {
			out = append(out, podName(st.sn, o))
		}
	}
	return out
}

// pushMembers gives every pod that answers with another membership the one
// its ConfigMap now lists, through its admin API: the pods apply it within
// a poll instead of when the kubelet updates their files. A pod that does
// not take it (an older seed, or it is restarting) gets it from its file.
func (r *SeedNodeReconciler) pushMembers(ctx context.Context, st *seedState) error {
	members := st.fleetMembers()
	if st.sn.Spec.Hosting.SelfService == nil || len(members) == 0 {
		return nil
	}
	leaving := st.fleetLeaving()
	want := st.membersVersion(len(members), leaving)
	log := logf.FromContext(ctx)
	for o := range members {
		f := st.podFleet(o)
		if f == nil || f.Members == want {
			continue
		}
		m := admin.FleetMembers{Self: o, Members: members, Leaving: leaving, Replicas: int(st.sn.Spec.SelfServiceReplicas())}
		got, err := r.Pods.SetFleetMembers(ctx, adminURL(st.pods[o], st.sn), st.token, m)
		if err != nil || got != want {
			log.Info("pod did not take the fleet's membership; it applies it from its configuration file", "pod", podName(st.sn, o), "version", got, "want", want, "err", err)
			continue
		}
		st.busy = true // read it back at the next poll
	}
	return nil
}

// fleetLeaving is how many of the last fleetMembers are leaving: the pods
// past spec.replicas kept while they hand off.
func (st *seedState) fleetLeaving() int {
	return max(st.fleetPods-int(st.sn.WithDefaults().Spec.Replicas), 0)
}

// setFleet writes the fleet section of pod plan.Ordinal's seed.yaml: a pod
// that is one of the members, of a SeedNode with selfService. Unset limits
// keep the seed's defaults, lowered or raised to fit the limits that are
// set (a smaller maxQuota lowers the default quota; a larger one raises
// maxAgentBytes), so setting one limit never makes the seeds refuse the rest.
func setFleet(cfg *config.Config, sn *seedv1.SeedNode, plan podPlan) error {
	ss := sn.Spec.Hosting.SelfService
	if ss == nil || plan.Ordinal >= len(plan.FleetMembers) {
		return nil
	}
	f := &cfg.Fleet
	f.Name = FleetName(sn)
	f.Self = plan.Ordinal
	f.Members = slices.Clone(plan.FleetMembers)
	f.Leaving = plan.FleetLeaving
	f.Replicas = int(sn.Spec.SelfServiceReplicas())
	f.KeyFile = path.Join(identityMountPath, KeyFleetKey)
	switch ss.Admission {
	case seedv1.AdmissionClosed:
		f.Admission = fleet.Closed
	case seedv1.AdmissionOpen:
		f.Admission = fleet.Open
	case seedv1.AdmissionInvite:
		f.Admission = fleet.Invite
	default:
		return &config.FieldError{Field: "spec.hosting.selfService.admission",
			Err: fmt.Errorf("unknown value %q (one of %v)", ss.Admission, []seedv1.Admission{seedv1.AdmissionClosed, seedv1.AdmissionOpen, seedv1.AdmissionInvite})}
	}
	if d := ss.IdleExpiry; d != nil {
		f.IdleExpiry = config.Duration{Duration: d.Duration}
	}
	l, out := ss.Limits, &f.Limits
	setInt(&out.MaxVaultsPerAgent, l.MaxVaultsPerAgent)
	setInt(&out.RequestsPerRangePerMinute, l.RequestsPerRangePerMinute)
	if n := l.AdmissionsPerSecond; n != nil {
		out.AdmissionsPerSecond = float64(*n)
	}
	if n := sn.Spec.Hosting.MaxVaultsPerPod; n > 0 {
		out.MaxVaultsPerPod = int(n)
	}
	var errs []error
	setEntries := func(dst *uint64, v *int64, field string) {
		if v == nil {
			return
		}
		if *v < 1 {
			errs = append(errs, &config.FieldError{Field: field, Err: fmt.Errorf("must be at least 1, got %d", *v)})
			return
		}
		*dst = uint64(*v)
	}
	const limits = "spec.hosting.selfService.limits."
	setEntries(&out.MaxQuotaEntries, l.MaxQuota.MaxEntries, limits+"maxQuota.maxEntries")
	setEntries(&out.DefaultQuotaEntries, l.DefaultQuota.MaxEntries, limits+"defaultQuota.maxEntries")
	if q := l.MaxQuota.MaxBytes; q != nil {
		errs = append(errs, setQuantity(&out.MaxQuotaBytes, q, limits+"maxQuota.maxBytes"))
	}
	if q := l.DefaultQuota.MaxBytes; q != nil {
		errs = append(errs, setQuantity(&out.DefaultQuotaBytes, q, limits+"defaultQuota.maxBytes"))
	}
	if q := l.MaxAgentBytes; q != nil {
		errs = append(errs, setQuantity(&out.MaxAgentBytes, q, limits+"maxAgentBytes"))
	}
	if l.DefaultQuota.MaxEntries == nil {
		out.DefaultQuotaEntries = min(out.DefaultQuotaEntries, out.MaxQuotaEntries)
	}
	if l.DefaultQuota.MaxBytes == nil {
		out.DefaultQuotaBytes = min(out.DefaultQuotaBytes, out.MaxQuotaBytes)
	}
	if l.MaxAgentBytes == nil {
		out.MaxAgentBytes = max(out.MaxAgentBytes, out.MaxQuotaBytes)
	}
	return errors.Join(errs...)
}

// fleetSeedFields map the fleet section's keys to the SeedNode fields.
var fleetSeedFields = map[string]string{
	"fleet.replicas":                         "spec.hosting.selfService.replicas",
	"fleet.admission":                        "spec.hosting.selfService.admission",
	"fleet.idleExpiry":                       "spec.hosting.selfService.idleExpiry",
	"fleet.limits.maxVaultsPerAgent":         "spec.hosting.selfService.limits.maxVaultsPerAgent",
	"fleet.limits.defaultQuotaBytes":         "spec.hosting.selfService.limits.defaultQuota.maxBytes",
	"fleet.limits.defaultQuotaEntries":       "spec.hosting.selfService.limits.defaultQuota.maxEntries",
	"fleet.limits.maxQuotaBytes":             "spec.hosting.selfService.limits.maxQuota.maxBytes",
	"fleet.limits.maxQuotaEntries":           "spec.hosting.selfService.limits.maxQuota.maxEntries",
	"fleet.limits.maxAgentBytes":             "spec.hosting.selfService.limits.maxAgentBytes",
	"fleet.limits.maxVaultsPerPod":           "spec.hosting.maxVaultsPerPod",
	"fleet.limits.admissionsPerSecond":       "spec.hosting.selfService.limits.admissionsPerSecond",
	"fleet.limits.requestsPerRangePerMinute": "spec.hosting.selfService.limits.requestsPerRangePerMinute",
}

func init() {
	maps.Copy(seedToSpecFields, fleetSeedFields)
}

// installFleetKeyContainerSpec copies the fleet key from its Secret into the
// in-memory identity volume, where the seed reads it with mode 0600 (the
// kubelet makes Secret files group-readable, which the seed refuses for a
// key it loads as its own).
func installFleetKeyContainerSpec(sn *seedv1.SeedNode, image string) corev1.Container {
	c := installKeyContainerSpec(sn, image)
	c.Name = fleetKeyContainer
	c.Args = []string{"seednode", "install-key", path.Join(fleetKeyMountPath, KeyFleetKey), path.Join(identityMountPath, KeyFleetKey)}
	c.Env = nil
	c.VolumeMounts = []corev1.VolumeMount{
		{Name: fleetKeyVolumeName, MountPath: fleetKeyMountPath, ReadOnly: true},
		{Name: identityVolumeName, MountPath: identityMountPath},
	}
	return c
}

func fleetKeyVolume(sn *seedv1.SeedNode) corev1.Volume {
	return corev1.Volume{Name: fleetKeyVolumeName, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName:  FleetKeySecretName(sn),
		DefaultMode: ptr.To(secretFileMode),
	}}}
}

// fleetTicket is the fleet ticket of sn's pods, the one every seed gives
// (hosting.Service.Ticket): its name, policy, R, size and its first
// ticket.MaxPeers members. "" while a member is unknown.
func fleetTicket(sn *seedv1.SeedNode, members []string) string {
	ss := sn.Spec.Hosting.SelfService
	if ss == nil || len(members) == 0 {
		return ""
	}
	t := ticket.FleetTicket{Name: FleetName(sn), Replicas: int(sn.Spec.SelfServiceReplicas()), Pods: len(members)}
	switch ss.Admission {
	case seedv1.AdmissionOpen:
		t.Admission = fleet.Open
	case seedv1.AdmissionInvite:
		t.Admission = fleet.Invite
	default:
		t.Admission = fleet.Closed
	}
	for _, m := range members[:min(len(members), ticket.MaxPeers)] {
		info, err := p2p.ParsePeerAddr(m)
		if err != nil {
			return ""
		}
		t.Peers = append(t.Peers, info)
	}
	text, err := t.MarshalText()
	if err != nil {
		return ""
	}
	return string(text)
}

// Bounds of the refusal reasons the status takes from the pods, which are
// not trusted to keep them few.
const (
	maxRefusalReasons  = 32
	maxRefusalReasonLn = 32
)

// fleetStatus sums the public fleet's figures over the members that
// answered GET /v1/fleet for this fleet.
func (st *seedState) fleetStatus() *seedv1.FleetStatus {
	sn := st.sn
	ss := sn.Spec.Hosting.SelfService
	if ss == nil {
		return nil
	}
	members := st.fleetMembers()
	fs := &seedv1.FleetStatus{Name: FleetName(sn), Ticket: fleetTicket(sn, members), Admission: ss.Admission,
		Replicas: sn.Spec.SelfServiceReplicas()}
	refusals := map[string]int64{}
	for o := range len(members) {
		f := st.podFleet(o)
		if f == nil {
			continue
		}
		fs.PodsReporting++
		fs.Agents += int64(f.Agents)
		fs.Vaults += int64(f.Vaults)
		fs.Bytes += int64(min(f.Bytes, 1<<62))
		fs.Admissions += int64(f.Admissions)
		for reason, n := range f.Refusals {
			if !validReason(reason) {
				continue
			}
			if _, seen := refusals[reason]; !seen && len(refusals) >= maxRefusalReasons {
				continue
			}
			refusals[reason] += int64(min(n, 1<<62))
		}
	}
	for _, reason := range slices.Sorted(maps.Keys(refusals)) {
		if refusals[reason] > 0 {
			fs.Refusals = append(fs.Refusals, seedv1.FleetRefusals{Reason: reason, Count: refusals[reason]})
		}
	}
	return fs
}

// podFleet is pod o's answer to GET /v1/fleet when it is about this fleet.
func (st *seedState) podFleet(o int) *admin.FleetStatus {
	if st.fleet == nil {
		return nil
	}
	pv := st.fleet.Pods[o]
	if pv == nil || pv.Fleet == nil || pv.Fleet.Name != FleetName(st.sn) {
		return nil
	}
	return pv.Fleet
}

func validReason(s string) bool {
	if s == "" || len(s) > maxRefusalReasonLn {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
