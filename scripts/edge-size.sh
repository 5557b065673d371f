#!/usr/bin/env bash
# Measures a server command for the edge (README "At the edge"), for
# linux/amd64 and linux/arm64:
#   - its binary's size: as `go build` makes it, stripped
#     (-trimpath -ldflags='-s -w'), and stripped with the build tags in
#     $TAGS (default servekit_nogrpc,servekit_noredis; TAGS= skips it);
#   - ONNX Runtime's library beside it;
#   - its memory at idle: the resident set once /v2/health/ready answers
#     and it has been idle for 5 s, and of that the anonymous (private)
#     part. amd64 runs natively; arm64 runs under qemu-user, and only the
#     guest's pages count: qemu is told to put the guest at a fixed base
#     (-B, -R) and the pages mapped there are summed, leaving out the
#     emulator's own memory and its translated code.
#
# Usage: scripts/edge-size.sh [PACKAGE [ARG...]]
#   PACKAGE  the command (default ./cmd/servekit)
#   ARG      its arguments; {port} becomes a free port (default: servekit
#            serve of the demo model on 127.0.0.1:{port}, /metrics there too,
#            no gRPC port of its own)
# The arm64 half needs what scripts/install-deps.sh --arm64 installs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

pkg=${1:-./cmd/servekit}
[ $# -eq 0 ] || shift
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(serve --http-address 127.0.0.1 --http-port '{port}' --metrics-port '{port}' --allow-grpc=false --model fraud=testdata/models/fraud.onnx)
tags=${TAGS-servekit_nogrpc,servekit_noredis}
port=${PORT:-18089}
args=("${args[@]//\{port\}/$port}")

"$root/scripts/install-deps.sh" --arm64
arm64=1
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 && command -v qemu-aarch64 >/dev/null 2>&1 || arm64=0

work=$(mktemp -d)
server=""
cleanup() {
  [ -z "$server" ] || kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
size() { mb "$(stat -c %s "$1")"; }

# build ARCH NAME [FLAGS...]: builds $pkg for linux/ARCH into $work/ARCH-NAME.
build() {
  local arch=$1 name=$2
  shift 2
  local env=(GOOS=linux GOARCH="$arch" CGO_ENABLED=1)
  [ "$arch" = amd64 ] || env+=(CC=aarch64-linux-gnu-gcc)
  env "${env[@]}" go build "$@" -o "$work/$arch-$name" "$pkg"
}

# idle PID ARCH: waits until the server answers ready, then 5 s of idle,
# and prints its resident and anonymous memory.
idle() {
  local pid=$1 arch=$2 i
  for ((i = 0; i < 240; i++)); do
    curl -fs -o /dev/null "http://127.0.0.1:$port/v2/health/ready" && break
    kill -0 "$pid" 2>/dev/null || { echo "edge-size: the $arch server exited; its output:" >&2; cat "$work/log" >&2; exit 1; }
    sleep 0.5
  done
  [ $i -lt 240 ] || { echo "edge-size: the $arch server was not ready in 2 minutes" >&2; cat "$work/log" >&2; exit 1; }
  sleep 5
  if [ "$arch" = amd64 ]; then
    awk '/^Rss:/ { r += $2 } /^Anonymous:/ { a += $2 } END { printf "%.1f MB (anonymous %.1f MB)", r / 1024, a / 1024 }' "/proc/$pid/smaps"
  else
    # Addresses zero-padded to 16 hex digits compare as strings.
    awk -v lo=0000100000000000 -v hi=0000110000000000 '
      /^[0-9a-f]+-[0-9a-f]+ / { split($1, ends, "-"); s = sprintf("%16s", ends[1]); gsub(/ /, "0", s); in_guest = s >= lo && s < hi }
      in_guest && /^Rss:/ { r += $2 }
      in_guest && /^Anonymous:/ { a += $2 }
      END { printf "%.1f MB (anonymous %.1f MB)", r / 1024, a / 1024 }' "/proc/$pid/smaps"
  fi
}

arches=(amd64)
[ $arm64 = 0 ] || arches+=(arm64)
declare -A plain stripped lean lib mem
for arch in "${arches[@]}"; do
  build "$arch" plain
  build "$arch" stripped -trimpath -ldflags='-s -w'
  plain[$arch]=$(size "$work/$arch-plain")
  stripped[$arch]=$(size "$work/$arch-stripped")
  if [ -n "$tags" ]; then
    build "$arch" lean -trimpath -ldflags='-s -w' -tags "$tags"
    lean[$arch]=$(size "$work/$arch-lean")
  fi
done

lib[amd64]=$root/third_party/onnxruntime/libonnxruntime.so.1
lib[arm64]=$root/third_party/onnxruntime-linux-arm64/libonnxruntime.so.1
for arch in "${arches[@]}"; do
  if [ "$arch" = amd64 ]; then
    ONNXRUNTIME_LIB=${lib[amd64]} "$work/amd64-stripped" "${args[@]}" >"$work/log" 2>&1 &
  else
    QEMU_CPU=${QEMU_CPU:-cortex-a72} "$root/scripts/qemu-arm64-root.sh" "$work/root"
    ONNXRUNTIME_LIB=${lib[arm64]} QEMU_CPU=${QEMU_CPU:-cortex-a72} \
      qemu-aarch64 -B 0x100000000000 -R 0x10000000000 -L "$work/root" "$work/arm64-stripped" "${args[@]}" >"$work/log" 2>&1 &
  fi
  server=$!
  mem[$arch]=$(idle "$server" "$arch")
  kill "$server"
  wait "$server" 2>/dev/null || true
  server=""
done

# line LABEL MAP: a table row with MAP's value for each architecture.
line() {
  local -n m=$2
  printf '| %s |' "$1"
  for a in "${arches[@]}"; do printf ' %s |' "${m[$a]}"; done
  echo
}
declare -A head rule libsize
for a in "${arches[@]}"; do head[$a]=linux/$a; rule[$a]=---:; libsize[$a]=$(size "${lib[$a]}"); done
echo
echo "$pkg, $(go version | cut -d' ' -f3), $(date +%Y-%m-%d); arguments: ${args[*]}"
echo
line "" head
line --- rule
line "go build" plain
line "-trimpath -ldflags='-s -w'" stripped
[ -z "$tags" ] || line "… and -tags $tags" lean
line "ONNX Runtime library beside it" libsize
line "resident at idle (the stripped build)" mem
