#!/usr/bin/env bash
# Installs what the tests and the demo need and the machine lacks: Debian
# packages (ONNX's test data, redis-server, promtool, the en_US.UTF-8 locale
# that ORT's StringNormalizer wants, chromium for the drift report's browser
# test) and ONNX Runtime itself. Idempotent and
# quiet when everything is there; needs root (or sudo) only to install.
#
# --arm64 (Linux x64 hosts) also installs what scripts/test-arm64.sh needs to
# run the arm64 tests here: the cross C toolchain for cgo
# (gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, libstdc++6-arm64-cross),
# qemu-user, and ONNX Runtime's linux/arm64 library.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

arm64=0
for arg in "$@"; do
  case "$arg" in
    --arm64) arm64=1 ;;
    *) echo "install-deps: unknown argument $arg (usage: $0 [--arm64])" >&2; exit 2 ;;
  esac
done
[ "$(uname -s)/$(uname -m)" = Linux/x86_64 ] || arm64=0 # elsewhere the tests run natively or not at all

need=()
[ -d /usr/share/onnx/testdata ] || [ -n "$(dpkg -L libonnx-testdata 2>/dev/null | head -1)" ] || need+=(libonnx-testdata)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# npm is not installed from here: it comes with Node.js (these machines' NodeSource
# build bundles it, and Debian's npm package conflicts with that build);
# install-onnxruntime.sh says what to do when it is missing.
locale -a 2>/dev/null | grep -qi '^en_US.utf-\?8$' || need+=(locales)
if [ $arm64 = 1 ]; then
  command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need+=(gcc-aarch64-linux-gnu)
  [ -f /usr/aarch64-linux-gnu/lib/crt1.o ] || need+=(libc6-dev-arm64-cross)
  [ -f /usr/aarch64-linux-gnu/lib/libstdc++.so.6 ] || need+=(libstdc++6-arm64-cross)
  command -v qemu-aarch64 >/dev/null 2>&1 || need+=(qemu-user)
fi

if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "Installing Debian packages: ${need[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "install-deps: please install ${need[*]} (no apt-get here)" >&2
  fi
fi
if ! locale -a 2>/dev/null | grep -qi '^en_US.utf-\?8$' && [ -f /etc/locale.gen ]; then
  sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' /etc/locale.gen && locale-gen >/dev/null || true
fi
"$root/scripts/install-onnxruntime.sh" >/dev/null
[ $arm64 = 0 ] || "$root/scripts/install-onnxruntime.sh" --platform linux/arm64 >/dev/null
