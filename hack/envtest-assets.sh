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
# A cold build takes about 8 minutes on 2 cores and prints each step ("[2/6]
# building kube-apiserver") and, every 30 s, how many packages it compiled;
# a warm cache returns at once, silently.
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
	local bin="$assets/$1" want="$2" out
	shift 2
	# Output captured first: `| grep -q` exits at the first match, and with
	# pipefail the binary's SIGPIPE on its next line (kubectl prints three)
	# would count as "missing" and rebuild a cached binary now and then.
	[ -x "$bin" ] && out=$("$bin" "$@" 2>/dev/null) && grep -q -- "$want" <<<"$out"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build_kubernetes() {
	local dir="$work/k8s"
	mkdir -p "$dir"
	step log "downloading Kubernetes v${K8S_VERSION} modules from the module proxy"
	kube_wrapper_module "$dir" seedfleet.io/envtest-wrapper
	local ldflags
	ldflags=$(kube_ldflags)
	step log "building kube-apiserver v${K8S_VERSION} (cold: about 5 min on 2 cores)"
	go -C "$dir" build -v -trimpath -ldflags "$ldflags" -o "$assets/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver 2>&1 |
		go_progress "envtest-assets: kube-apiserver"
	step log "building kubectl v${K8S_VERSION} (about 1 min after kube-apiserver)"
	go -C "$dir" build -v -trimpath -ldflags "$ldflags" -o "$assets/kubectl" k8s.io/kubernetes/cmd/kubectl 2>&1 |
		go_progress "envtest-assets: kubectl"
}

build_etcd() {
	local dir="$work/etcd" v="v${ETCD_VERSION}"
	mkdir -p "$dir"
	step log "building etcd ${v} from the module proxy (about 1 min)"
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
		go build -v -trimpath -ldflags "-s -w" -o "$assets/etcd" go.etcd.io/etcd/server/v3 2>&1 |
			go_progress "envtest-assets: etcd"
	)
}

build_helm() {
	step log "building helm v${HELM_VERSION} from the module proxy (about 1 min)"
	GOBIN="$assets" go install -v -trimpath \
		-ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=v${HELM_VERSION}" \
		"helm.sh/helm/v4/cmd/helm@v${HELM_VERSION}" 2>&1 |
		go_progress "envtest-assets: helm"
}

need=()
have kube-apiserver "v${K8S_VERSION}" --version && have kubectl "v${K8S_VERSION}" version --client || need+=(kubernetes)
have etcd "${ETCD_VERSION}" --version || need+=(etcd)
have helm "v${HELM_VERSION}" version --short || need+=(helm)

# Steps: kubernetes is three (modules, kube-apiserver, kubectl), the others one.
step_no=0
step_count=0
for n in "${need[@]}"; do
	if [ "$n" = kubernetes ]; then step_count=$((step_count + 3)); else step_count=$((step_count + 1)); fi
done
if [ "$step_count" -gt 0 ]; then
	log "building ${need[*]} (cold, all of it: about 8 min on 2 cores; cached afterwards in $assets)"
fi
started=$SECONDS
for n in "${need[@]}"; do
	"build_$n"
done
if [ "$step_count" -gt 0 ]; then
	log "done in $(((SECONDS - started) / 60))m$(((SECONDS - started) % 60))s"
fi

for bin in kube-apiserver kubectl etcd helm; do
	[ -x "$assets/$bin" ] || {
		log "$bin missing after the build"
		exit 1
	}
done
echo "$assets"
