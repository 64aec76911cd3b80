/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/identity"
)

// createOnce creates obj unless it exists, and returns the stored object.
// Secrets holding keys and tokens are never rewritten.
func (r *SeedNodeReconciler) createOnce(ctx context.Context, sn *seedv1.SeedNode, obj *corev1.Secret, build func() (*corev1.Secret, error)) (*corev1.Secret, bool, error) {
	err := r.Get(ctx, client.ObjectKeyFromObject(obj), obj)
	if err == nil {
		return obj, false, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, false, fmt.Errorf("reading Secret %s: %w", obj.Name, err)
	}
	created, err := build()
	if err != nil {
		return nil, false, err
	}
	if err := controllerutil.SetControllerReference(sn, created, r.Scheme()); err != nil {
		return nil, false, err
	}
	if err := r.Create(ctx, created); err != nil {
		return nil, false, fmt.Errorf("creating Secret %s: %w", created.Name, err)
	}
	return created, true, nil
}

// ensureAdminToken creates the admin API token the pods require for PUTs.
func (r *SeedNodeReconciler) ensureAdminToken(ctx context.Context, st *seedState) error {
	obj := &corev1.Secret{}
	obj.Namespace, obj.Name = st.sn.Namespace, adminTokenSecretName(st.sn)
	s, _, err := r.createOnce(ctx, st.sn, obj, func() (*corev1.Secret, error) {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		return buildAdminTokenSecret(st.sn, hex.EncodeToString(b[:])), nil
	})
	if err != nil {
		return err
	}
	st.token = strings.TrimSpace(string(s.Data[keyAdminToken]))
	return nil
}

// ensureIdentities creates each pod's identity Secret before the pod exists,
// so its peer ID is known (and published) ahead of time and survives the
// pod. Scale-downs keep them: a pod that comes back keeps its peer ID.
func (r *SeedNodeReconciler) ensureIdentities(ctx context.Context, st *seedState) error {
	st.peerIDs = map[int]string{}
	for o := range int(st.replicas) {
		obj := &corev1.Secret{}
		obj.Namespace, obj.Name = st.sn.Namespace, identitySecretName(st.sn, o)
		s, created, err := r.createOnce(ctx, st.sn, obj, func() (*corev1.Secret, error) {
			key, err := identity.Generate()
			if err != nil {
				return nil, err
			}
			return buildIdentitySecret(st.sn, o, key)
		})
		if err != nil {
			return err
		}
		id, err := secretPeerID(s)
		if err != nil {
			return &invalidSpecError{fmt.Errorf("identity Secret %s: %w; delete it to have a new identity generated (the pod's peer ID changes)", s.Name, err)}
		}
		if created {
			r.Recorder.Eventf(st.sn, s, corev1.EventTypeNormal, string(seedv1.ReasonIdentityCreated), "CreateIdentity", "pod %s has peer ID %s", podName(st.sn, o), id)
		}
		st.peerIDs[o] = id
	}
	return nil
}

// secretPeerID reads the peer ID of an identity Secret from its key.
func secretPeerID(s *corev1.Secret) (string, error) {
	key, err := identity.DecodePEM(s.Data[keyIdentity])
	if err != nil {
		return "", fmt.Errorf("key %s: %w", keyIdentity, err)
	}
	id, err := identity.PeerID(key.Public().(ed25519.PublicKey))
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// ensureServices applies the headless Service and one Service per pod.
func (r *SeedNodeReconciler) ensureServices(ctx context.Context, st *seedState) error {
	headless := buildHeadlessService(st.sn)
	if _, err := r.apply(ctx, st.sn, headless); err != nil {
		return err
	}
	st.services = map[int]*corev1.Service{}
	for o := range int(st.replicas) {
		svc := buildPodService(st.sn, o)
		if svc == nil {
			continue
		}
		stored, err := r.apply(ctx, st.sn, svc)
		if err != nil {
			return err
		}
		st.services[o] = stored.(*corev1.Service)
	}
	return nil
}

// ensurePodConfigs writes each pod's seed.yaml and hosted-vaults list.
func (r *SeedNodeReconciler) ensurePodConfigs(ctx context.Context, st *seedState) error {
	members := st.fleetMembers()
	if st.sn.Spec.Hosting.SelfService != nil && members == nil {
		return &invalidSpecError{fmt.Errorf("spec.hosting.selfService: every pod needs a TCP address for the fleet's members; " +
			"spec.expose.announce lists none with /tcp/ (add one, or drop announce to use the pods' Services)")}
	}
	for o := range st.configured() {
		_, vaults := podHosting(st.plan, o, st.addrsOf)
		plan := podPlan{Ordinal: o, Announce: st.announce(o), BootstrapPeers: st.bootstrapFor(o), Vaults: vaults,
			FleetMembers: members, FleetLeaving: st.fleetLeaving()}
		cfg, err := buildSeedConfig(st.sn, plan)
		if err != nil {
			return &invalidSpecError{fmt.Errorf("seed configuration of pod %s: %w", podName(st.sn, o), err)}
		}
		cm := buildPodConfigMap(st.sn, plan, cfg)
		if _, err := r.apply(ctx, st.sn, cm); err != nil {
			return err
		}
	}
	return nil
}

// templateSeedConfig is what the pods' config hash covers: pod 0's
// seed.yaml without what the seeds apply while they run or what differs by
// pod (its address, bootstrap peers and vaults; the fleet's membership:
// its members, how many are leaving and R, see seednode_fleet.go). members
// only lets the fleet section be written.
func templateSeedConfig(sn *seedv1.SeedNode, members []string) ([]byte, error) {
	data, err := buildSeedConfig(sn, podPlan{FleetMembers: members})
	if err != nil || sn.Spec.Hosting.SelfService == nil {
		return data, err
	}
	cfg, err := config.Parse(data)
	if err != nil {
		return nil, err
	}
	cfg.Fleet.Members, cfg.Fleet.Leaving, cfg.Fleet.Replicas = nil, 0, 0
	return cfg.Marshal()
}

// ensureStatefulSet runs the pods. Its template changes only when the seeds'
// spec-derived configuration does (not on scaling, not on placement).
func (r *SeedNodeReconciler) ensureStatefulSet(ctx context.Context, st *seedState) error {
	image := st.sn.Spec.Image
	if image == "" {
		image = r.SeedImage
	}
	if image == "" {
		return &invalidSpecError{fmt.Errorf("spec.image is empty and the operator has no --seed-image: set one of them")}
	}
	base, err := templateSeedConfig(st.sn, st.fleetMembers())
	if err != nil {
		return &invalidSpecError{err}
	}
	sts := buildStatefulSet(st.sn, image, st.replicas, configHash(base))
	if st.sn.Spec.Hosting.SelfService != nil {
		// What the pods are told, for planHandoff's next rounds.
		sts.Annotations = map[string]string{AnnotationFleetPods: strconv.Itoa(len(st.fleetMembers())),
			AnnotationFleetLeaving: strconv.Itoa(st.fleetLeaving())}
	}
	_, err = r.apply(ctx, st.sn, sts)
	return err
}

// ensurePDB lets voluntary disruptions take one pod at a time.
func (r *SeedNodeReconciler) ensurePDB(ctx context.Context, st *seedState) error {
	_, err := r.apply(ctx, st.sn, buildPDB(st.sn))
	return err
}

// announce is what pod o announces (no /p2p/): the spec's templates, else its
// Service's external or cluster address; nothing (its listen addresses) when
// pods have no Service.
func (st *seedState) announce(o int) []string {
	sn := st.sn
	if len(sn.Spec.Expose.Announce) > 0 {
		out := make([]string, 0, len(sn.Spec.Expose.Announce))
		r := strings.NewReplacer("{ordinal}", strconv.Itoa(o), "{pod}", podName(sn, o))
		for _, a := range sn.Spec.Expose.Announce {
			out = append(out, r.Replace(a))
		}
		return out
	}
	host := serviceHost(st.services[o])
	if host == "" {
		return nil
	}
	port := strconv.Itoa(int(portsOf(sn).p2p))
	return []string{host + "/tcp/" + port, host + "/udp/" + port + "/quic-v1"}
}

// serviceHost is the multiaddr prefix of a Service's reachable address: a
// load balancer's ingress once assigned, else the cluster IP.
func serviceHost(svc *corev1.Service) string {
	if svc == nil {
		return ""
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if in.IP != "" {
				return ipPrefix(in.IP)
			}
			if in.Hostname != "" {
				return "/dns/" + in.Hostname
			}
		}
	}
	if ip := svc.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
		return ipPrefix(ip)
	}
	return ""
}

func ipPrefix(ip string) string {
	if parsed := net.ParseIP(ip); parsed != nil && parsed.To4() == nil {
		return "/ip6/" + ip
	}
	return "/ip4/" + ip
}

// stableAddrs are pod o's full multiaddrs as the operator can compute them
// before the pod runs: its announce addresses, else its stable DNS name.
func (st *seedState) stableAddrs(o int) []string {
	id := st.peerIDs[o]
	if id == "" {
		return nil
	}
	base := st.announce(o)
	if len(base) == 0 {
		base = []string{fmt.Sprintf("/dns/%s.%s.%s.svc/tcp/%d", podName(st.sn, o), headlessServiceName(st.sn), st.sn.Namespace, portsOf(st.sn).p2p)}
	}
	out := make([]string, len(base))
	for i, a := range base {
		out[i] = a + "/p2p/" + id
	}
	return out
}

// addrsOf are pod o's full multiaddrs for its replica peers: what the pod
// reports (it knows its real addresses), else the computed ones.
func (st *seedState) addrsOf(o int) []string {
	if p := st.fleet.Pods[o]; p != nil && p.Status != nil && len(p.Status.Addrs) > 0 {
		return preferredAddrs(p.Status.Addrs)
	}
	return st.stableAddrs(o)
}

// maxAddrsPerPeer bounds how many of a pod's addresses are handed around.
const maxAddrsPerPeer = 4

// preferredAddrs keeps a pod's non-loopback addresses (all of them when
// every address is loopback, as in tests), at most maxAddrsPerPeer.
func preferredAddrs(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		if !strings.HasPrefix(a, "/ip4/127.") && !strings.HasPrefix(a, "/ip6/::1/") {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		out = addrs
	}
	if len(out) > maxAddrsPerPeer {
		out = out[:maxAddrsPerPeer]
	}
	return out
}

// bootstrapFor are the DHT bootstrap peers of pod o: its siblings' stable
// TCP addresses (the config must not change when pods merely restart).
func (st *seedState) bootstrapFor(o int) []string {
	var out []string
	for s := range int(st.sn.Spec.Replicas) {
		if s == o {
			continue
		}
		for _, a := range st.stableAddrs(s) {
			if strings.Contains(a, "/tcp/") {
				out = append(out, a)
				break
			}
		}
	}
	return out
}

// readPods reads every pod that has an IP, at most 8 at once.
func readPods(ctx context.Context, pc PodClient, sn *seedv1.SeedNode, pods map[int]*corev1.Pod, token string, now time.Time) *fleetView {
	fv := &fleetView{At: now, Pods: map[int]*podView{}}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, 8)
	)
	for o, pod := range pods {
		pv := &podView{Ordinal: o, Name: pod.Name, Exists: true}
		fv.Pods[o] = pv
		url := adminURL(pod, sn)
		if url == "" {
			pv.Err = "pod has no IP yet"
			continue
		}
		if !pod.DeletionTimestamp.IsZero() {
			pv.Err = "pod is terminating"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			status, err := pc.Status(ctx, url, token)
			if err != nil {
				mu.Lock()
				pv.Err = err.Error()
				mu.Unlock()
				return
			}
			hosted, err := pc.HostedVaults(ctx, url, token)
			var fleetStatus *admin.FleetStatus
			if sn.Spec.Hosting.SelfService != nil {
				// A pod that does not answer (restarting into the fleet)
				// is left out of the fleet's totals.
				if f, ferr := pc.Fleet(ctx, url, token); ferr == nil {
					fleetStatus = &f
				}
			}
			mu.Lock()
			defer mu.Unlock()
			pv.Status = &status
			pv.Fleet = fleetStatus
			if err != nil {
				pv.Err = err.Error()
				return
			}
			pv.Hosted = &hosted
		}()
	}
	wg.Wait()
	return fv
}
