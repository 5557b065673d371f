#!/usr/bin/env bash
# The GPU run: servekit's GPU tests, then the GPU benchmark, on a machine with an
# NVIDIA GPU, CUDA 13, cuDNN 9, and ONNX Runtime 1.29.0 with its CUDA provider
# (ONNXRUNTIME_LIB set, the CUDA libraries on LD_LIBRARY_PATH). Needs no Go
# toolchain: it runs the binaries scripts/gpu-check.sh built, from the folder
# holding bin/gpu/. Results go to $OUT (default ./out): gpu-test.log,
# gpu-bench.md (the report), gpu-bench.log, gpu-env.txt.
#
# Bounded to under 9 minutes (tests 200 s, benchmark 330 s at most; typically about
# 1 and 3 minutes): the whole device call must end within its 600 s.
# Usage: scripts/gpu-run.sh [BENCH_DURATION]   (default 1500ms)
set -uo pipefail
out=${OUT:-$PWD/out}
mkdir -p "$out"
dur=${1:-1500ms}
{
  echo "== nvidia-smi"; nvidia-smi || echo "nvidia-smi failed"
  echo "== ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-unset}"
  echo "== LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-unset}"
  if [ -n "${ONNXRUNTIME_LIB:-}" ]; then
    prov=$(dirname "$ONNXRUNTIME_LIB")/libonnxruntime_providers_cuda.so
    echo "== libraries $prov needs and the loader cannot find (none is good):"
    ldd "$prov" 2>&1 | grep -i "not found" || true
    for l in libcudnn.so.9 libcudart.so.13 libcublas.so.13; do
      echo "$l: $(ldconfig -p 2>/dev/null | grep -c "$l") in ld.so.cache; on LD_LIBRARY_PATH: $(for d in ${LD_LIBRARY_PATH//:/ }; do [ -e "$d/$l" ] && echo "$d"; done)"
    done
  fi
} > "$out/gpu-env.txt" 2>&1
cat "$out/gpu-env.txt"

echo "== GPU tests"
SERVEKIT_REQUIRE_ORT=1 SERVEKIT_REQUIRE_GPU=1 timeout 200 ./bin/gpu/onnx-gpu.test \
  -test.run '^TestGPU' -test.v -test.timeout 190s > "$out/gpu-test.log" 2>&1
tests=$?
grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|gpu_test.go' "$out/gpu-test.log" | grep -v '=== RUN' | tail -60

echo "== GPU benchmark"
timeout 330 ./bin/gpu/gpubench -d "$dur" -require-gpu -o "$out/gpu-bench.md" 2> "$out/gpu-bench.log"
bench=$?
[ -f "$out/gpu-bench.md" ] && cat "$out/gpu-bench.md" || tail -20 "$out/gpu-bench.log"

echo "== GPU tests exit $tests, benchmark exit $bench (0 is success; 124 is a timeout)"
[ $tests -eq 0 ] && [ $bench -eq 0 ]
