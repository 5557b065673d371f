#!/usr/bin/env bash
# Overload test (make overload): measures the example server's capacity on a
# model whose run dominates its request, drives it at 10x that rate in an
# open loop, and checks that it sheds the excess (admitted p99 within 2x the
# unloaded p99, refusals quick with 429 + Retry-After, bounded memory and
# goroutines, recovery within seconds). On a machine with two or more cores
# the server is pinned to CPU 1 and the load generator to CPU 0, so they do
# not steal each other's core. Figures and curves go to reliability/out/.
# Knobs: OVERLOAD_RUNS (default 3: the verdict is the median run's).
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$PWD/third_party/onnxruntime/libonnxruntime.so.1}
OUT=$PWD/reliability/out
mkdir -p "$OUT"
go test -c -o "$OUT/reliability.test" ./reliability
GEN=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	export SERVEKIT_SERVER_CPUS=1
	GEN=(taskset -c 0)
fi
cd reliability # the test finds testdata/ from its package folder
"${GEN[@]}" "$OUT/reliability.test" -test.run '^TestOverload$' -test.v -test.timeout 20m \
	-overload.full -out "$OUT" | tee "$OUT/overload.log"
