/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

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

// adminURL is where a pod's admin API answers: its pod IP and the admin port.
func adminURL(pod *corev1.Pod, port int32) string {
	if pod == nil || pod.Status.PodIP == "" {
		return ""
	}
	return "http://" + net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(port)))
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

// fleetCache holds the newest fleetView per SeedNode.
type fleetCache struct {
	mu sync.RWMutex
	m  map[types.NamespacedName]*fleetView
}

func newFleetCache() *fleetCache { return &fleetCache{m: map[types.NamespacedName]*fleetView{}} }

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
}
