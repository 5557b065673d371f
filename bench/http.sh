#!/usr/bin/env bash
# HTTP serving comparison: servekit serve (cmd/servekit) against a Node.js peer
# (onnxruntime-node 1.29.0 behind node:http) on the same model, same V2 JSON,
# started in turn on loopback and driven by bench/loadgen (closed loop).
#
# Setup on a 2-core machine: each server is pinned to CPU 1 with one ONNX
# Runtime thread (servekit GOMAXPROCS=1; Node is one event loop); the load
# generator is pinned to CPU 0 with GOMAXPROCS=1. Knobs: DUR (10s), CONC (64),
# SERVEKIT_FLAGS (e.g. "--batch").
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-10s}
CONC=${CONC:-64}
MODEL=testdata/models/fraud.onnx
ORT=${ONNXRUNTIME_LIB:-$PWD/third_party/onnxruntime/libonnxruntime.so.1}
OUT=bench/out
mkdir -p "$OUT"

go build -o "$OUT/servekit" ./cmd/servekit
go build -o "$OUT/loadgen" ./bench/loadgen
if [ ! -d bench/node-peer/node_modules/onnxruntime-node ]; then
	(cd bench/node-peer && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund)
fi

SRV=() LOAD=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	SRV=(taskset -c 1) LOAD=(taskset -c 0)
fi

pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=; }
trap cleanup EXIT

wait_ready() {
	for _ in $(seq 100); do
		curl -fs -o /dev/null "$1/v2/health/ready" && return 0
		sleep 0.1
	done
	echo "server at $1 did not become ready" >&2
	return 1
}

# Each line also gives the server's CPU time per request (utime + stime
# over the run, as bench/grpc.sh does): on a shared machine throughput
# follows whichever process the others starve, CPU per request much less.
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
measure() { # name url
	local c0 all line n
	c0=$(cpu)
	all=$(GOMAXPROCS=1 "${LOAD[@]}" "$OUT/loadgen" -name "$1" -url "$2/v2/models/fraud/infer" -c "$CONC" -d "$DUR")
	line=$(head -1 <<<"$all")
	sed -n '2,$s/^/# /p' <<<"$all" | tee -a "$OUT/http.txt" # loadgen's "first error" line: errors are counted, not hidden
	n=$(sed -n 's/.* requests=\([0-9]*\) .*/\1/p' <<<"$line")
	echo "$line server_cpu=$(awk -v t="$(($(cpu) - c0))" -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1fµs/req", n ? t / hz * 1e6 / n : 0 }')" | tee -a "$OUT/http.txt"
}

: >"$OUT/http.txt"
GOMAXPROCS=1 "${SRV[@]}" "$OUT/servekit" serve --http-address 127.0.0.1 --http-port 18080 --metrics-port 18080 --allow-grpc=false --model "fraud=$MODEL" --ort-lib "$ORT" ${SERVEKIT_FLAGS:-} >"$OUT/servekit.log" 2>&1 &
pid=$!
wait_ready http://127.0.0.1:18080
measure servekit http://127.0.0.1:18080
cleanup

"${SRV[@]}" node bench/node-peer/server.js "$MODEL" 18081 >"$OUT/node.log" 2>&1 &
pid=$!
wait_ready http://127.0.0.1:18081
measure node http://127.0.0.1:18081
cleanup

awk '
	{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[$1, kv[1]] = kv[2] } }
	function us(d) { if (d ~ /ms$/) return d * 1000; if (d ~ /µs$/) return d + 0; if (d ~ /s$/) return d * 1e6; return d }
	END {
		printf "ratio servekit/node: throughput %.2fx, p99 %s vs %s (%.2fx lower), server CPU per request %s vs %s (%.2fx less)\n",
			v["servekit", "throughput"] / v["node", "throughput"], v["servekit", "p99"], v["node", "p99"],
			us(v["node", "p99"]) / us(v["servekit", "p99"]),
			v["servekit", "server_cpu"], v["node", "server_cpu"], (v["node", "server_cpu"] + 0) / (v["servekit", "server_cpu"] + 0)
	}' "$OUT/http.txt" | tee -a "$OUT/http.txt"
