#!/usr/bin/env bash
# A single-node Kubernetes cluster inside a network namespace, for the e2e
# suite. Needs root, containerd, runc, the CNI plugins, iptables and openssl
# (hack/e2e/run.sh installs them from Debian).
#
#   hack/e2e/cluster.sh up DIR      start a cluster; its state lives in DIR
#   hack/e2e/cluster.sh down DIR    stop it and remove every trace
#   hack/e2e/cluster.sh exec DIR CMD...   run CMD inside the cluster's network
#   hack/e2e/cluster.sh diagnose DIR      print component logs and state
#
# The network rule for tests: traffic goes only to loopback or to namespaces
# the test made. So everything — etcd, kube-apiserver, the controllers,
# kubelet, containerd, kube-proxy, the pods and the test itself — runs in a
# network namespace this script creates, which has no route out: the node's
# address sits on a veth pair whose both ends are inside it, and the only
# routes are the node subnet, the service range and the pod bridge. The
# bridge plugin masquerades nothing (ipMasq false) and a FORWARD rule drops
# any pod packet not bound for the pod range.
#
# Processes run with `nsenter --net` only: they share the host's mount
# namespace, so the kubelet's volume mounts are visible to containerd.
# `down` stops processes by recorded PID, kills and deletes the containerd
# tasks (their shims would outlive containerd), unmounts everything under
# DIR and the pod network namespaces, deletes the namespace (and with it the
# links, bridge and iptables chains inside it), removes the kubepods cgroups,
# puts back the kernel settings the kubelet changes, and removes files the
# kubelet and CNI leave outside DIR.
set -euo pipefail

: "${ENVTEST_ASSETS:?set ENVTEST_ASSETS to the directory from hack/envtest-assets.sh}"
: "${KUBE_BINARIES:?set KUBE_BINARIES to the directory from hack/e2e/kube-binaries.sh}"

NODE_NAME=e2e-node
NODE_IP=10.203.0.2
NODE_CIDR=10.203.0.0/24
POD_CIDR=10.244.0.0/24
POD_GATEWAY=10.244.0.1
SERVICE_CIDR=10.96.0.0/16
API_SERVICE_IP=10.96.0.1
# Image names the cluster knows without a registry.
PAUSE_IMAGE=docker.io/library/seedfleet-pause:e2e
# Kernel settings the kubelet rewrites (container_manager_linux.go); saved at
# `up`, restored at `down`.
KERNEL_TUNABLES=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes)

log() { echo "cluster: $*" >&2; }

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || {
	echo "usage: $0 up|down|exec|diagnose DIR [CMD...]" >&2
	exit 2
}
dir=$(cd "$dir" && pwd)
netns_file="$dir/netns"

in_ns() { nsenter --net="/run/netns/$(cat "$netns_file")" "$@"; }

# start NAME CMD... runs CMD in the namespace, logging to DIR/logs/NAME.log,
# and records its PID in DIR/pids/NAME.
start() {
	local name=$1
	shift
	# nsenter execs CMD, so $! is CMD's own PID (a function here would put a
	# subshell in between, and stopping it would orphan CMD).
	nsenter --net="/run/netns/$(cat "$netns_file")" "$@" >"$dir/logs/$name.log" 2>&1 &
	echo $! >"$dir/pids/$name"
}

# wait_for WHAT SECONDS CMD... polls CMD every half second.
wait_for() {
	local what=$1 deadline=$((SECONDS + $2))
	shift 2
	until "$@" >/dev/null 2>&1; do
		if [ $SECONDS -ge $deadline ]; then
			log "timed out waiting for $what"
			return 1
		fi
		sleep 0.5
	done
	log "$what: ready after ${SECONDS}s"
}

kubectl_() { in_ns "$ENVTEST_ASSETS/kubectl" --kubeconfig "$dir/pki/admin.kubeconfig" "$@"; }

pki() {
	local p="$dir/pki"
	mkdir -p "$p"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=seedfleet-e2e-ca" -keyout "$p/ca.key" -out "$p/ca.crt" 2>/dev/null
	# cert NAME SUBJECT [SANS]
	cert() {
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" \
			-keyout "$p/$1.key" -out "$p/$1.csr" 2>/dev/null
		local ext="$p/$1.ext"
		echo "basicConstraints=CA:FALSE" >"$ext"
		if [ -n "${3:-}" ]; then
			echo "subjectAltName=$3" >>"$ext"
			echo "extendedKeyUsage=serverAuth" >>"$ext"
		else
			echo "extendedKeyUsage=clientAuth" >>"$ext"
		fi
		openssl x509 -req -in "$p/$1.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial \
			-days 2 -extfile "$ext" -out "$p/$1.crt" 2>/dev/null
	}
	cert apiserver "/CN=kube-apiserver" \
		"IP:$NODE_IP,IP:$API_SERVICE_IP,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost"
	# One cluster-admin identity for every component and the test: this
	# cluster exists for one test run, inside its own namespace.
	cert admin "/O=system:masters/CN=seedfleet-e2e-admin"
	openssl genrsa -out "$p/sa.key" 2048 2>/dev/null
	openssl rsa -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
	cat >"$p/admin.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: https://$NODE_IP:6443
    certificate-authority: $p/ca.crt
users:
- name: admin
  user:
    client-certificate: $p/admin.crt
    client-key: $p/admin.key
contexts:
- name: e2e
  context: {cluster: e2e, user: admin}
current-context: e2e
EOF
}

configs() {
	mkdir -p "$dir/config" "$dir/cni/net.d" "$dir/cni/ipam" "$dir/pod-logs"
	cat >"$dir/config/containerd.toml" <<EOF
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$dir/containerd/containerd.sock"
[ttrpc]
  address = "$dir/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # The pause container's oom_score_adj needs CAP_SYS_RESOURCE, which this
  # machine's root lacks; without this every sandbox fails to start.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"
EOF
	cat >"$dir/cni/net.d/10-seedfleet-e2e.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "seedfleet-e2e",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "e2e-br0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$dir/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$POD_GATEWAY"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
	# Pods resolve nothing: there is no DNS add-on and no name server may be
	# reached; tests use addresses.
	echo "nameserver 127.0.0.1" >"$dir/config/resolv.conf"
	cat >"$dir/config/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $dir/pki/ca.crt}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://$dir/containerd/containerd.sock
cgroupDriver: cgroupfs
# This machine kind has cgroup v1 (hybrid); 1.35+ refuse it unless told.
failCgroupV1: false
failSwapOn: false
resolvConf: $dir/config/resolv.conf
clusterDomain: cluster.local
podLogsDir: $dir/pod-logs
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 50Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
evictionPressureTransitionPeriod: 5s
syncFrequency: 10s
nodeStatusUpdateFrequency: 4s
EOF
	cat >"$dir/config/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $dir/pki/admin.kubeconfig}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
# Masquerade service traffic so a pod reaching another pod through its
# ClusterIP gets the reply back through the node, whatever the bridge's
# netfilter setting.
iptables: {masqueradeAll: true}
# Leave the (host-wide) conntrack table settings alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
EOF
}

network() {
	local name="seedfleet-e2e-$$"
	ip netns add "$name"
	echo "$name" >"$netns_file"
	in_ns ip link set lo up
	in_ns ip link add e2e0 type veth peer name e2e1
	in_ns ip addr add "$NODE_IP/24" dev e2e0
	in_ns ip link set e2e0 up
	in_ns ip link set e2e1 up
	# Local clients need a route to the service range before kube-proxy's
	# OUTPUT DNAT can rewrite it; it points into the namespace's own veth.
	in_ns ip route add "$SERVICE_CIDR" dev e2e0
	in_ns iptables -I FORWARD -s "$POD_CIDR" ! -d "$POD_CIDR" -j DROP
}

up() {
	mkdir -p "$dir/logs" "$dir/pids" "$dir/pv"
	touch "$dir/started"
	local t
	for t in "${KERNEL_TUNABLES[@]}"; do
		echo "$t $(cat "/proc/sys/$t")"
	done >"$dir/kernel-tunables"
	pki
	configs
	network

	start etcd "$ENVTEST_ASSETS/etcd" --name e2e --data-dir "$dir/etcd" \
		--listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 \
		--listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
		--initial-cluster e2e=http://127.0.0.1:23800 --unsafe-no-fsync
	start containerd containerd --config "$dir/config/containerd.toml"
	start kube-apiserver "$ENVTEST_ASSETS/kube-apiserver" \
		--etcd-servers http://127.0.0.1:23790 \
		--bind-address 0.0.0.0 --secure-port 6443 --advertise-address "$NODE_IP" \
		--service-cluster-ip-range "$SERVICE_CIDR" \
		--tls-cert-file "$dir/pki/apiserver.crt" --tls-private-key-file "$dir/pki/apiserver.key" \
		--client-ca-file "$dir/pki/ca.crt" \
		--service-account-issuer https://kubernetes.default.svc \
		--service-account-key-file "$dir/pki/sa.pub" --service-account-signing-key-file "$dir/pki/sa.key" \
		--authorization-mode RBAC --allow-privileged \
		--kubelet-client-certificate "$dir/pki/admin.crt" --kubelet-client-key "$dir/pki/admin.key" \
		--kubelet-preferred-address-types InternalIP
	wait_for "containerd" 30 ctr_ version
	local image
	for image in "$dir"/images/*.tar; do
		ctr_ images import "$image" >/dev/null
	done
	log "images: $(ctr_ images ls -q | tr '\n' ' ')"
	wait_for "kube-apiserver" 90 kubectl_ get --raw /readyz

	start kube-controller-manager "$KUBE_BINARIES/kube-controller-manager" \
		--kubeconfig "$dir/pki/admin.kubeconfig" --leader-elect=false \
		--bind-address 127.0.0.1 --secure-port 10257 \
		--service-account-private-key-file "$dir/pki/sa.key" --root-ca-file "$dir/pki/ca.crt" \
		--use-service-account-credentials=false --allocate-node-cidrs=false \
		--cluster-signing-cert-file "$dir/pki/ca.crt" --cluster-signing-key-file "$dir/pki/ca.key"
	start kube-scheduler "$KUBE_BINARIES/kube-scheduler" \
		--kubeconfig "$dir/pki/admin.kubeconfig" --leader-elect=false --bind-address 127.0.0.1 --secure-port 10259
	start kubelet "$KUBE_BINARIES/kubelet" --config "$dir/config/kubelet.yaml" \
		--kubeconfig "$dir/pki/admin.kubeconfig" --root-dir "$dir/kubelet" --cert-dir "$dir/kubelet/pki" \
		--hostname-override "$NODE_NAME" --node-ip "$NODE_IP"
	start kube-proxy "$KUBE_BINARIES/kube-proxy" --config "$dir/config/kube-proxy.yaml"
	wait_for "node $NODE_NAME Ready" 120 kubectl_ wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s
	wait_for "default service account" 60 kubectl_ -n default get serviceaccount default

	storage
	log "cluster up in ${SECONDS}s; kubeconfig $dir/pki/admin.kubeconfig"
}

# storage makes a default StorageClass with no provisioner and hostPath
# volumes under DIR, owned by the seeds' user (hostPath ignores fsGroup).
storage() {
	local i manifest="$dir/config/storage.yaml"
	cat >"$manifest" <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: e2e-local
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Retain
EOF
	for i in $(seq 1 "${E2E_VOLUMES:-8}"); do
		mkdir -p "$dir/pv/$i"
		chown 65532:65532 "$dir/pv/$i"
		chmod 0770 "$dir/pv/$i"
		cat >>"$manifest" <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: e2e-pv-$i}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: e2e-local
  hostPath: {path: $dir/pv/$i, type: Directory}
EOF
	done
	kubectl_ apply -f "$manifest" >/dev/null
}

# containerd is reached through its socket; no need to enter the namespace.
ctr_() { ctr --address "$dir/containerd/containerd.sock" -n k8s.io "$@"; }

stop_pid() { # stop_pid NAME SIGNAL
	local f="$dir/pids/$1" pid
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	kill -0 "$pid" 2>/dev/null || {
		rm -f "$f"
		return 0
	}
	kill "-$2" "$pid" 2>/dev/null || true
	local i
	for i in $(seq 1 40); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.25
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$1 (pid $pid) ignored SIG$2; killing it"
		kill -KILL "$pid" 2>/dev/null || true
		sleep 0.5
	fi
	rm -f "$f"
}

down() {
	[ -f "$netns_file" ] || [ -d "$dir/pids" ] || return 0
	# The kubelet first, so it does not restart what is being removed.
	local c
	for c in kubelet kube-proxy kube-scheduler kube-controller-manager kube-apiserver etcd; do
		stop_pid "$c" TERM
	done
	if [ -f "$dir/pids/containerd" ] && [ -S "$dir/containerd/containerd.sock" ]; then
		local task
		for task in $(ctr_ tasks ls -q 2>/dev/null); do
			ctr_ tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true
		done
		for task in $(ctr_ tasks ls -q 2>/dev/null); do
			for _ in $(seq 1 20); do
				ctr_ tasks delete "$task" >/dev/null 2>&1 && break
				sleep 0.25
			done
		done
		for c in $(ctr_ containers ls -q 2>/dev/null); do
			ctr_ containers delete "$c" >/dev/null 2>&1 || true
		done
	fi
	stop_pid containerd TERM
	# Shims of this containerd that are still there (a task that would not die).
	local pid
	for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $dir/containerd/containerd.sock" || true); do
		log "killing leftover shim $pid"
		kill -KILL "$pid" 2>/dev/null || true
	done

	# Mounts: everything under DIR (volumes, rootfs, shm) and the pod network
	# namespaces (bind mounts under /run/netns), deepest first.
	local m
	for m in $(awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r); do
		umount -l "$m" 2>/dev/null || true
	done
	if [ -d /run/netns ]; then
		for m in $(find /run/netns -maxdepth 1 -name 'cni-*' -newer "$dir/started" 2>/dev/null); do
			umount -l "$m" 2>/dev/null || true
			rm -f "$m"
		done
	fi
	if [ -f "$netns_file" ]; then
		ip netns del "$(cat "$netns_file")" 2>/dev/null || true
		rm -f "$netns_file"
	fi

	# Cgroups the kubelet and containerd made (cgroupfs driver), deepest first.
	local d
	for d in $(find /sys/fs/cgroup -mindepth 2 -type d \( -name kubepods -o -path '*/kubepods/*' \) 2>/dev/null | sort -r); do
		rmdir "$d" 2>/dev/null || true
	done

	# Kernel settings the kubelet changed.
	if [ -f "$dir/kernel-tunables" ]; then
		local key value
		while read -r key value; do
			[ "$(cat "/proc/sys/$key")" = "$value" ] || echo "$value" >"/proc/sys/$key"
		done <"$dir/kernel-tunables"
	fi

	# Files left outside DIR: the kubelet's log links, CNI's result cache and
	# the shims' and runc's state under /run/containerd (fixed paths in
	# containerd 1.6). Only what appeared after `up`.
	if [ -f "$dir/started" ]; then
		local leftovers=(/var/log/containers /var/log/pods /var/lib/cni /run/containerd)
		find "${leftovers[@]}" -newer "$dir/started" \( -type l -o -type f -o -type s -o -type p \) \
			-delete 2>/dev/null || true
		find "${leftovers[@]}" -depth -type d -empty -newer "$dir/started" -delete 2>/dev/null || true
	fi
	log "cluster down"
}

diagnose() {
	local f
	for f in "$dir"/logs/*.log; do
		[ -f "$f" ] || continue
		echo "===== $(basename "$f") (last 80 lines)"
		tail -n 80 "$f"
	done
	if [ -f "$netns_file" ]; then
		echo "===== kubectl get all -A"
		kubectl_ get nodes,all,pvc,pv -A -o wide 2>&1 || true
		echo "===== events"
		kubectl_ get events -A --sort-by=.lastTimestamp 2>&1 | tail -n 60 || true
		echo "===== containerd tasks"
		ctr_ tasks ls 2>&1 || true
	fi
}

case "$cmd" in
up) up ;;
down) down ;;
exec)
	shift 2
	in_ns "$@"
	;;
diagnose) diagnose ;;
*)
	echo "unknown command $cmd" >&2
	exit 2
	;;
esac
