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
set -euo pipefail

GO="${GO:-go}"
FUZZTIME="${FUZZTIME:-10s}"

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "$#" -gt 0 ]; then
	patterns=("$@")
else
	patterns=(./...)
fi

# Only packages that have test files can hold fuzz targets.
pkgs=$("$GO" list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' "${patterns[@]}")

ran=0
failed=()
while IFS= read -r pkg; do
	[ -n "$pkg" ] || continue
	listing=$("$GO" test -list '^Fuzz' "$pkg")
	targets=$(grep -E '^Fuzz[[:alnum:]_]*$' <<<"$listing" || true)
	while IFS= read -r target; do
		[ -n "$target" ] || continue
		echo "==> $pkg $target (fuzztime $FUZZTIME)"
		ran=$((ran + 1))
		if ! "$GO" test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"; then
			failed+=("$pkg $target")
		fi
	done <<<"$targets"
done <<<"$pkgs"

if [ "$ran" -eq 0 ]; then
	echo "fuzz-smoke: no fuzz targets found"
	exit 0
fi

if [ "${#failed[@]}" -gt 0 ]; then
	echo "fuzz-smoke: ${#failed[@]} of $ran target(s) failed:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "fuzz-smoke: $ran target(s) passed"
