/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
	"github.com/seedfleet/seedfleet/seednode/admin"
)

// PodClient is how the operator talks to a seed pod's admin API. The
// default, NewPodClient, uses seednode/admin with timeouts and retries.
type PodClient interface {
	// Status reads the pod's /status (peer ID, addresses, hosted vaults).
	Status(ctx context.Context, baseURL, token string) (admin.Status, error)
	// HostedVaults reads the hosted list the pod runs with.
	HostedVaults(ctx context.Context, baseURL, token string) (admin.HostedVaults, error)
	// SetHostedVaults replaces it (within seconds, no restart).
	SetHostedVaults(ctx context.Context, baseURL, token string, hv admin.HostedVaults) error
	// Fleet reads the pod's part of its public fleet (GET /v1/fleet).
	Fleet(ctx context.Context, baseURL, token string) (admin.FleetStatus, error)
	// SetFleetMembers gives a public fleet's pod its membership (within
	// seconds, no restart) and returns the version it places by.
	SetFleetMembers(ctx context.Context, baseURL, token string, m admin.FleetMembers) (string, error)
}

// Timeouts of the default PodClient: a slow pod must not stall a reconcile.
const (
	podRequestTimeout = 3 * time.Second
	podAttempts       = 2
	podBackoff        = 200 * time.Millisecond
)

type adminPodClient struct{ hc *http.Client }

// NewPodClient returns the default PodClient.
func NewPodClient() PodClient {
	return adminPodClient{hc: &http.Client{
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (c adminPodClient) client(baseURL, token string) *admin.Client {
	return admin.NewClient(baseURL, admin.WithToken(token), admin.WithHTTPClient(c.hc),
		admin.WithTimeout(podRequestTimeout), admin.WithRetry(podAttempts, podBackoff))
}

func (c adminPodClient) Status(ctx context.Context, baseURL, token string) (admin.Status, error) {
	return c.client(baseURL, token).Status(ctx)
}

func (c adminPodClient) HostedVaults(ctx context.Context, baseURL, token string) (admin.HostedVaults, error) {
	return c.client(baseURL, token).HostedVaults(ctx)
}

func (c adminPodClient) SetHostedVaults(ctx context.Context, baseURL, token string, hv admin.HostedVaults) error {
	return c.client(baseURL, token).SetHostedVaults(ctx, hv)
}

func (c adminPodClient) Fleet(ctx context.Context, baseURL, token string) (admin.FleetStatus, error) {
	return c.client(baseURL, token).Fleet(ctx)
}

func (c adminPodClient) SetFleetMembers(ctx context.Context, baseURL, token string, m admin.FleetMembers) (string, error) {
	return c.client(baseURL, token).SetFleetMembers(ctx, m)
}

// adminURL is where a pod's admin API answers: its pod IP and sn's admin port.
func adminURL(pod *corev1.Pod, sn *seedv1.SeedNode) string {
	if pod == nil || pod.Status.PodIP == "" {
		return ""
	}
	return "http://" + net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(portsOf(sn).admin)))
}

// adminToken reads the token the pods' admin API wants for changes ("" when
// the Secret does not exist yet).
func adminToken(ctx context.Context, c client.Reader, sn *seedv1.SeedNode) (string, error) {
	s := &corev1.Secret{}
	err := c.Get(ctx, types.NamespacedName{Namespace: sn.Namespace, Name: adminTokenSecretName(sn)}, s)
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the admin token: %w", err)
	}
	return strings.TrimSpace(string(s.Data[keyAdminToken])), nil
}

// podView is what one reconcile learned about one pod.
type podView struct {
	Ordinal int
	Name    string
	// Exists is true when the Pod object exists.
	Exists bool
	// Status is the pod's /status, nil when it could not be read.
	Status *admin.Status
	// Hosted is the pod's hosted list, nil when it could not be read.
	Hosted *admin.HostedVaults
	// Fleet is the pod's part of its public fleet, nil without
	// selfService or when it could not be read.
	Fleet *admin.FleetStatus
	// Err says why the pod could not be read.
	Err string
}

// vault returns the pod's status of vault ns, or nil.
func (p *podView) vault(ns string) *admin.VaultStatus {
	if p == nil || p.Status == nil {
		return nil
	}
	for i := range p.Status.Vaults {
		if p.Status.Vaults[i].Namespace == ns {
			return &p.Status.Vaults[i]
		}
	}
	return nil
}

// hosts reports whether the pod said it hosts ns.
func (p *podView) hosts(ns string) bool {
	if p == nil || p.Hosted == nil {
		return false
	}
	for _, v := range p.Hosted.Vaults {
		if v == ns {
			return true
		}
	}
	return false
}

// fleetView is a SeedNode's pods as last read, shared between the SeedNode
// reconciler (which reads the pods) and the AgentVault reconciler (which
// reports per-vault state from it without asking the pods again).
type fleetView struct {
	At   time.Time
	Pods map[int]*podView
}

// fleetCache holds the newest fleetView per SeedNode, and the parsed
// hosted-vaults list of every pod ConfigMap by resourceVersion, so that the
// reconciles of a thousand AgentVaults do not parse the same lists again.
type fleetCache struct {
	mu sync.RWMutex
	m  map[types.NamespacedName]*fleetView

	listsMu sync.Mutex
	lists   map[types.NamespacedName]parsedList
}

type parsedList struct {
	resourceVersion string
	vaults          map[string]bool
}

func newFleetCache() *fleetCache {
	return &fleetCache{m: map[types.NamespacedName]*fleetView{}, lists: map[types.NamespacedName]parsedList{}}
}

// published returns, per ordinal, the vaults each pod of sn was last told
// to host (its ConfigMap's list). The sets are shared: callers only read them.
func (c *fleetCache) published(ctx context.Context, r client.Reader, sn *seedv1.SeedNode) (map[int]map[string]bool, error) {
	list := &corev1.ConfigMapList{}
	if err := r.List(ctx, list, client.InNamespace(sn.Namespace), client.MatchingLabels{LabelSeedNode: sn.Name}); err != nil {
		return nil, fmt.Errorf("listing pod ConfigMaps: %w", err)
	}
	out := map[int]map[string]bool{}
	c.listsMu.Lock()
	defer c.listsMu.Unlock()
	for i := range list.Items {
		cm := &list.Items[i]
		o := ordinalOf(sn, cm.Labels[LabelPod])
		if o < 0 || cm.Name != podConfigMapName(sn, o) {
			continue
		}
		key := client.ObjectKeyFromObject(cm)
		p, ok := c.lists[key]
		if !ok || p.resourceVersion != cm.ResourceVersion {
			p = parsedList{resourceVersion: cm.ResourceVersion, vaults: parseVaultsFile([]byte(cm.Data[keyVaults]))}
			c.lists[key] = p
		}
		out[o] = p.vaults
	}
	return out, nil
}

func (c *fleetCache) get(key types.NamespacedName) *fleetView {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[key]
}

func (c *fleetCache) put(key types.NamespacedName, v *fleetView) {
	c.mu.Lock()
	c.m[key] = v
	c.mu.Unlock()
}

func (c *fleetCache) forget(key types.NamespacedName) {
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
	c.listsMu.Lock()
	for k := range c.lists {
		if k.Namespace == key.Namespace && strings.HasPrefix(k.Name, key.Name+"-") {
			delete(c.lists, k)
		}
	}
	c.listsMu.Unlock()
}
