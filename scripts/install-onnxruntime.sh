#!/usr/bin/env bash
# Installs ONNX Runtime 1.29.0 (the shared library only) into third_party/onnxruntime/
# of this project, for the host: Linux x64, Linux arm64 or macOS arm64.
#
# The library comes from the npm package onnxruntime-node@1.29.0, which ships the
# official builds for those hosts (the Linux x64 build has CUDA support compiled in:
# put libonnxruntime_providers_cuda.so beside it for GPU runs). The package and the
# extracted library are checked against pinned sha256 sums.
#
# Idempotent: a library already in place with the right checksum is left alone.
# Usage: scripts/install-onnxruntime.sh [DEST_DIR]
set -euo pipefail

VERSION=1.29.0
PKG_SHA256=cfdfb45ec4044b1fdca43e5d2e180fb6817e649ff8ad1e0dfc90e18e51b67037

root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-"$root/third_party/onnxruntime"}

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64)
    src=package/bin/napi-v6/linux/x64/libonnxruntime.so.1
    lib=libonnxruntime.so.1
    lib_sha=89688f5cf51c7e31befbb7b9101bc027799009b18d1baa9a5b1146a72e69538d ;;
  Linux/aarch64|Linux/arm64)
    src=package/bin/napi-v6/linux/arm64/libonnxruntime.so.1
    lib=libonnxruntime.so.1
    lib_sha=a27d21126db312aa8f02f3d5eaebe466e991f51f469882e6d0407d5a8b64afda ;;
  Darwin/arm64)
    src=package/bin/napi-v6/darwin/arm64/libonnxruntime.1.29.0.dylib
    lib=libonnxruntime.dylib
    lib_sha=3e4c63909e9fc6648c93c68741c1ccf1e3d89218dd1d6a7d4f3d629ffc7f9918 ;;
  *)
    echo "install-onnxruntime: no ONNX Runtime $VERSION build for $(uname -s)/$(uname -m) in onnxruntime-node;" >&2
    echo "download one from ONNX Runtime's GitHub releases and set ONNXRUNTIME_LIB to its path." >&2
    exit 1 ;;
esac

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

if [ -f "$dest/$lib" ] && [ "$(sha256 "$dest/$lib")" = "$lib_sha" ]; then
  echo "ONNX Runtime $VERSION already installed: $dest/$lib"
  exit 0
fi

command -v npm >/dev/null 2>&1 || {
  echo "install-onnxruntime: npm is needed to fetch onnxruntime-node@$VERSION (Debian: apt-get install npm)" >&2
  exit 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "Fetching onnxruntime-node@$VERSION ..."
(cd "$tmp" && npm pack --silent "onnxruntime-node@$VERSION" >/dev/null)
tgz="$tmp/onnxruntime-node-$VERSION.tgz"
got=$(sha256 "$tgz")
if [ "$got" != "$PKG_SHA256" ]; then
  echo "install-onnxruntime: checksum mismatch for onnxruntime-node-$VERSION.tgz: got $got, want $PKG_SHA256" >&2
  exit 1
fi
tar -xzf "$tgz" -C "$tmp" "$src"
got=$(sha256 "$tmp/$src")
if [ "$got" != "$lib_sha" ]; then
  echo "install-onnxruntime: checksum mismatch for $src: got $got, want $lib_sha" >&2
  exit 1
fi
mkdir -p "$dest"
install -m 0644 "$tmp/$src" "$dest/$lib"
echo "Installed ONNX Runtime $VERSION: $dest/$lib"
