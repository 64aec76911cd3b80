//go:build e2e

/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/seednode/ticket"
)

// fleetReplicas is R of the public fleet step: two of the three pods hold
// each self-service agent.
const fleetReplicas = 2

// publicFleet makes the SeedNode a public fleet that admits by invite. A
// device without an invite is refused with the reason; with an invite
// minted through a pod's admin API, a device self-hosts its agent and
// syncs entries and a blob; a second device of the agent, paired, reads
// them through the fleet ticket; one of the agent's pods is deleted and
// the agent stays readable from the other.
func (s *suite) publicFleet(t *testing.T) {
	fleetTicket := s.enableSelfService(t)

	laptop := s.newDevice("fleet-laptop")
	laptop.must(t, s.ctx, cliTimeout, "agent", "init", "--name", "laptop")
	out, err := laptop.run(s.ctx, cliTimeout, "host", "request", "agent", "--fleet", fleetTicket)
	if err == nil || !strings.Contains(err.Error(), "InviteNeeded") {
		t.Fatalf("a host request without an invite: %v (output %q), want a refusal naming InviteNeeded", err, out)
	}
	s.logf(t, "without an invite: %s", lineContaining(err.Error(), "InviteNeeded"))

	invite := s.mintInvite(t, laptop)
	out = laptop.must(t, s.ctx, syncTimeout, "host", "request", "agent", "--fleet", fleetTicket, "--invite", invite)
	s.logf(t, "with an invite: %s", firstLines(out, 4))

	for _, e := range textEntries {
		laptop.must(t, s.ctx, cliTimeout, "put", "agent", e.key, e.value)
	}
	laptop.must(t, s.ctx, cliTimeout, "put", "agent", blobKey, "--file", s.blobPath)
	s.sync(t, laptop, "agent") // to the agent's seeds: the fleet's, added by host request

	home := s.fleetHome(t, laptop, fleetTicket)
	phone := s.pair(t, laptop, "fleet-phone")
	s.sync(t, phone, "agent", fleetTicket)
	s.readsVault(t, phone, "agent", home)

	victim, survivor := home[0], home[1]
	pod := s.podOfPeer(t, victim)
	s.logf(t, "deleting %s, one of the agent's two pods", pod.Name)
	oldUID := pod.UID
	if err := s.k8s.Delete(s.ctx, pod, client.Preconditions{UID: &oldUID}); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, "pod "+pod.Name+" to be gone", podGoneTimeout, func(ctx context.Context) error {
		p := &corev1.Pod{}
		err := s.k8s.Get(ctx, client.ObjectKeyFromObject(pod), p)
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		case p.UID != oldUID:
			return nil
		}
		return fmt.Errorf("pod %s still exists", p.Name)
	})
	tablet := s.pair(t, laptop, "fleet-tablet")
	s.sync(t, tablet, "agent", fleetTicket)
	s.readsVault(t, tablet, "agent", []string{survivor})

	s.waitFor(t, "the SeedNode Ready again", podBackTimeout+scaleTimeout, func(ctx context.Context) error {
		sn, err := s.seedNode(ctx)
		if err != nil {
			return err
		}
		return seedNodeReady(sn, seedReplicas)
	})
	sn, err := s.seedNode(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := sn.Status.Fleet
	s.logf(t, "fleet status: %d agents, %d vaults, %d bytes, %d admissions, refusals %+v", f.Agents, f.Vaults, f.Bytes, f.Admissions, f.Refusals)
}

// enableSelfService sets spec.hosting.selfService (Invite, R = 2) and waits
// for the pods to serve it and the status to carry the fleet ticket.
func (s *suite) enableSelfService(t *testing.T) string {
	t.Helper()
	sn, err := s.seedNode(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(sn.DeepCopy())
	r := int32(fleetReplicas)
	sn.Spec.Hosting.SelfService = &seedv1.SelfServiceSpec{Admission: seedv1.AdmissionInvite, Replicas: &r}
	if err := s.k8s.Patch(s.ctx, sn, patch); err != nil {
		t.Fatal(err)
	}
	var fleetTicket string
	s.waitFor(t, "the SeedNode Ready as a public fleet with its ticket in status", scaleTimeout, func(ctx context.Context) error {
		sn, err := s.seedNode(ctx)
		if err != nil {
			return err
		}
		if err := seedNodeReady(sn, seedReplicas); err != nil {
			return err
		}
		f := sn.Status.Fleet
		if f == nil || f.Ticket == "" || f.Admission != seedv1.AdmissionInvite || f.PodsReporting != seedReplicas {
			return fmt.Errorf("status.fleet %+v", f)
		}
		tk, err := ticket.ParseFleetTicket(f.Ticket)
		if err != nil {
			return err
		}
		if tk.Pods != seedReplicas || tk.Replicas != fleetReplicas || tk.Admission != "Invite" {
			return fmt.Errorf("the ticket says %d pods, R=%d, %s", tk.Pods, tk.Replicas, tk.Admission)
		}
		fleetTicket = f.Ticket
		return nil
	})
	s.logf(t, "fleet ticket: %s", fleetTicket)
	return fleetTicket
}

// mintInvite mints a single-use invite the Kubernetes way: signed with the
// fleet key the operator keeps in the SeedNode's Secret, read through the
// kubeconfig.
func (s *suite) mintInvite(t *testing.T, d *device) string {
	t.Helper()
	out := d.must(t, s.ctx, cliTimeout, "fleet", "invite", "--seednode", testNamespace+"/"+seedNodeName,
		"--kubeconfig", s.cfg.kubeconfig, "--uses", "1", "--expires", "1h")
	invite := strings.TrimSpace(out)
	if !strings.HasPrefix(invite, ticket.InvitePrefix) {
		t.Fatalf("fleet invite printed %q", out)
	}
	return invite
}

// fleetHome is the agent's pods as `host status` names them (full TCP
// multiaddrs), best first.
func (s *suite) fleetHome(t *testing.T, d *device, fleetTicket string) []string {
	t.Helper()
	out := d.must(t, s.ctx, cliTimeout, "host", "status", "agent", "--fleet", fleetTicket)
	var seeds []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "/") && strings.Contains(line, "/p2p/") {
			seeds = append(seeds, line)
		}
	}
	seeds = p2pTCPAddrs(seeds, "")
	if len(seeds) != fleetReplicas {
		t.Fatalf("host status names %d seeds, want %d:\n%s", len(seeds), fleetReplicas, out)
	}
	return seeds
}

// podOfPeer is the pod whose peer ID ends addr.
func (s *suite) podOfPeer(t *testing.T, addr string) *corev1.Pod {
	t.Helper()
	sn, err := s.seedNode(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range sn.Status.Pods {
		if strings.HasSuffix(addr, "/p2p/"+p.PeerID) {
			pod := &corev1.Pod{}
			if err := s.k8s.Get(s.ctx, client.ObjectKey{Namespace: testNamespace, Name: p.Name}, pod); err != nil {
				t.Fatal(err)
			}
			return pod
		}
	}
	t.Fatalf("no pod of the SeedNode is %s", addr)
	return nil
}

// pair pairs a new device with root's agent: `device pair` waits in the
// background, root approves with its ticket and code.
func (s *suite) pair(t *testing.T, root *device, name string) *device {
	t.Helper()
	d := s.newDevice(name)
	ctx, cancel := context.WithTimeout(s.ctx, syncTimeout)
	defer cancel()
	args := []string{"device", "pair", "--name", name, "--home", d.home, "--timeout", "90s"}
	cmd := exec.CommandContext(ctx, d.bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	all := &lockedBuffer{}
	cmd.Stderr = all
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pairTicket, code string
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		fmt.Fprintln(all, lines.Text())
		if v, ok := strings.CutPrefix(lines.Text(), "pairing ticket: "); ok {
			pairTicket = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(lines.Text(), "pairing code:"); ok {
			code = strings.TrimSpace(v)
			break
		}
	}
	if pairTicket == "" || code == "" {
		_ = cmd.Wait()
		t.Fatalf("device %s: %s printed no pairing ticket and code:\n%s", name, commandLine(d.bin, args), all.String())
	}
	done := make(chan struct{})
	go func() {
		for lines.Scan() {
			fmt.Fprintln(all, lines.Text())
		}
		close(done)
	}()
	root.must(t, s.ctx, cliTimeout, "device", "approve", pairTicket, "--code", code)
	<-done
	if err := cmd.Wait(); err != nil {
		t.Fatalf("device %s: %s: %v\n%s", name, commandLine(d.bin, args), err, all.String())
	}
	s.logf(t, "%s paired: %s", name, firstLines(all.String(), 6))
	return d
}
