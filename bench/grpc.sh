#!/usr/bin/env bash
# gRPC against REST on one servekit server: servekit serve (which serves
# both on one port) with the fraud model, driven by bench/loadgen in closed
# loop, 64 clients, alternating V2 JSON over HTTP/1.1, gRPC ModelInfer with
# raw_input_contents and gRPC with typed fp32_contents, RUNS rounds, so the
# protocols are compared side by side under the same machine load.
#
# Setup as bench/http.sh: the server pinned to CPU 1 with one ONNX Runtime
# thread and GOMAXPROCS=1, the load generator pinned to CPU 0 with
# GOMAXPROCS=1. Each line also gives the server's CPU time per request
# (utime+stime from /proc over the run, divided by the answers), which the
# machine's other load disturbs less than throughput does. Knobs: DUR (10s),
# CONC (64), RUNS (3), CONNS (gRPC connections, 1), ROWS (rows per request,
# 1), SERVEKIT_FLAGS.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-10s}
CONC=${CONC:-64}
RUNS=${RUNS:-3}
CONNS=${CONNS:-1}
ROWS=${ROWS:-1}
MODEL=testdata/models/fraud.onnx
ORT=${ONNXRUNTIME_LIB:-$PWD/third_party/onnxruntime/libonnxruntime.so.1}
OUT=bench/out
ADDR=127.0.0.1:18082
mkdir -p "$OUT"

go build -o "$OUT/servekit" ./cmd/servekit
go build -o "$OUT/loadgen" ./bench/loadgen

SRV=() LOAD=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	SRV=(taskset -c 1) LOAD=(taskset -c 0)
fi

pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=; }
trap cleanup EXIT

GOMAXPROCS=1 "${SRV[@]}" "$OUT/servekit" serve --http-address "${ADDR%:*}" --http-port "${ADDR##*:}" --metrics-port "${ADDR##*:}" --grpc-port "${ADDR##*:}" --model "fraud=$MODEL" --ort-lib "$ORT" ${SERVEKIT_FLAGS:-} >"$OUT/servekit-grpc.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	curl -fs -o /dev/null "http://$ADDR/v2/health/ready" && break
	sleep 0.1
done

cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
lg() {
	local c0 line n
	c0=$(cpu)
	line=$(GOMAXPROCS=1 "${LOAD[@]}" "$OUT/loadgen" -c "$CONC" -d "$DUR" -warmup 0 -rows "$ROWS" "$@" | head -1)
	n=$(sed -n 's/.* requests=\([0-9]*\) .*/\1/p' <<<"$line")
	echo "$line server_cpu=$(awk -v t="$(($(cpu) - c0))" -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0fµs/req", n ? t / hz * 1e6 / n : 0 }')" | tee -a "$OUT/grpc.txt"
}
: >"$OUT/grpc.txt"
# One unmeasured round warms both paths (ONNX Runtime, connections, pools).
GOMAXPROCS=1 "${LOAD[@]}" "$OUT/loadgen" -c "$CONC" -d 1s -warmup 0 -url "http://$ADDR/v2/models/fraud/infer" >/dev/null
GOMAXPROCS=1 "${LOAD[@]}" "$OUT/loadgen" -c "$CONC" -d 1s -warmup 0 -grpc -url "http://$ADDR" >/dev/null
for run in $(seq "$RUNS"); do
	echo "# run $run, load average $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/grpc.txt"
	lg -name "rest-json-$run" -url "http://$ADDR/v2/models/fraud/infer"
	lg -name "grpc-raw-$run" -grpc -conns "$CONNS" -url "http://$ADDR"
	lg -name "grpc-typed-$run" -grpc -typed -conns "$CONNS" -url "http://$ADDR"
done

awk '
	/^#/ { next }
	{ split($1, n, "-"); run = n[length(n)]; kind = substr($1, 1, length($1) - length(run) - 1)
	  for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kind, run, kv[1]] = kv[2] } ; runs[run] = 1 }
	END {
		for (r in runs) {
			printf "ratio run %s: grpc-raw/rest-json throughput %.2fx (p99 %s vs %s, server cpu %s vs %s), grpc-typed/rest-json %.2fx\n", r,
				v["grpc-raw", r, "throughput"] / v["rest-json", r, "throughput"], v["grpc-raw", r, "p99"], v["rest-json", r, "p99"],
				v["grpc-raw", r, "server_cpu"], v["rest-json", r, "server_cpu"],
				v["grpc-typed", r, "throughput"] / v["rest-json", r, "throughput"]
		}
	}' "$OUT/grpc.txt" | sort | tee -a "$OUT/grpc.txt"
