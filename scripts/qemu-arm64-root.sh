#!/usr/bin/env bash
# Makes DIR a guest root for qemu-aarch64 -L DIR (scripts/test-arm64.sh,
# scripts/edge-size.sh): links to the cross toolchain's arm64 libraries
# (Debian's libc6-arm64-cross and friends in /usr/aarch64-linux-gnu), and a
# /proc/cpuinfo for the CPU that $QEMU_CPU names (default cortex-a72).
#
# Why a /proc/cpuinfo: ONNX Runtime reads it when it loads (pytorch's
# cpuinfo library). qemu-user before 8.2 (Debian 12 has 7.2) hands the
# guest the host's x86 file, on which ONNX Runtime crashes inside dlopen;
# and a CPU part number other than the emulated CPU's makes it pick kernels
# that CPU lacks (SIGILL on udot under cortex-a72 with a Neoverse N1's
# cpuinfo). qemu 8.2+ answers /proc/cpuinfo itself and ignores this one.
set -euo pipefail
dir=${1:?usage: $0 DIR}
QEMU_CPU=${QEMU_CPU:-cortex-a72}
case "$QEMU_CPU" in
  cortex-a53) midr="0x0 0xd03 4"; features="fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid" ;;
  cortex-a57) midr="0x1 0xd07 1"; features="fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid" ;;
  cortex-a72) midr="0x0 0xd08 3"; features="fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid" ;;
  cortex-a76 | neoverse-n1 | max)
    midr="0x4 0xd0b 1"; [ "$QEMU_CPU" = cortex-a76 ] || midr="0x3 0xd0c 1"
    features="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp" ;;
  *) echo "qemu-arm64-root: QEMU_CPU=$QEMU_CPU: pick cortex-a53, cortex-a57, cortex-a72, cortex-a76, neoverse-n1 or max" >&2; exit 2 ;;
esac
read -r variant part revision <<<"$midr"
mkdir -p "$dir/proc"
for f in /usr/aarch64-linux-gnu/*; do ln -s "$f" "$dir/"; done
for ((i = 0; i < $(getconf _NPROCESSORS_CONF); i++)); do
  printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' \
    "$i" "$features" "$variant" "$part" "$revision"
done >"$dir/proc/cpuinfo"

