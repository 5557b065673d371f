#!/usr/bin/env bash
# gRPC against REST on one servekit server: servekit serve with the fraud
# model, serving REST and gRPC (the Connect handler) on its HTTP port and
# gRPC again with grpc-go on a port of its own (--grpc-port, Triton's 8001),
# driven by bench/loadgen in closed loop, 64 clients, RUNS rounds of, in
# turn: V2 JSON over HTTP/1.1 (rest-json), gRPC ModelInfer with
# raw_input_contents through the REST port (connect-raw) and through the
# gRPC port (native-raw), and typed fp32_contents through the gRPC port
# (native-typed). The protocols are so compared side by side under the same
# machine load; the summary gives each ratio to REST as min-median-max over
# the rounds.
#
# Setup as bench/http.sh: the server pinned to CPU 1 with one ONNX Runtime
# thread and GOMAXPROCS=1, the load generator pinned to CPU 0 with
# GOMAXPROCS=1. Each line also gives the server's CPU time per request
# (utime+stime from /proc over the run, divided by the answers), which the
# machine's other load disturbs less than throughput does, and the load
# generator's own (client_cpu, getrusage): a line is bound by the side
# whose CPU per request times req/s is nearer its whole core. Both
# clients send one pre-encoded request (the JSON body; the protobuf
# message marshalled once) and read the answer without decoding it, and
# neither sends a deadline. Knobs: DUR (10s),
# CONC (64), RUNS (3), CONNS (gRPC connections, 1), ROWS (rows per request,
# 1), SERVEKIT_FLAGS (default --max-inflight=-1: the server's admission
# control, one request in flight and one queued on this one-core server,
# would shed a few percent of every line with 429s or ResourceExhausted,
# fast answers that are not counted, at rates that differ by protocol; as
# bench/http-batch.sh, the transports are measured without it), PROFILE (a line's name without its round, such as
# native-raw: a CPU profile of the server during that line of the first
# round, in bench/out/<name>.pprof).
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-10s}
CONC=${CONC:-64}
RUNS=${RUNS:-3}
CONNS=${CONNS:-1}
ROWS=${ROWS:-1}
PROFILE=${PROFILE:-}
MODEL=testdata/models/fraud.onnx
ORT=${ONNXRUNTIME_LIB:-$PWD/third_party/onnxruntime/libonnxruntime.so.1}
OUT=bench/out
ADDR=127.0.0.1:18082
GRPC=127.0.0.1:18083
DEBUG=127.0.0.1:18084
TOKEN=bench-grpc
mkdir -p "$OUT"

go build -tags grpcnotrace -o "$OUT/servekit" ./cmd/servekit
go build -o "$OUT/loadgen" ./bench/loadgen

SRV=() LOAD=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	SRV=(taskset -c 1) LOAD=(taskset -c 0)
fi

pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=; }
trap cleanup EXIT

debug=()
[ -n "$PROFILE" ] && debug=(--debug-addr "$DEBUG" --admin-token "$TOKEN")
GOMAXPROCS=1 "${SRV[@]}" "$OUT/servekit" serve --http-address "${ADDR%:*}" --http-port "${ADDR##*:}" --metrics-port "${ADDR##*:}" \
	--grpc-address "${GRPC%:*}" --grpc-port "${GRPC##*:}" --model "fraud=$MODEL" --ort-lib "$ORT" "${debug[@]}" ${SERVEKIT_FLAGS---max-inflight=-1} >"$OUT/servekit-grpc.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	curl -fs -o /dev/null "http://$ADDR/v2/health/ready" && break
	sleep 0.1
done

cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
lg() {
	local c0 all line n name=$1 prof=
	shift
	if [ "$name" = "$PROFILE-1" ]; then
		curl -fs -H "Authorization: Bearer $TOKEN" -o "$OUT/$PROFILE.pprof" "http://$DEBUG/debug/pprof/profile?seconds=${DUR%s}" &
		prof=$!
	fi
	c0=$(cpu)
	all=$(GOMAXPROCS=1 "${LOAD[@]}" "$OUT/loadgen" -c "$CONC" -d "$DUR" -warmup 0 -rows "$ROWS" -name "$name" "$@")
	line=$(head -1 <<<"$all")
	# loadgen's "first error" line, kept as a comment: errors are counted, not hidden
	sed -n '2,$s/^/# /p' <<<"$all" | tee -a "$OUT/grpc.txt"
	n=$(sed -n 's/.* requests=\([0-9]*\) .*/\1/p' <<<"$line")
	echo "$line server_cpu=$(awk -v t="$(($(cpu) - c0))" -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1fµs/req", n ? t / hz * 1e6 / n : 0 }')" | tee -a "$OUT/grpc.txt"
	if [ -n "$prof" ]; then wait "$prof"; fi
}
: >"$OUT/grpc.txt"
# One unmeasured round warms every path (ONNX Runtime, connections, pools).
for target in "-url http://$ADDR/v2/models/fraud/infer" "-grpc -url http://$ADDR" "-grpc -url http://$GRPC"; do
	# shellcheck disable=SC2086 # target is two or three words
	GOMAXPROCS=1 "${LOAD[@]}" "$OUT/loadgen" -c "$CONC" -d 1s -warmup 0 -rows "$ROWS" $target >/dev/null
done
for run in $(seq "$RUNS"); do
	echo "# run $run, rows $ROWS, load average $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/grpc.txt"
	lg "rest-json-$run" -url "http://$ADDR/v2/models/fraud/infer"
	lg "connect-raw-$run" -grpc -conns "$CONNS" -url "http://$ADDR"
	lg "native-raw-$run" -grpc -conns "$CONNS" -url "http://$GRPC"
	lg "native-typed-$run" -grpc -typed -conns "$CONNS" -url "http://$GRPC"
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/grpc.txt"

# Per round, each line's throughput over REST's and its server CPU per
# request; then min-median-max of each over the rounds.
awk '
	/^#/ { next }
	{ run = $1; sub(/.*-/, "", run); kind = $1; sub(/-[0-9]+$/, "", kind)
	  for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kind, run, kv[1]] = kv[2] + 0 }
	  runs[run] = 1; if (!(kind in seen)) { seen[kind] = 1; kinds[++nk] = kind } }
	function mmm(a, n, f,   i, j, t) {
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return sprintf(f "-" f "-" f, a[1], a[int((n + 1) / 2)], a[n])
	}
	END {
		for (k = 1; k <= nk; k++) {
			n = 0
			for (r in runs) {
				n++
				ratio[n] = v[kinds[k], r, "throughput"] / v["rest-json", r, "throughput"]
				cpu[n] = v[kinds[k], r, "server_cpu"]; rps[n] = v[kinds[k], r, "throughput"]
				ccpu[n] = v[kinds[k], r, "client_cpu"]
			}
			printf "summary %-13s req/s %s  x REST %s  server cpu %s  loadgen cpu %s µs/req\n", kinds[k], mmm(rps, n, "%.0f"), mmm(ratio, n, "%.2f"), mmm(cpu, n, "%.1f"), mmm(ccpu, n, "%.1f")
		}
	}' "$OUT/grpc.txt" | tee -a "$OUT/grpc.txt"
