/*
Copyright 2026 The Seedfleet Authors.

SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"strconv"
	"strings"

	seedv1 "github.com/seedfleet/seedfleet/api/v1alpha1"
)

// Names and labels of a SeedNode's children. The StatefulSet is named like
// the SeedNode, so its pods are NAME-0, NAME-1, ...; every per-pod child is
// named after its pod.
const (
	// LabelSeedNode marks every child of a SeedNode (and selects its pods).
	LabelSeedNode = "seedfleet.io/seednode"
	// LabelPod marks a per-pod child (Service, identity Secret, ConfigMap)
	// with its pod's name; per-pod Services select their pod with the
	// StatefulSet's pod-name label.
	LabelPod = "seedfleet.io/pod"
	// LabelComponent distinguishes seed pods from the operator.
	LabelComponent = "app.kubernetes.io/component"
	// AnnotationConfigHash on the pod template restarts the pods when their
	// configuration changes.
	AnnotationConfigHash = "seedfleet.io/config-hash"
	// FinalizerAgentVault holds an AgentVault until its replicas are dropped.
	FinalizerAgentVault = "seedfleet.io/drop-replicas"

	// Mount points inside a seed pod.
	dataMountPath  = "/data"
	podsMountPath  = "/etc/seedfleet/pods"
	tokenMountPath = "/etc/seedfleet/admin"
	// Every pod's identity Secret, mounted in the init container only, and
	// the pod's own key, which it copies to where the seed reads it.
	identitiesMountPath = "/etc/seedfleet/identities"
	identityMountPath   = "/etc/seedfleet/identity"

	// Keys of the per-pod ConfigMap and identity Secret, and of the token Secret.
	keySeedConfig  = "seed.yaml"
	keyVaults      = "vaults"
	keyIdentity    = "identity.key"
	keyAdminToken  = "token"
	seedContainer  = "seed"
	keyContainer   = "install-key"
	dataVolumeName = "data"
)

func statefulSetName(sn *seedv1.SeedNode) string { return sn.Name }
func headlessServiceName(sn *seedv1.SeedNode) string {
	return sn.Name + "-peers"
}
func podName(sn *seedv1.SeedNode, ordinal int) string { return sn.Name + "-" + strconv.Itoa(ordinal) }

// podConfigMapName holds a pod's seed.yaml and hosted-vaults list.
func podConfigMapName(sn *seedv1.SeedNode, ordinal int) string {
	return podName(sn, ordinal) + "-config"
}

// identitySecretName holds a pod's libp2p identity key. It outlives the pod
// (and scale-downs): only deleting the SeedNode deletes it.
func identitySecretName(sn *seedv1.SeedNode, ordinal int) string {
	return podName(sn, ordinal) + "-identity"
}

// adminTokenSecretName holds the bearer token of the pods' admin API.
func adminTokenSecretName(sn *seedv1.SeedNode) string { return sn.Name + "-admin-token" }

// podServiceName is the per-pod Service.
func podServiceName(sn *seedv1.SeedNode, ordinal int) string { return podName(sn, ordinal) }

func pdbName(sn *seedv1.SeedNode) string { return sn.Name }

// ordinalOf returns the ordinal of a pod name of sn, or -1.
func ordinalOf(sn *seedv1.SeedNode, pod string) int {
	rest, ok := strings.CutPrefix(pod, sn.Name+"-")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || strconv.Itoa(n) != rest {
		return -1
	}
	return n
}

// seedLabels are the labels of sn's pods and children.
func seedLabels(sn *seedv1.SeedNode) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":       "seedfleet",
		"app.kubernetes.io/instance":   sn.Name,
		"app.kubernetes.io/managed-by": "seedfleet-operator",
		LabelComponent:                 "seed",
		LabelSeedNode:                  sn.Name,
	}
}

// podLabels are seedLabels plus the pod a per-pod child belongs to.
func podLabels(sn *seedv1.SeedNode, ordinal int) map[string]string {
	l := seedLabels(sn)
	l[LabelPod] = podName(sn, ordinal)
	return l
}

// selectorLabels select sn's pods.
func selectorLabels(sn *seedv1.SeedNode) map[string]string {
	return map[string]string{LabelSeedNode: sn.Name, LabelComponent: "seed"}
}
