#!/usr/bin/env bash
# Installs ONNX Runtime 1.29.0 (the shared library only) into third_party/onnxruntime/
# of this project, for the host: Linux x64, Linux arm64 or macOS arm64.
#
# --platform linux/arm64 (or linux/amd64, darwin/arm64) installs another platform's
# library instead, by default into third_party/onnxruntime-linux-arm64/ (and so on), for
# cross-compiled tests: scripts/test-arm64.sh runs the arm64 tests under qemu with it.
#
# The library comes from the npm package onnxruntime-node@1.29.0, which ships the
# official builds for those hosts (the Linux x64 build has CUDA support compiled in; the
# arm64 builds are CPU only).
# The package and the extracted library are checked against pinned sha256 sums.
#
# --gpu (Linux x64 only) also puts ONNX Runtime's CUDA execution provider beside it:
# libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so of ONNX
# Runtime 1.29.0, built for CUDA 13 and cuDNN 9, from the npm package
# com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 (about 180 MB to download, 230 MB
# installed). They need, on the dynamic loader's path (LD_LIBRARY_PATH): CUDA 13's
# libcudart.so.13, libcublas.so.13, libcublasLt.so.13 and libcurand.so.10, cuDNN 9's
# libcudnn*.so.9, and the NVIDIA driver's libcuda.so.1. See the README's GPU section.
#
# Idempotent: files already in place with the right checksums are left alone.
# Usage: scripts/install-onnxruntime.sh [--gpu] [--platform OS/ARCH] [DEST_DIR]
set -euo pipefail

VERSION=1.29.0
PKG_SHA256=cfdfb45ec4044b1fdca43e5d2e180fb6817e649ff8ad1e0dfc90e18e51b67037

GPU_PKG=com.github.asus4.onnxruntime.linux-x64-gpu
GPU_PKG_VERSION=0.4.9
GPU_PKG_SHA256=2b459e0c17f340c92970c10ed86de4f37a3009f93c14053e6ad4334cbb6be412
GPU_SRC=package/Plugins/Linux/x64
GPU_LIBS=(libonnxruntime_providers_cuda.so libonnxruntime_providers_shared.so)
GPU_SHAS=(56cf3254b118ad837ccc4ed8f6d1b23504bbf7ef91b34cbc0b289cb7f10b3037
          c6a12593396095f5670160e284c35d1700b7708cf3037b7042e2a5200ccae772)

usage="usage: $0 [--gpu] [--platform OS/ARCH] [DEST_DIR]"
gpu=0
dest=""
platform=""
while [ $# -gt 0 ]; do
  case "$1" in
    --gpu) gpu=1 ;;
    --platform) [ $# -ge 2 ] || { echo "install-onnxruntime: --platform needs OS/ARCH ($usage)" >&2; exit 2; }
      platform=$2; shift ;;
    --platform=*) platform=${1#--platform=} ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "install-onnxruntime: unknown option $1 ($usage)" >&2; exit 2 ;;
    *) dest=$1 ;;
  esac
  shift
done
root=$(cd "$(dirname "$0")/.." && pwd)

# The host's platform in Go's words; the default install is the host's.
host=$(uname -s | tr '[:upper:]' '[:lower:]')/$(uname -m)
host=${host/x86_64/amd64}; host=${host/aarch64/arm64}
platform=${platform:-$host}
if [ "$platform" = "$host" ]; then
  dest=${dest:-"$root/third_party/onnxruntime"}
else
  dest=${dest:-"$root/third_party/onnxruntime-${platform/\//-}"}
fi

case "$platform" in
  linux/amd64)
    src=package/bin/napi-v6/linux/x64/libonnxruntime.so.1
    lib=libonnxruntime.so.1
    lib_sha=89688f5cf51c7e31befbb7b9101bc027799009b18d1baa9a5b1146a72e69538d ;;
  linux/arm64)
    src=package/bin/napi-v6/linux/arm64/libonnxruntime.so.1
    lib=libonnxruntime.so.1
    lib_sha=a27d21126db312aa8f02f3d5eaebe466e991f51f469882e6d0407d5a8b64afda ;;
  darwin/arm64)
    src=package/bin/napi-v6/darwin/arm64/libonnxruntime.1.29.0.dylib
    lib=libonnxruntime.dylib
    lib_sha=3e4c63909e9fc6648c93c68741c1ccf1e3d89218dd1d6a7d4f3d629ffc7f9918 ;;
  *)
    echo "install-onnxruntime: no ONNX Runtime $VERSION build for $platform in onnxruntime-node;" >&2
    echo "download one from ONNX Runtime's GitHub releases and set ONNXRUNTIME_LIB to its path." >&2
    exit 1 ;;
esac
if [ $gpu = 1 ] && [ "$platform" != linux/amd64 ]; then
  echo "install-onnxruntime: --gpu: the CUDA provider is installed for Linux x64 only, not $platform" >&2
  exit 1
fi

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

# has FILE SUM: FILE is in place with that checksum.
has() { [ -f "$1" ] && [ "$(sha256 "$1")" = "$2" ]; }

# fetch PKG@VERSION WANT_SHA: npm pack into $tmp, checked; prints the tarball path.
fetch() {
  command -v npm >/dev/null 2>&1 || {
    echo "install-onnxruntime: npm is needed to fetch $1 (it comes with Node.js)" >&2
    exit 1
  }
  echo "Fetching $1 ..." >&2
  local name
  name=$(cd "$tmp" && npm pack --silent "$1" | tail -1)
  local got
  got=$(sha256 "$tmp/$name")
  if [ "$got" != "$2" ]; then
    echo "install-onnxruntime: checksum mismatch for $name: got $got, want $2" >&2
    exit 1
  fi
  echo "$tmp/$name"
}

# put TGZ MEMBER SHA NAME: extracts MEMBER, checks it, installs it as $dest/NAME.
put() {
  tar -xzf "$1" -C "$tmp" "$2"
  local got
  got=$(sha256 "$tmp/$2")
  if [ "$got" != "$3" ]; then
    echo "install-onnxruntime: checksum mismatch for $2: got $got, want $3" >&2
    exit 1
  fi
  mkdir -p "$dest"
  install -m 0644 "$tmp/$2" "$dest/$4"
  rm -f "$tmp/$2"
}

tmp=""
cleanup() { [ -z "$tmp" ] || rm -rf "$tmp"; }
trap cleanup EXIT
scratch() { [ -n "$tmp" ] || tmp=$(mktemp -d); }

if has "$dest/$lib" "$lib_sha"; then
  echo "ONNX Runtime $VERSION already installed: $dest/$lib"
else
  scratch
  tgz=$(fetch "onnxruntime-node@$VERSION" "$PKG_SHA256")
  put "$tgz" "$src" "$lib_sha" "$lib"
  rm -f "$tgz"
  echo "Installed ONNX Runtime $VERSION: $dest/$lib"
fi

[ $gpu = 1 ] || exit 0
missing=0
for i in "${!GPU_LIBS[@]}"; do
  has "$dest/${GPU_LIBS[$i]}" "${GPU_SHAS[$i]}" || missing=1
done
if [ $missing = 0 ]; then
  echo "ONNX Runtime $VERSION CUDA provider already installed: $dest/${GPU_LIBS[0]}"
else
  scratch
  tgz=$(fetch "$GPU_PKG@$GPU_PKG_VERSION" "$GPU_PKG_SHA256")
  for i in "${!GPU_LIBS[@]}"; do
    put "$tgz" "$GPU_SRC/${GPU_LIBS[$i]}" "${GPU_SHAS[$i]}" "${GPU_LIBS[$i]}"
  done
  echo "Installed ONNX Runtime $VERSION CUDA provider (CUDA 13, cuDNN 9): $dest/${GPU_LIBS[0]}, $dest/${GPU_LIBS[1]}"
fi
echo "The CUDA provider loads CUDA 13 (libcudart.so.13, libcublas.so.13, libcublasLt.so.13, libcurand.so.10),"
echo "cuDNN 9 (libcudnn.so.9) and the driver's libcuda.so.1 from the loader's path, e.g."
echo "  export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:/usr/lib/x86_64-linux-gnu:\$LD_LIBRARY_PATH"
