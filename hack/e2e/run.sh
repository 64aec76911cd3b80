#!/usr/bin/env bash
# The end-to-end suite on a real single-node Kubernetes (`make test-e2e`).
#
#   hack/e2e/run.sh [go test flags for the suite, e.g. -test.run TestX]
#
# Installs containerd, runc, the CNI plugins, iptables and openssl from
# Debian when missing; builds kube-apiserver, etcd, kubectl and helm
# (hack/envtest-assets.sh) and the node components (hack/e2e/kube-binaries.sh)
# from the Go module proxy, cached by version; builds the seedfleet image and
# a pause image as OCI archives from static binaries (no registry, no base
# image); brings a cluster up inside its own network namespace
# (hack/e2e/cluster.sh) and runs test/e2e there. On failure it prints the
# components' logs and the cluster's state. The exit trap tears the cluster
# down and then checks that nothing is left: no process, mount, network
# link or namespace, iptables rule, cgroup or kernel setting from the run.
#
# Needs root. Cold on 2 cores: about 20 minutes (mostly building
# Kubernetes); warm: about 3.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
repo=$(pwd)

log() { echo "e2e: $*" >&2; }

[ "$(id -u)" = 0 ] || {
	log "needs root: it creates a network namespace, mounts and cgroups"
	exit 1
}

packages() {
	local missing=()
	command -v containerd >/dev/null || missing+=(containerd)
	command -v runc >/dev/null || missing+=(runc)
	[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
	command -v iptables >/dev/null || missing+=(iptables)
	command -v openssl >/dev/null || missing+=(openssl)
	command -v ip >/dev/null || missing+=(iproute2)
	command -v nsenter >/dev/null || missing+=(util-linux)
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Packages are installed, never started: the cluster runs its own
	# containerd with its own configuration.
	local rc_policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		rc_policy=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\nexit 101\n' >"$rc_policy"
		chmod +x "$rc_policy"
	fi
	local ok=0
	apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; } || ok=$?
	[ -z "$rc_policy" ] || rm -f "$rc_policy"
	return "$ok"
}

# snapshot FILE records what the leak check compares. Paths that do not
# exist yet are simply absent from it.
snapshot() {
	{
		set +e
		echo "## links"
		ip -o link show | awk -F': ' '{print $2}' | sort
		echo "## netns"
		ip netns list | sort
		echo "## iptables"
		iptables -S 2>/dev/null | sort
		iptables -t nat -S 2>/dev/null | sort
		ip6tables -S 2>/dev/null | sort
		echo "## mounts"
		awk '{print $2}' /proc/mounts | sort
		echo "## cgroups"
		# Groups at the top of each hierarchy, and those under kubepods
		# (the kubelet's). Deeper groups of other parents belong to other
		# programs on the machine, which come and go while the suite runs.
		find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d \( ! -path '/sys/fs/cgroup/*/*/*' -o -path '*/kubepods/*' \) 2>/dev/null | sort
		echo "## files"
		find /run/containerd /run/netns /var/lib/cni /var/log/containers /var/log/pods 2>/dev/null | sort
		echo "## kernel"
		for t in vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops \
			kernel/keys/root_maxkeys kernel/keys/root_maxbytes net/ipv4/ip_forward; do
			echo "$t=$(cat "/proc/sys/$t")"
		done
		set -e
	} >"$1"
}

packages
t0=$SECONDS
ENVTEST_ASSETS=$(bash hack/envtest-assets.sh)
KUBE_BINARIES=$(bash hack/e2e/kube-binaries.sh)
export ENVTEST_ASSETS KUBE_BINARIES
log "Kubernetes binaries ready after $((SECONDS - t0))s"

dir=$(mktemp -d /tmp/seedfleet-e2e.XXXXXX)
# Pods (user 65532) reach their hostPath volumes under it.
chmod 0755 "$dir"
mkdir -p "$dir/bin" "$dir/images" "$dir/artifacts" "$dir/home"
snapshot "$dir/before"

finish() {
	local rc=$?
	set +e
	if [ "$rc" -ne 0 ]; then
		log "FAILED (exit $rc); diagnostics follow"
		# The suite has printed the pods' logs, events and objects; these are
		# the cluster's own components.
		bash hack/e2e/cluster.sh diagnose "$dir"
	fi
	bash hack/e2e/cluster.sh down "$dir"
	snapshot "$dir/after"
	if ! diff -u "$dir/before" "$dir/after" >"$dir/leaks"; then
		log "the run left something behind:"
		cat "$dir/leaks" >&2
		[ "$rc" -ne 0 ] || rc=1
	fi
	local left
	left=$(pgrep -f "$dir/" || true)
	if [ -n "$left" ]; then
		log "processes left: $left"
		[ "$rc" -ne 0 ] || rc=1
	fi
	if [ "$rc" -eq 0 ]; then
		log "nothing left behind; passed in ${SECONDS}s"
	fi
	rm -rf "$dir"
	exit "$rc"
}
trap finish EXIT

log "building the binaries and images"
export CGO_ENABLED=0
go build -trimpath -ldflags "-s -w" -o "$dir/bin/seedfleet" .
go build -trimpath -ldflags "-s -w" -o "$dir/bin/pause" ./hack/e2e/pause
go run ./hack/e2e/ociimage -binary "$dir/bin/seedfleet" -path /seedfleet \
	-name docker.io/library/seedfleet:e2e -o "$dir/images/seedfleet.tar"
go run ./hack/e2e/ociimage -binary "$dir/bin/pause" -path /pause \
	-name docker.io/library/seedfleet-pause:e2e -o "$dir/images/pause.tar"
go test -c -tags e2e -o "$dir/bin/e2e.test" ./test/e2e

bash hack/e2e/cluster.sh up "$dir"

log "running the suite"
bash hack/e2e/cluster.sh exec "$dir" env \
	E2E_KUBECONFIG="$dir/pki/admin.kubeconfig" \
	E2E_KUBECTL="$ENVTEST_ASSETS/kubectl" \
	E2E_HELM="$ENVTEST_ASSETS/helm" \
	E2E_SEEDFLEET="$dir/bin/seedfleet" \
	E2E_IMAGE_REPOSITORY=seedfleet \
	E2E_IMAGE_TAG=e2e \
	E2E_CHART="$repo/charts/seedfleet" \
	E2E_ARTIFACTS="$dir/artifacts" \
	HOME="$dir/home" \
	"$dir/bin/e2e.test" -test.v -test.timeout 20m "$@"
