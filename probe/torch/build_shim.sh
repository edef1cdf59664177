#!/usr/bin/env bash
# Rebuilds libvllm_profiler_torch.so against another torch install, e.g. the
# one inside a vLLM image or on a GPU machine:
#
#   probe/torch/build_shim.sh /usr/local/lib/python3.12/site-packages/torch [OUT]
#
# Uses g++ directly with that torch's include/ and lib/ (no Bazel needed).
# OUT defaults to ./libvllm_profiler_torch.so; copy it into the probe folder
# (next to libvllm_profiler_probe.so) to replace the bundled one.
set -euo pipefail
TORCH_DIR="${1:?usage: build_shim.sh /path/to/site-packages/torch [out.so]}"
OUT="${2:-$PWD/libvllm_profiler_torch.so}"
HERE="$(cd "$(dirname "$0")" && pwd)"
PY="${PYTHON:-python3}"
# Match the C++ ABI torch was built with.
ABI=$("$PY" -c 'import torch;print(int(torch._C._GLIBCXX_USE_CXX11_ABI))' 2>/dev/null || echo 1)
"${CXX:-g++}" -O2 -std=c++17 -shared -fPIC -fvisibility=hidden \
  -DNDEBUG -D_GLIBCXX_USE_CXX11_ABI="$ABI" \
  -I"$TORCH_DIR/include" -I"$TORCH_DIR/include/torch/csrc/api/include" \
  -I"$HERE/../include" \
  "$HERE/torch_shim.cc" -o "$OUT" \
  -L"$TORCH_DIR/lib" -Wl,-rpath,"$TORCH_DIR/lib" -ltorch -ltorch_cpu -lc10 -ldl
echo "built $OUT for torch $(grep -o '"[0-9.]*"' "$TORCH_DIR/include/torch/csrc/api/include/torch/version.h" | head -1)"
