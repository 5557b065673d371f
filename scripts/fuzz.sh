#!/usr/bin/env bash
# Runs every fuzz target that decodes untrusted input, one after another,
# each for the given time (default 10m), on one worker so a shared machine
# keeps its other core. Each target fails an input that panics, is accepted
# when invalid, or allocates past serving.DecodeBudget of its bytes, so this
# hunts amplification as well as crashes. New corpus entries land in Go's fuzz cache
# ($(go env GOCACHE)/fuzz); copy the ones worth keeping into the package's
# testdata/fuzz/<Target>/ so `go test` runs them as seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-10m}
# Every Fuzz function in the module, as package:target.
targets=$(grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
	pkg=./$(dirname "${f#./}")
	grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed "s|^func |$pkg:|"
done | sort -u)
for pt in $targets; do
	pkg=${pt%%:*} target=${pt##*:}
	echo "== $target ($pkg) for $T"
	go test -run '^$' -fuzz "^${target}\$" -fuzztime "$T" -parallel 1 "$pkg" 2>&1 | tail -3
done
