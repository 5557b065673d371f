#!/usr/bin/env bash
# Micro-batching through HTTP: servekit serve (cmd/servekit) without and with
# -batch, side by side, on three models (bench/models: the fraud MLP, a wide
# MLP, a small conv net) at several closed-loop client counts, driven by
# bench/loadgen. Both servers run at once, pinned to CPU 1 with one ONNX
# Runtime thread and GOMAXPROCS=1 (as bench/http.sh); the load generator is
# pinned to CPU 0. The two are measured in turn, ROUNDS times, and the
# summary gives batched/unbatched throughput min–median–max, the server CPU
# per request (unbatched over batched: above 1, batching costs less) and the
# median p99 of each.
#
# Which server goes first alternates from one cell to the next and from one
# round to the next. AA=1 is the control: the second server is started like
# the first (no BATCH_FLAGS), so every ratio it prints is the harness's own
# spread on this machine at this load; read a batched run's ratios against
# it. With the order fixed, an unbatched server measured always second
# answered 0.90–0.93–1.11× its twin at one client (wide MLP, three rounds,
# load 0.5–0.8): as large as the differences this harness is asked to show.
#
# Knobs: DUR (5s per measure), ROUNDS (3), MODELS ("fraud wide conv"),
# CONCS ("1 8 64 256"), BATCH_FLAGS ("--batch"), FLAGS for both servers
# ("-max-inflight=-1": the example's admission control, sized differently
# with and without -batch, would otherwise answer part of the load with
# 429s and blur the comparison), SERVER_PROCS (1: GOMAXPROCS of the
# servers), PORT (18090: the unbatched server's; the batched one's is the
# next, so that two runs at once can be told apart by their ports), SCRAPE
# (1: seconds between scrapes of the measured server's /metrics during a
# measure, as Prometheus does, so that what a server records at collection
# rather than per request (the batcher's lone runs, batch/doc.go) is paid
# in the measure too; 0: no scrapes), AA (0; 1: the A/A control above).
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-5s}
ROUNDS=${ROUNDS:-3}
MODELS=${MODELS:-fraud wide conv}
CONCS=${CONCS:-1 8 64 256}
BATCH_FLAGS=${BATCH_FLAGS:---batch}
FLAGS=${FLAGS:---max-inflight=-1}
SERVER_PROCS=${SERVER_PROCS:-1}
PORT=${PORT:-18090}
SCRAPE=${SCRAPE:-1}
AA=${AA:-0}
[ "$AA" = 1 ] && BATCH_FLAGS=
ORT=${ONNXRUNTIME_LIB:-$PWD/third_party/onnxruntime/libonnxruntime.so.1}
OUT=bench/out
mkdir -p "$OUT"

go build -o "$OUT/servekit" ./cmd/servekit
go build -o "$OUT/loadgen" ./bench/loadgen
go run ./bench/models -dir "$OUT/models" >/dev/null

SRV=() LOAD=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	SRV=(taskset -c 1) LOAD=(taskset -c 0)
	[ "$SERVER_PROCS" -ge 2 ] && SRV=()
fi

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	pids=()
}
trap cleanup EXIT

wait_ready() {
	for _ in $(seq 200); do
		curl -fs -o /dev/null "$1/v2/health/ready" && return 0
		sleep 0.1
	done
	echo "server at $1 did not become ready" >&2
	return 1
}

declare -A pid_of
serve() { # port model flags...
	local port=$1 m=$2
	shift 2
	GOMAXPROCS=$SERVER_PROCS "${SRV[@]}" "$OUT/servekit" serve --http-address 127.0.0.1 --http-port "$port" --metrics-port "$port" --allow-grpc=false \
		--model "$m=$OUT/models/$m.onnx" --ort-lib "$ORT" $FLAGS "$@" >"$OUT/servekit-$port.log" 2>&1 &
	pids+=($!)
	pid_of[$port]=$!
	wait_ready "http://127.0.0.1:$port"
}

# cpu_ticks: utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

RES=$OUT/http-batch.txt
: >"$RES"
echo "# $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)$(git diff --quiet || echo +dirty) flags '$FLAGS' batched '$BATCH_FLAGS'$([ "$AA" = 1 ] && echo ' (A/A control: both unbatched)')" | tee -a "$RES"
for m in $MODELS; do
	serve "$PORT" "$m"
	serve $((PORT + 1)) "$m" $BATCH_FLAGS
	body=$(cat "$OUT/models/$m.json")
	for r in $(seq "$ROUNDS"); do
		echo "# round $r load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$RES"
		k=0 # the cell's place in the round: the unbatched server goes first when r + k is odd
		for c in $CONCS; do
			k=$((k + 1)) order="unbatched batched"
			[ $(((r + k) % 2)) = 0 ] && order="batched unbatched"
			for mode in $order; do
				port=$PORT
				[ $mode = batched ] && port=$((PORT + 1))
				t0=$(cpu_ticks "${pid_of[$port]}")
				scraper=
				if [ "$SCRAPE" != 0 ]; then
					(while sleep "$SCRAPE"; do "${LOAD[@]}" curl -fs -o /dev/null "http://127.0.0.1:$port/metrics" || true; done) &
					scraper=$!
				fi
				line=$(GOMAXPROCS=1 "${LOAD[@]}" "$OUT/loadgen" -name "$m/c$c/$mode" -url "http://127.0.0.1:$port/v2/models/$m/infer" \
					-body "$body" -c "$c" -d "$DUR")
				[ -n "$scraper" ] && { kill "$scraper"; wait "$scraper" 2>/dev/null || true; }
				t1=$(cpu_ticks "${pid_of[$port]}")
				# Server CPU per answered request (warm-up included in the
				# ticks, not in the requests: both modes alike).
				echo "$line" | awk -v ticks=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '
					/throughput=/ { for (i = 1; i <= NF; i++) if ($i ~ /^requests=/) { split($i, kv, "="); n = kv[2] }
						printf "%s cpu=%.1fµs\n", $0, n ? ticks / hz * 1e6 / n : 0; next }
					{ print }' | tee -a "$RES"
			done
		done
	done
	cleanup
done

# Summary: per model and client count, batched/unbatched throughput over the
# rounds (min, median, max) and the median p99 of each.
awk -f bench/http-batch.awk "$RES" | tee -a "$RES"
