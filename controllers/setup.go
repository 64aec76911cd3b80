/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"crypto/tls"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
)

// Client rate limits of the operator (controller-runtime's own defaults, 20
// and 30, make a thousand AgentVaults take minutes to place).
const (
	DefaultKubeAPIQPS   = 100
	DefaultKubeAPIBurst = 200
)

// DefaultMetricsBindAddress is where the operator serves its metrics, over
// HTTPS to authorized clients, as the kubebuilder scaffold does.
const DefaultMetricsBindAddress = ":8443"

// MetricsServerOptions serve the operator's metrics on addr ("0" turns them
// off). Secure (the default), they are served over HTTPS, with the
// certificate and key in certDir (tls.crt, tls.key; a cert-manager Secret
// mounted there) or else a self-signed one, and only to clients the API
// server authenticates (TokenReview) and authorizes (SubjectAccessReview for
// get on the non-resource URL /metrics, which the metrics-reader ClusterRole
// grants); the operator's ClusterRole may create both reviews. Insecure is
// plain HTTP without any check, for a local run.
func MetricsServerOptions(addr string, secure bool, certDir string) metricsserver.Options {
	opts := metricsserver.Options{BindAddress: addr, SecureServing: secure, CertDir: certDir}
	if secure {
		opts.FilterProvider = filters.WithAuthenticationAndAuthorization
		// HTTP/1.1 only, as the scaffold: HTTP/2's stream reset and
		// rapid reset attacks (CVE-2023-44487, CVE-2023-39325) cost a
		// server more than a metrics endpoint is worth.
		opts.TLSOpts = []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
	}
	return opts
}

// Options configure the operator's reconcilers.
type Options struct {
	// SeedImage runs seed pods whose SeedNode names no image.
	SeedImage string
	// Pods talks to the pods' admin API; nil uses NewPodClient.
	Pods PodClient
	// PollInterval between reads of healthy pods; 0 uses DefaultPollInterval.
	PollInterval time.Duration
}

// CacheOptions keep the manager's cache to what the operator owns: Pods,
// Services, ConfigMaps, Secrets, StatefulSets and PodDisruptionBudgets
// labelled with a SeedNode. The operator never holds other Secrets in memory.
func CacheOptions() cache.Options {
	req, err := labels.NewRequirement(LabelSeedNode, selection.Exists, nil)
	if err != nil {
		panic(err)
	}
	owned := cache.ByObject{Label: labels.NewSelector().Add(*req)}
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Pod{}:                   owned,
		&corev1.Service{}:               owned,
		&corev1.ConfigMap{}:             owned,
		&corev1.Secret{}:                owned,
		&appsv1.StatefulSet{}:           owned,
		&policyv1.PodDisruptionBudget{}: owned,
	}}
}

// Setup registers the field index and both reconcilers with mgr.
func Setup(ctx context.Context, mgr ctrl.Manager, opts Options) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &seedv1.AgentVault{}, indexSeedNodeRef, func(o client.Object) []string {
		return []string{o.(*seedv1.AgentVault).Spec.SeedNodeRef.Name}
	}); err != nil {
		return err
	}
	fleets := newFleetCache()
	sn := &SeedNodeReconciler{Client: mgr.GetClient(), SeedImage: opts.SeedImage, Pods: opts.Pods, PollInterval: opts.PollInterval}
	if err := sn.SetupWithManager(mgr, fleets); err != nil {
		return err
	}
	av := &AgentVaultReconciler{Client: mgr.GetClient(), Pods: opts.Pods, PollInterval: opts.PollInterval}
	return av.SetupWithManager(mgr, fleets)
}
