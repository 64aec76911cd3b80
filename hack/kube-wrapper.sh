# Sourced by hack/envtest-assets.sh and hack/e2e/kube-binaries.sh: building
# Kubernetes commands from the Go module proxy through a wrapper module.
#
# k8s.io/kubernetes cannot be required as is: its go.mod maps every staging
# module (k8s.io/api, k8s.io/client-go, ...) to ./staging/..., which a module
# download does not have. The wrapper replaces each with its published v0
# release of the same minor version. Needs K8S_VERSION (e.g. 1.37.1).

# kube_wrapper_module DIR MODULE writes DIR/go.mod for module MODULE with
# those replaces and adds k8s.io/kubernetes to it.
kube_wrapper_module() {
	local dir=$1 module=$2 gomod
	gomod=$(cd "$dir" && GOFLAGS=-mod=mod GOWORK=off go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" |
		sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
	if [ -z "$gomod" ]; then
		echo "could not download k8s.io/kubernetes@v${K8S_VERSION}" >&2
		return 1
	fi
	{
		echo "module ${module}"
		echo
		echo "go $(go env GOVERSION | sed 's/^go//; s/\([0-9]*\.[0-9]*\).*/\1/')"
		echo
		echo "replace ("
		grep -E '^[[:space:]]*k8s\.io/[^ ]+ => \./staging/' "$gomod" |
			awk -v v="v0.${K8S_VERSION#*.}" '{print "\t" $1 " => " $1 " " v}'
		echo ")"
	} >"$dir/go.mod"
	(cd "$dir" && GOFLAGS=-mod=mod GOWORK=off go get "k8s.io/kubernetes@v${K8S_VERSION}" >/dev/null)
}

# kube_ldflags prints the linker flags that make the commands report
# K8S_VERSION (without them they say v0.0.0).
kube_ldflags() {
	local minor="${K8S_VERSION#*.}" major="${K8S_VERSION%%.*}" flags="-s -w" pkg
	minor="${minor%%.*}"
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		flags+=" -X ${pkg}.gitVersion=v${K8S_VERSION}"
		flags+=" -X ${pkg}.gitMajor=${major} -X ${pkg}.gitMinor=${minor}"
		flags+=" -X ${pkg}.gitTreeState=clean"
	done
	echo "$flags"
}

# go_progress PREFIX reads `go build -v` output (one import path per package
# compiled) and prints, at most every 30 s, how many packages are done and
# which one is compiling: a cold build runs for minutes and would otherwise
# print nothing. Any other line (a compile error) is passed through.
go_progress() {
	local prefix=$1 n=0 last=$SECONDS line
	while IFS= read -r line; do
		case "$line" in
		"" | *" "* | *:*) printf '%s\n' "$line" >&2 ;;
		*)
			n=$((n + 1))
			if ((SECONDS - last >= 30)); then
				last=$SECONDS
				echo "${prefix}: ${n} packages compiled ($(((SECONDS - step_start) / 60))m$(((SECONDS - step_start) % 60))s), now ${line}" >&2
			fi
			;;
		esac
	done
	echo "${prefix}: ${n} packages compiled in $(((SECONDS - step_start) / 60))m$(((SECONDS - step_start) % 60))s" >&2
}

# step LOG WHAT...: announces the next step, "[step_no/step_count] WHAT",
# through the LOG function and starts its clock (step_start). The caller
# sets step_no=0 and step_count.
step() {
	local log=$1
	shift
	step_no=$((step_no + 1))
	step_start=$SECONDS
	"$log" "[${step_no}/${step_count}] $*"
}
