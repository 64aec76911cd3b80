#!/usr/bin/env bash
# Builds the node half of Kubernetes for the e2e cluster — kube-controller-manager,
# kube-scheduler, kubelet and kube-proxy — as one multicall binary from the Go
# module proxy, and caches it by version. The control plane's kube-apiserver,
# etcd, kubectl and helm come from hack/envtest-assets.sh (same Kubernetes
# version), so the two builds share Go's build cache.
#
#   hack/e2e/kube-binaries.sh      build what is missing, print the directory
#
# The directory printed on the last line holds `kube` and one symlink per
# component; the binary picks the component from the name it was run as
# (or from its first argument: `kube kubelet --help`).
# Cold: 20-25 minutes on 2 cores (less after the envtest build, whose build
# cache it shares), with a line per step and, every 30 s, how many packages
# are compiled; warm: instant.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.1}"

cache_root="${SEEDFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/seedfleet}"
dir="${cache_root}/e2e/kube-${K8S_VERSION}"
mkdir -p "$dir"
exec 9>"${dir}.lock"
flock 9

log() { echo "kube-binaries: $*" >&2; }

# shellcheck source=hack/kube-wrapper.sh
. "$(dirname "${BASH_SOURCE[0]}")/../kube-wrapper.sh"

components=(kube-controller-manager kube-scheduler kubelet kube-proxy)

have() {
	[ -x "$dir/kube" ] || return 1
	local c
	for c in "${components[@]}"; do
		"$dir/$c" --version 2>/dev/null | grep -q -- "v${K8S_VERSION}\$" || return 1
	done
}

build() {
	local work
	work=$(mktemp -d)
	# shellcheck disable=SC2064 # expand now: $work is local
	trap "rm -rf '$work'" RETURN
	export CGO_ENABLED=0 GOFLAGS=-mod=mod GOWORK=off
	local step_no=0 step_count=3 step_start=$SECONDS started=$SECONDS
	log "building ${components[*]} v${K8S_VERSION} as one binary (cold: 20-25 min on 2 cores, fewer after the envtest build; cached afterwards in $dir)"
	step log "downloading Kubernetes v${K8S_VERSION} modules from the module proxy"
	kube_wrapper_module "$work" seedfleet.io/kube-multicall
	cat >"$work/main.go" <<'GO'
// One binary for the node components; argv[0] (or argv[1]) picks which.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	_ "time/tzdata"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	commands := map[string]func() *cobra.Command{
		"kube-controller-manager": controllermanager.NewControllerManagerCommand,
		"kube-scheduler":          func() *cobra.Command { return scheduler.NewSchedulerCommand() },
		"kubelet":                 func() *cobra.Command { return kubelet.NewKubeletCommand(context.Background()) },
		"kube-proxy":              proxy.NewProxyCommand,
	}
	name := filepath.Base(os.Args[0])
	if _, ok := commands[name]; !ok && len(os.Args) > 1 {
		name = os.Args[1]
		os.Args = os.Args[1:]
	}
	newCommand, ok := commands[name]
	if !ok {
		fmt.Fprintln(os.Stderr, "usage: kube kube-controller-manager|kube-scheduler|kubelet|kube-proxy [flags]")
		os.Exit(2)
	}
	os.Exit(cli.Run(newCommand()))
}
GO
	step log "resolving the components' dependencies (go mod tidy)"
	go -C "$work" mod tidy >/dev/null
	step log "compiling ${components[*]} (the long step)"
	go -C "$work" build -v -trimpath -ldflags "$(kube_ldflags)" -o "$dir/kube.new" . 2>&1 |
		go_progress "kube-binaries: kube"
	log "done in $(((SECONDS - started) / 60))m$(((SECONDS - started) % 60))s"
	mv "$dir/kube.new" "$dir/kube"
	local c
	for c in "${components[@]}"; do
		ln -sfn kube "$dir/$c"
	done
}

have || build
have || {
	log "the built binary does not report v${K8S_VERSION}"
	exit 1
}
echo "$dir"
