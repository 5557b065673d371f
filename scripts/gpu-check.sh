#!/usr/bin/env bash
# One command for the GPU checks of servekit (issue 12): the GPU tests of
# backend/onnx and the bench/gpu benchmark.
#
#   scripts/gpu-check.sh          build here (no GPU needed), stage for a device
#                                 machine, and print the device calls to make
#   scripts/gpu-check.sh --local  on a machine with an NVIDIA GPU, CUDA 13, cuDNN 9
#                                 and Go: install the CUDA provider, build, and run
#                                 scripts/gpu-run.sh here
#
# The build is the GPU test binary (go test -c ./backend/onnx) and the benchmark
# binary (go build ./bench/gpu) in bin/gpu/, with gpu-run.sh, which runs them:
# the device needs no Go toolchain. Staging uses the workplace's stage.sh
# ($GPU_STAGE, default ../shared/gpu/stage.sh beside the repository), which packs
# ONNX Runtime and its CUDA provider in parts small enough for one call each.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mode=${1:-stage}

build() {
  mkdir -p bin/gpu
  echo "Building bin/gpu/onnx-gpu.test and bin/gpu/gpubench ..."
  go test -c -ldflags='-s -w' -o bin/gpu/onnx-gpu.test ./backend/onnx
  go build -ldflags='-s -w' -o bin/gpu/gpubench ./bench/gpu
  cp scripts/gpu-run.sh bin/gpu/gpu-run.sh
}

case "$mode" in
  --local)
    scripts/install-onnxruntime.sh --gpu
    export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$root/third_party/onnxruntime/libonnxruntime.so.1}
    build
    bin/gpu/gpu-run.sh "${2:-1500ms}"
    ;;
  stage)
    stage=${GPU_STAGE:-$root/../shared/gpu/stage.sh}
    for s in "$stage" /work/shared/gpu/stage.sh; do
      [ -x "$s" ] || [ -f "$s" ] && { stage=$s; break; }
    done
    [ -f "$stage" ] || { echo "gpu-check: no stage.sh at $stage (set GPU_STAGE); on a GPU machine use --local" >&2; exit 1; }
    build
    if [ ! -d .git ]; then
      # A git worktree, where .git is a file: stage.sh's line that adds
      # /.devgpu/ to .git/info/exclude would fail. Run a copy that writes
      # the worktree's real exclude file (.gitignore has .devgpu/ anyway).
      tmp=$(mktemp -d)
      trap 'rm -rf "$tmp"' EXIT
      sed "s|\.git/info/exclude|$(git rev-parse --git-path info/exclude)|g" "$stage" > "$tmp/stage.sh"
      cp "$(dirname "$stage")/step.sh" "$tmp/step.sh"
      stage=$tmp/stage.sh
    fi
    bash "$stage" bin/gpu/onnx-gpu.test bin/gpu/gpubench bin/gpu/gpu-run.sh | sed 's|YOUR-COMMAND|bash bin/gpu/gpu-run.sh|'
    echo
    echo "The last call runs the GPU tests (about 1 min, 200 s at most) and the benchmark"
    echo "(about 3 min, 330 s at most) in one go;"
    echo "give it timeout_s 600. Results come back from \$OUT: gpu-bench.md (the table for the README),"
    echo "gpu-test.log, gpu-bench.log, gpu-env.txt."
    ;;
  *)
    echo "usage: scripts/gpu-check.sh [--local [BENCH_DURATION]]" >&2
    exit 2 ;;
esac
