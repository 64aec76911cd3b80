/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package controllers

// The operator's permissions, least privilege: it manages the children of
// SeedNodes in their namespaces, reads pods to reach their admin API, and
// records events; its metrics endpoint asks the API server who a scraper is
// and whether it may read /metrics. controller-gen turns these markers into config/rbac.
//
// +kubebuilder:rbac:groups=seedfleet.io,resources=seednodes;agentvaults,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=seedfleet.io,resources=seednodes/status;agentvaults/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=seedfleet.io,resources=seednodes/finalizers;agentvaults/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=core,resources=services;configmaps;secrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=core,resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=core,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
