#!/usr/bin/env bash
# Runs every native Go fuzz target (func FuzzXxx) for a short time.
#
# Usage: hack/fuzz-smoke.sh [package patterns...]   (default: ./...)
# Environment: GO (default go), FUZZTIME (default 10s, per target).
#
# `go test -fuzz` accepts one package and one target per run, so targets are
# discovered with `go test -list '^Fuzz'` and run one after another. A failing
# target does not stop the others; the script exits non-zero at the end and
# lists them. New failing inputs are written to the package's testdata/fuzz/,
# which is meant to be committed as a regression corpus.
#
# The Go fuzz coordinator sometimes ends a short run with "context deadline
# exceeded" and no failing input (a race between -fuzztime and its workers).
# So a target fails at once only on what a real bug leaves behind: a new file
# under testdata/fuzz/<target>/ (a reproducer) or a crash in the output
# (panic, fatal error, data race, "Failing input written to"). Any other
# failure is retried once, and fails only if the retry fails too (a seed
# corpus entry that fails does so both times).
set -euo pipefail

GO="${GO:-go}"
FUZZTIME="${FUZZTIME:-10s}"

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "$#" -gt 0 ]; then
	patterns=("$@")
else
	patterns=(./...)
fi

# What a crash prints, as opposed to the coordinator's flake.
crash_re='panic:|fatal error:|Failing input written to|WARNING: DATA RACE|SIGSEGV|SIGBUS'

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# corpus DIR TARGET: the files of the target's corpus, one per line, sorted.
corpus() {
	local d="$1/testdata/fuzz/$2"
	if [ -d "$d" ]; then
		find "$d" -type f | LC_ALL=C sort
	fi
}

# fuzz_once PKG TARGET DIR: runs the target once. Returns 0 when it passed,
# 1 on a bug (reproducer or crash), 2 on any other failure.
fuzz_once() {
	local pkg="$1" target="$2" dir="$3" before after new
	before=$(corpus "$dir" "$target")
	set +e
	"$GO" test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" 2>&1 | tee "$log"
	local rc=${PIPESTATUS[0]}
	set -e
	[ "$rc" -eq 0 ] && return 0
	after=$(corpus "$dir" "$target")
	new=$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | sed '/^$/d')
	if [ -n "$new" ]; then
		echo "fuzz-smoke: $target wrote a reproducer:" >&2
		printf '  %s\n' $new >&2
		return 1
	fi
	if grep -Eq "$crash_re" "$log"; then
		return 1
	fi
	return 2
}

# Only packages that have test files can hold fuzz targets.
pkgs=$("$GO" list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}' "${patterns[@]}")

ran=0
retried=0
failed=()
while read -r pkg dir; do
	[ -n "$pkg" ] || continue
	listing=$("$GO" test -list '^Fuzz' "$pkg")
	targets=$(grep -E '^Fuzz[[:alnum:]_]*$' <<<"$listing" || true)
	while IFS= read -r target; do
		[ -n "$target" ] || continue
		echo "==> $pkg $target (fuzztime $FUZZTIME)"
		ran=$((ran + 1))
		status=0
		fuzz_once "$pkg" "$target" "$dir" || status=$?
		if [ "$status" -eq 2 ]; then
			echo "fuzz-smoke: $target failed without a reproducer or a crash (the fuzz coordinator's deadline race?); retrying once" >&2
			retried=$((retried + 1))
			status=0
			fuzz_once "$pkg" "$target" "$dir" || status=$?
		fi
		if [ "$status" -ne 0 ]; then
			failed+=("$pkg $target")
		fi
	done <<<"$targets"
done <<<"$pkgs"

summary="fuzz-smoke: $ran target(s) at $FUZZTIME each: $((ran - ${#failed[@]})) passed, ${#failed[@]} failed, $retried retried"
if [ "${#failed[@]}" -gt 0 ]; then
	echo "$summary" >&2
	printf '  failed: %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "$summary"
