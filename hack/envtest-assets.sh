#!/usr/bin/env bash
# Builds the binaries the controller tests need — kube-apiserver, kubectl,
# etcd and helm — from the Go module proxy, and caches them by version.
#
#   hack/envtest-assets.sh          build what is missing, print the directory
#
# The directory printed on the last line is what KUBEBUILDER_ASSETS should
# point at. Nothing is fetched except Go modules: Kubernetes is built through
# a wrapper module that replaces each staging module (which kubernetes' own
# go.mod maps to ./staging/...) with its published v0 release of the same
# minor version; etcd through a wrapper that undoes its ../ replaces.
#
# A cold build takes several minutes on 2 cores; a warm cache returns at once.
# Binaries are checked by running them (`--version`), never by file presence
# alone, so an interrupted build is redone.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.1}"
ETCD_VERSION="${ETCD_VERSION:-3.7.3}"
HELM_VERSION="${HELM_VERSION:-4.3.1}"

cache_root="${SEEDFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/seedfleet}"
assets="${cache_root}/envtest/k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}-helm-${HELM_VERSION}"
mkdir -p "$assets"
# One build at a time: test packages may call this script concurrently.
exec 9>"${assets}.lock"
flock 9

export CGO_ENABLED=0
export GOFLAGS=-mod=mod
# The wrappers must not pick up this repository's go.work or toolchain pins.
export GOWORK=off

log() { echo "envtest-assets: $*" >&2; }

# shellcheck source=hack/kube-wrapper.sh
. "$(dirname "${BASH_SOURCE[0]}")/kube-wrapper.sh"

have() { # have BINARY VERSION-SUBSTRING ARGS...
	local bin="$assets/$1" want="$2"
	shift 2
	[ -x "$bin" ] && "$bin" "$@" 2>/dev/null | grep -q -- "$want"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build_kubernetes() {
	local dir="$work/k8s"
	mkdir -p "$dir"
	log "building kube-apiserver and kubectl v${K8S_VERSION} from the module proxy (cold: about 6 min)"
	kube_wrapper_module "$dir" seedfleet.io/envtest-wrapper
	(
		cd "$dir"
		local ldflags
		ldflags=$(kube_ldflags)
		go build -trimpath -ldflags "$ldflags" -o "$assets/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
		go build -trimpath -ldflags "$ldflags" -o "$assets/kubectl" k8s.io/kubernetes/cmd/kubectl
	)
}

build_etcd() {
	local dir="$work/etcd" v="v${ETCD_VERSION}"
	mkdir -p "$dir"
	log "building etcd ${v} from the module proxy"
	cat >"$dir/go.mod" <<EOF
module seedfleet.io/etcd-wrapper

go $(go env GOVERSION | sed 's/^go//; s/\([0-9]*\.[0-9]*\).*/\1/')

replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 ${v}
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 ${v}
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 ${v}
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 ${v}
)
EOF
	(
		cd "$dir"
		go get "go.etcd.io/etcd/server/v3@${v}" >/dev/null
		go build -trimpath -ldflags "-s -w" -o "$assets/etcd" go.etcd.io/etcd/server/v3
	)
}

build_helm() {
	log "building helm v${HELM_VERSION} from the module proxy"
	GOBIN="$assets" go install -trimpath \
		-ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=v${HELM_VERSION}" \
		"helm.sh/helm/v4/cmd/helm@v${HELM_VERSION}"
}

have kube-apiserver "v${K8S_VERSION}" --version && have kubectl "v${K8S_VERSION}" version --client || build_kubernetes
have etcd "${ETCD_VERSION}" --version || build_etcd
have helm "v${HELM_VERSION}" version --short || build_helm

for bin in kube-apiserver kubectl etcd helm; do
	[ -x "$assets/$bin" ] || {
		log "$bin missing after the build"
		exit 1
	}
done
echo "$assets"
