#!/usr/bin/env bash
# Is net/http the floor of servekit's REST path? (issue 24 item 2.) One
# round serves the fraud model, in turn, from servekit serve, the Node peer
# (bench/http.sh's two servers), servekit-bare (servekit serve without its
# limiter and /metrics) and bench/fastpeer's engines: net/http with
# serving/httpapi, fasthttp and a hand-rolled HTTP/1.1 loop, each with the
# V2 infer path (model) and with a fixed answer (trivial: the engine's own
# cost). Each server is pinned to CPU 1 (Go with GOMAXPROCS=1, one ONNX
# Runtime thread), the loadgen to CPU 0, 64 closed-loop clients, as in
# bench/http.sh; server_cpu is utime+stime per answer, split into user and
# system. Knobs: DUR (10s), CONC (64), ROUNDS (3), ENGINES (all the rows).
# Output: bench/out/fastpeer.txt, one block per round with the load average.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-10s}
CONC=${CONC:-64}
ROUNDS=${ROUNDS:-3}
ENGINES=${ENGINES:-"servekit servekit-bare node nethttp/model fasthttp/model raw/model nethttp/trivial fasthttp/trivial raw/trivial"}
MODEL=testdata/models/fraud.onnx
ORT=${ONNXRUNTIME_LIB:-$PWD/third_party/onnxruntime/libonnxruntime.so.1}
OUT=bench/out
mkdir -p "$OUT"

go build -o "$OUT/servekit" ./cmd/servekit
go build -o "$OUT/loadgen" ./bench/loadgen
GOWORK=off go build -C bench/fastpeer -o ../out/fastpeer . # its own module: fasthttp stays out of servekit's go.mod
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

start() { # row port
	case $1 in
	servekit) GOMAXPROCS=1 "${SRV[@]}" "$OUT/servekit" serve --http-address 127.0.0.1 --http-port "$2" --metrics-port "$2" --allow-grpc=false --model "fraud=$MODEL" --ort-lib "$ORT" >"$OUT/fastpeer-server.log" 2>&1 & ;;
	servekit-bare) # no limiter, no /metrics beside the API: what is left of servekit serve's chain is the telemetry middleware and the drain gate
		GOMAXPROCS=1 "${SRV[@]}" "$OUT/servekit" serve --http-address 127.0.0.1 --http-port "$2" --allow-metrics=false --max-inflight=-1 --allow-grpc=false --model "fraud=$MODEL" --ort-lib "$ORT" >"$OUT/fastpeer-server.log" 2>&1 & ;;
	node) "${SRV[@]}" node bench/node-peer/server.js "$MODEL" "$2" >"$OUT/fastpeer-server.log" 2>&1 & ;;
	*) GOMAXPROCS=1 "${SRV[@]}" "$OUT/fastpeer" -engine "${1%/*}" -handler "${1#*/}" -model "$MODEL" -ort-lib "$ORT" -addr "127.0.0.1:$2" >"$OUT/fastpeer-server.log" 2>&1 & ;;
	esac
	pid=$!
}

stat() { awk '{ print $14, $15 }' "/proc/$pid/stat"; }
# server_busy is the server's CPU time over the line's wall time: near 100 %
# the server is the bottleneck; well below, the loadgen (or a neighbour on
# CPU 1) is, and system time per request rises as fewer requests share a
# wake-up.
measure() { # row url
	local s0 s1 all line
	s0=$(stat)
	all=$(GOMAXPROCS=1 "${LOAD[@]}" "$OUT/loadgen" -name "$1" -url "$2/v2/models/fraud/infer" -c "$CONC" -d "$DUR")
	s1=$(stat)
	line=$(head -1 <<<"$all")
	sed -n '2,$s/^/# /p' <<<"$all" | tee -a "$OUT/fastpeer.txt"
	echo "$line $(awk -v a="$s0" -v b="$s1" -v hz="$(getconf CLK_TCK)" -v l="$line" 'BEGIN {
		split(a, x, " "); split(b, y, " "); match(l, /requests=[0-9]+/); n = substr(l, RSTART + 9, RLENGTH - 9)
		match(l, /elapsed=[0-9.]+/); e = substr(l, RSTART + 8, RLENGTH - 8)
		u = (y[1] - x[1]) / hz; s = (y[2] - x[2]) / hz
		printf "server_cpu=%.1fµs/req user=%.1fµs sys=%.1fµs server_busy=%.0f%%", (u + s) * 1e6 / n, u * 1e6 / n, s * 1e6 / n, (u + s) / e * 100 }')" | tee -a "$OUT/fastpeer.txt"
}

: >"$OUT/fastpeer.txt"
port=18090
for r in $(seq "$ROUNDS"); do
	echo "round $r load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/fastpeer.txt"
	for row in $ENGINES; do
		port=$((port + 1))
		start "$row" "$port"
		wait_ready "http://127.0.0.1:$port"
		measure "$row" "http://127.0.0.1:$port"
		cleanup
	done
	echo "round $r end load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/fastpeer.txt"
done

# Each row against the Node peer of its round.
awk '
	/^round [0-9]+ load/ { r = $2 }
	/throughput=/ {
		for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		t[r, $1] = v["throughput"] + 0; p[r, $1] = v["p99"]; c[r, $1] = v["server_cpu"] + 0; rows[r] = rows[r] " " $1
	}
	END {
		for (q = 1; q <= r; q++) {
			n = split(rows[q], names, " ")
			for (i = 1; i <= n; i++) if (t[q, "node"] > 0)
				printf "round %d %-17s %.2fx node req/s, cpu %.1f vs node %.1f µs/req, p99 %s vs %s\n", q, names[i], t[q, names[i]] / t[q, "node"], c[q, names[i]], c[q, "node"], p[q, names[i]], p[q, "node"]
		}
	}' "$OUT/fastpeer.txt" | tee -a "$OUT/fastpeer.txt"
