#!/usr/bin/env bash
# Installs the Debian 12 packages the build, the tests and the local profile
# need. Idempotent and quiet when everything is already present: it asks dpkg
# first and only calls apt-get for what is missing.
set -euo pipefail

PACKAGES=(
  # Build: Bazel and the C++ system libraries the WORKSPACE wraps.
  bazel-bootstrap bazel-rules-java
  g++ clang libclang-rt-14-dev llvm
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev
  libabsl-dev libssl-dev zlib1g-dev libc-ares-dev libre2-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libboost-dev nlohmann-json3-dev
  # Probe: libtorch for the operator shim, Debian's torch for the test workload.
  libtorch-dev python3-torch python3-numpy
  # Webhook tests and benchmarks, image checks.
  python3-jsonpatch curl openssl wrk skopeo umoci jq kubectl
  # The torch 2.x root filesystem of tests/torch2 (rootfs.sh).
  debootstrap
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install_deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
