#!/bin/sh
# Regenerates gpu/emu/kernels/*.ptx from the .cu sources next to them.
# Needs clang (Debian bookworm's clang 14 is what the committed PTX came from).
set -eu
cd "$(dirname "$0")/../gpu/emu/kernels"
for src in *.cu; do
	X=${src%.cu}
	clang -x cuda --cuda-device-only --cuda-gpu-arch=sm_70 -nocudainc -nocudalib -O2 -S -o "$X.ptx" "$X.cu"
done
