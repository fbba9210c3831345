#!/usr/bin/env bash
# Checks every x86 kernel family of Sources/BamKernelsC on any x86-64 machine, including the
# families this CPU cannot run (AVX-512, AVX512_VNNI, AVX-VNNI): the same kernel sources are
# compiled against SIMDe, portable C implementations of the intrinsics (Debian: libsimde-dev), and
# compared with the portable family (tools/x86-emulation/check.c). `swift test` covers only the
# families the CPU runs; this covers the rest. Uses gcc: clang 21's x86 headers clash with
# SIMDe 0.7.4's type names.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -f /usr/include/simde/x86/avx512.h ] || ! command -v gcc >/dev/null 2>&1; then
  echo "check_x86_kernels: installing libsimde-dev gcc (apt-get)" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libsimde-dev gcc >/dev/null
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
gcc -std=gnu11 -O1 -Wall -Wno-psabi -Wno-unused-function -DBAM_KERNELS_SIMDE \
  -I"$root/Sources/BamKernelsC/include" -I"$root/Sources/BamKernelsC" -I"$root/tools/x86-emulation" \
  "$root"/Sources/BamKernelsC/*.c "$root/tools/x86-emulation/check.c" -lm -o "$out/check" 2> "$out/log" \
  || { cat "$out/log" >&2; exit 1; }
"$out/check"
