/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package controllers_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/controllers"
	"github.com/seedfleet/seedfleet/seednode/admin"
	devclient "github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/config"
	seedfleet "github.com/seedfleet/seedfleet/seednode/fleet"
	"github.com/seedfleet/seedfleet/seednode/hosting"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/node"
	"github.com/seedfleet/seedfleet/seednode/ticket"
)

// fleetIPBase is this file's loopback range: pod o is 127.N.3.(10+o)
// (N: loopbackNet).
const fleetIPBase = 3

// startPodFromConfigMap plays pod o of SeedNode name: it runs a real seed
// from the seed.yaml the operator wrote into the pod's ConfigMap, with the
// identity, admin token and fleet key the operator created, only the
// pod's paths and listen addresses moved to the test's, and creates its Pod.
// The seed reads the file as a pod's seed does (it watches it for new
// members), written once: the kubelet's later updates are not played.
func startPodFromConfigMap(t *testing.T, ns, name string, o int) *node.Node {
	t.Helper()
	pod := fmt.Sprintf("%s-%d", name, o)
	ip := fmt.Sprintf("127.%d.%d.%d", loopbackNet, fleetIPBase, 10+o)
	id, token, fleetKey := &corev1.Secret{}, &corev1.Secret{}, &corev1.Secret{}
	for s, n := range map[*corev1.Secret]string{id: pod + "-identity", token: name + "-admin-token", fleetKey: name + "-fleet-key"} {
		if err := get(t, s, ns, n); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	identityFile, tokenFile := write("identity.key", id.Data["identity.key"]), write("token", token.Data["token"])
	fleetKeyFile := write("fleet.key", fleetKey.Data["fleet.key"])
	seedYAML := filepath.Join(dir, "seed.yaml")
	kubelet := func() {
		t.Helper()
		cm := &corev1.ConfigMap{}
		if err := get(t, cm, ns, pod+"-config"); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Parse([]byte(cm.Data["seed.yaml"]))
		if err != nil {
			t.Fatal(err)
		}
		cfg.DataDir = filepath.Join(dir, "data")
		cfg.IdentityFile = identityFile
		cfg.HostedVaultsFile = write("vaults", []byte(cm.Data["vaults"]))
		cfg.Admin = config.Admin{Listen: fmt.Sprintf("%s:%d", ip, testAdminPort), TokenFile: tokenFile}
		cfg.Fleet.KeyFile = fleetKeyFile
		cfg.Listen = config.Listen{TCP: []string{fmt.Sprintf("/ip4/%s/tcp/%d", ip, testP2PPort)}}
		cfg.DHT.Mode, cfg.DHT.BootstrapPeers = config.DHTOff, nil
		data, err := cfg.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		// A new name moved in place, as the kubelet swaps the files of a
		// ConfigMap volume.
		tmp := write("seed.yaml.new", data)
		if err := os.Rename(tmp, seedYAML); err != nil {
			t.Fatal(err)
		}
	}
	kubelet()
	load := func() (config.Config, error) {
		cfg, err := config.Load(seedYAML)
		if err != nil {
			return cfg, err
		}
		return cfg, cfg.Validate()
	}
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := node.FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	nc.WatchFleetMembers(seedYAML, cfg, load)
	n, err := node.New(nc)
	if err != nil {
		t.Fatalf("starting %s from its seed.yaml: %v", pod, err)
	}
	t.Cleanup(func() { n.Close() })
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: pod, Labels: map[string]string{
		"seedfleet.io/seednode": name, "app.kubernetes.io/component": "seed"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "seed", Image: "seedfleet:test"}}}}
	mustCreate(t, p)
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	if err := k8s.Status().Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPublicFleet: a SeedNode with spec.hosting.selfService gets a fleet
// key, each pod a fleet section listing every pod by ordinal, and a fleet
// ticket in its status. Real seeds run from those seed.yaml files: an
// invite minted through a pod's admin API admits a device that found the
// fleet through the status's ticket, a device without one is refused, and
// the status totals count both.
func TestPublicFleet(t *testing.T) {
	ns := newNamespace(t)
	const name = "public"
	sn := seedNode(ns, name, 2)
	sn.Spec.Ports = seedv1.PortsSpec{P2P: testP2PPort, Admin: testAdminPort}
	sn.Spec.Expose.Announce = []string{fmt.Sprintf("/ip4/127.%d.%d.1{ordinal}/tcp/%d", loopbackNet, fleetIPBase, testP2PPort)}
	sn.Spec.Hosting.SelfService = &seedv1.SelfServiceSpec{Admission: seedv1.AdmissionInvite,
		Limits: seedv1.SelfServiceLimits{MaxVaultsPerAgent: ptr.To[int32](4)}}
	mustCreate(t, sn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The API server refuses R above the pods, with the rule's message.
	bad := sn.DeepCopy()
	bad.Spec.Hosting.SelfService.Replicas = ptr.To[int32](3)
	if err := k8s.Update(ctx, bad); err == nil || !strings.Contains(err.Error(), "spec.hosting.selfService.replicas must be at most spec.replicas") {
		t.Fatalf("selfService.replicas 3 on 2 pods: %v", err)
	}

	key := &corev1.Secret{}
	eventually(t, 30*time.Second, "fleet key Secret", func() error { return get(t, key, ns, name+"-fleet-key") })
	fleetKey, err := identity.DecodePEM(key.Data["fleet.key"])
	if err != nil {
		t.Fatal(err)
	}
	if did := key.Annotations[controllers.AnnotationFleetKeyDID]; did != identity.DIDKey(fleetKey.Public().(ed25519.PublicKey)) {
		t.Fatalf("fleet key annotated %q", did)
	}

	var members []string
	for o := range 2 {
		id := &corev1.Secret{}
		eventually(t, 30*time.Second, "identity Secret", func() error { return get(t, id, ns, fmt.Sprintf("%s-%d-identity", name, o)) })
		members = append(members, fmt.Sprintf("/ip4/127.%d.%d.1%d/tcp/%d/p2p/%s", loopbackNet, fleetIPBase, o, testP2PPort, id.Annotations[controllers.AnnotationPeerID]))
	}
	for o := range 2 {
		cm := &corev1.ConfigMap{}
		eventually(t, 30*time.Second, "pod ConfigMap with the fleet section", func() error {
			if err := get(t, cm, ns, fmt.Sprintf("%s-%d-config", name, o)); err != nil {
				return err
			}
			cfg, err := config.Parse([]byte(cm.Data["seed.yaml"]))
			if err != nil {
				return err
			}
			f := cfg.Fleet
			if f.Name != ns+"/"+name || f.Self != o || !slices.Equal(f.Members, members) || f.Replicas != 2 ||
				f.Admission != seedfleet.Invite || f.Limits.MaxVaultsPerAgent != 4 || f.KeyFile == "" {
				return fmt.Errorf("pod %d's fleet section %+v, want members %v", o, f, members)
			}
			return nil
		})
	}
	sts := &appsv1.StatefulSet{}
	eventually(t, 30*time.Second, "StatefulSet", func() error { return get(t, sts, ns, name) })
	if !slices.ContainsFunc(sts.Spec.Template.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == "install-fleet-key" }) {
		t.Fatalf("no init container installs the fleet key: %+v", sts.Spec.Template.Spec.InitContainers)
	}

	var tk ticket.FleetTicket
	eventually(t, 30*time.Second, "fleet ticket in the status", func() error {
		if err := get(t, sn, ns, name); err != nil {
			return err
		}
		if sn.Status.Fleet == nil || sn.Status.Fleet.Ticket == "" {
			return fmt.Errorf("status.fleet %+v", sn.Status.Fleet)
		}
		tk, err = ticket.ParseFleetTicket(sn.Status.Fleet.Ticket)
		return err
	})
	if tk.Name != ns+"/"+name || tk.Admission != seedfleet.Invite || tk.Replicas != 2 || tk.Pods != 2 || len(tk.Peers) != 2 {
		t.Fatalf("status ticket %+v", tk)
	}

	seeds := []*node.Node{startPodFromConfigMap(t, ns, name, 0), startPodFromConfigMap(t, ns, name, 1)}
	for _, s := range seeds {
		if own, ok := s.FleetTicket(); !ok || !own.Equal(tk) {
			t.Fatalf("a seed gives the ticket %+v, the status %+v", own, tk)
		}
	}

	token := &corev1.Secret{}
	if err := get(t, token, ns, name+"-admin-token"); err != nil {
		t.Fatal(err)
	}
	ac := admin.NewClient(seeds[1].AdminURL(), admin.WithToken(strings.TrimSpace(string(token.Data["token"]))))
	inv, err := ac.MintInvite(ctx, admin.InviteRequest{Uses: 1, ExpiresIn: "24h"})
	if err != nil {
		t.Fatal(err)
	}

	ask := func(invite string) *hosting.Answer {
		t.Helper()
		d, err := devclient.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		if _, err := d.InitAgent("laptop"); err != nil {
			t.Fatal(err)
		}
		req, err := d.HostingRequest(devclient.HostingAsk{Op: hosting.OpHost, Fleet: tk.Name, Invite: invite})
		if err != nil {
			t.Fatal(err)
		}
		ans, err := d.AskFleet(ctx, tk.Peers, req)
		if err != nil {
			t.Fatal(err)
		}
		return ans
	}
	if ans := ask(inv.Ticket); !ans.OK() || len(ans.Seeds) != 2 {
		t.Fatalf("the invited device: %v %q, seeds %v", ans.Reason, ans.Message, ans.Seeds)
	}
	if ans := ask(""); ans.Reason != hosting.ReasonInviteNeeded {
		t.Fatalf("a device without an invite: %v %q", ans.Reason, ans.Message)
	}

	eventually(t, time.Minute, "fleet totals in the status", func() error {
		if err := get(t, sn, ns, name); err != nil {
			return err
		}
		fs := sn.Status.Fleet
		var held int32
		for _, p := range sn.Status.Pods {
			held += p.SelfServiceVaults
		}
		refused := int64(0)
		for _, r := range fs.Refusals {
			if r.Reason == "InviteNeeded" {
				refused = r.Count
			}
		}
		if fs.PodsReporting != 2 || fs.Agents != 1 || fs.Admissions != 1 || fs.Vaults < 1 || refused < 1 ||
			int64(held) != 2*fs.Vaults {
			return fmt.Errorf("status.fleet %+v, pods %+v", fs, sn.Status.Pods)
		}
		return nil
	})

	// Scaling rewrites every pod's members and leaves the pods' config hash
	// alone: the operator gives the running seeds their new members through
	// their admin API (their files are not updated here), and they apply
	// them without a restart.
	hash := sts.Spec.Template.Annotations[controllers.AnnotationConfigHash]
	patchReplicas(t, ns, name, 3)
	id := &corev1.Secret{}
	eventually(t, 30*time.Second, "identity Secret of the new pod", func() error { return get(t, id, ns, name+"-2-identity") })
	members = append(members, fmt.Sprintf("/ip4/127.%d.%d.12/tcp/%d/p2p/%s", loopbackNet, fleetIPBase, testP2PPort, id.Annotations[controllers.AnnotationPeerID]))
	eventually(t, 30*time.Second, "three members everywhere", func() error {
		for o := range 3 {
			cm := &corev1.ConfigMap{}
			if err := get(t, cm, ns, fmt.Sprintf("%s-%d-config", name, o)); err != nil {
				return err
			}
			cfg, err := config.Parse([]byte(cm.Data["seed.yaml"]))
			if err != nil {
				return err
			}
			if f := cfg.Fleet; f.Self != o || !slices.Equal(f.Members, members) {
				return fmt.Errorf("pod %d: self %d, members %v", o, f.Self, f.Members)
			}
		}
		if err := get(t, sts, ns, name); err != nil {
			return err
		}
		if *sts.Spec.Replicas != 3 {
			return fmt.Errorf("StatefulSet of %d pods", *sts.Spec.Replicas)
		}
		if err := get(t, sn, ns, name); err != nil {
			return err
		}
		if tk, err := ticket.ParseFleetTicket(sn.Status.Fleet.Ticket); err != nil || tk.Pods != 3 {
			return fmt.Errorf("status ticket %+v (%v)", tk, err)
		}
		return nil
	})
	if got := sts.Spec.Template.Annotations[controllers.AnnotationConfigHash]; got != hash {
		t.Fatalf("scaling moved the pods' config hash from %s to %s: every pod would restart", hash, got)
	}
	startPodFromConfigMap(t, ns, name, 2)
	eventually(t, time.Minute, "every pod places by 3 members, without a restart", func() error {
		for i, s := range seeds {
			if own, _ := s.FleetTicket(); own.Pods != 3 {
				return fmt.Errorf("seed %d tells a ticket of %d pods", i, own.Pods)
			}
		}
		if err := get(t, sn, ns, name); err != nil {
			return err
		}
		return wantCondition(sn.Status.Conditions, seedv1.ConditionProgressing, metav1.ConditionFalse, seedv1.ReasonReconciled)
	})
}
