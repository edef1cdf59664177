#!/usr/bin/env bash
# Builds, or reuses, a Debian 13 (trixie) root filesystem with a torch 2.x
# userland for the torch2 chroot tests: python3 3.13, python3-torch 2.6,
# libtorch-dev and g++ (so the probe can build its shim in-process).
#
#   tests/torch2/rootfs.sh            # prints the root directory on stdout
#
# Cached in ${VLLM_PROFILER_ROOTFS_CACHE:-~/.cache/vllm-profiler}/rootfs-trixie
# (~ of the account running it, as /etc/passwd says).
# A stamp file inside the tree records the suite, mirror and package list it
# was built from; the tree is reused only when the stamp matches, so editing
# PACKAGES below rebuilds it. The tree is assembled in a sibling folder and
# renamed into place when complete, under a flock, so an interrupted or
# concurrent build never leaves a half tree that looks finished.
#
# Needs root (debootstrap, chroot). Cost of the first run on 2 cores: 6 to
# 9 min (measured 3 min 19 s base + 5 min 49 s packages at load average 7;
# about 1 min 40 s + 4 min on a quiet machine), 1.6 GB; later runs: 0.1 s.
# Exit codes: 0 ok; 77 the mirror cannot be reached (callers skip);
# 1 any other failure (the log says which step).
set -euo pipefail
# debootstrap, chroot and mount live in sbin, which a test's PATH lacks.
export PATH="/usr/local/sbin:/usr/sbin:/sbin:${PATH}"

SUITE=trixie
MIRROR=${VLLM_PROFILER_ROOTFS_MIRROR:-http://deb.debian.org/debian}
PACKAGES=(python3 python3-torch libtorch-dev g++)
# The account's home from passwd, not $HOME: under `bazel test` HOME is the
# test's temp folder, and the tree must outlive it.
HOME_DIR=$(getent passwd "$(id -u)" | cut -d: -f6)
CACHE=${VLLM_PROFILER_ROOTFS_CACHE:-${HOME_DIR:-$HOME}/.cache/vllm-profiler}
ROOT="${CACHE}/rootfs-${SUITE}"
STAMP_NAME=.vllm-profiler-rootfs-stamp
STAMP="suite=${SUITE} mirror=${MIRROR} packages=${PACKAGES[*]} version=1"

log() { echo "rootfs.sh: $*" >&2; }

complete() { [ -f "$1/${STAMP_NAME}" ] && [ "$(cat "$1/${STAMP_NAME}")" = "${STAMP}" ]; }

if complete "${ROOT}"; then
  echo "${ROOT}"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  log "needs root (debootstrap, chroot)"
  exit 1
fi
command -v debootstrap >/dev/null || { log "debootstrap missing: run tools/install_deps.sh"; exit 1; }

mkdir -p "${CACHE}"
exec 9>"${CACHE}/rootfs-${SUITE}.lock"
flock 9
if complete "${ROOT}"; then  # another build finished while we waited
  echo "${ROOT}"
  exit 0
fi

# The mirror's Release file answers "can we reach it" in a second, before a
# debootstrap that would otherwise fail minutes later.
if ! curl -fsS --max-time 20 -o /dev/null "${MIRROR}/dists/${SUITE}/Release"; then
  log "cannot reach ${MIRROR}/dists/${SUITE}/Release"
  exit 77
fi

WORK="${ROOT}.partial"
MOUNTS=()
cleanup() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT

# Never rm -rf a tree that still has /proc or /dev mounted inside it.
mounted_under() { awk -v d="$1/" 'index($2, d) == 1 {print $2}' /proc/mounts; }
for d in "${WORK}" "${ROOT}"; do
  if [ -n "$(mounted_under "$d")" ]; then
    log "mounts left under $d: $(mounted_under "$d" | tr '\n' ' ')- unmount them first"
    exit 1
  fi
done
rm -rf "${WORK}"
mkdir -p "${WORK}"
start=$(date +%s)
log "debootstrap --variant=minbase ${SUITE} (about 2 min)"
if ! debootstrap --variant=minbase "${SUITE}" "${WORK}" "${MIRROR}" >"${CACHE}/rootfs-${SUITE}.log" 2>&1; then
  log "debootstrap failed; last lines of ${CACHE}/rootfs-${SUITE}.log:"
  tail -5 "${CACHE}/rootfs-${SUITE}.log" >&2
  exit 1
fi
base=$(date +%s)

for m in proc dev; do
  mount --bind "/${m}" "${WORK}/${m}"
  MOUNTS+=("${WORK}/${m}")
done
cp -L /etc/resolv.conf "${WORK}/etc/resolv.conf" 2>/dev/null || true
log "apt-get install ${PACKAGES[*]} (about 4 min)"
if ! chroot "${WORK}" /usr/bin/env DEBIAN_FRONTEND=noninteractive LC_ALL=C \
    sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends ${PACKAGES[*]} && apt-get clean" \
    >>"${CACHE}/rootfs-${SUITE}.log" 2>&1; then
  log "apt-get install failed; last lines of ${CACHE}/rootfs-${SUITE}.log:"
  tail -5 "${CACHE}/rootfs-${SUITE}.log" >&2
  exit 1
fi
cleanup
MOUNTS=()
[ -z "$(mounted_under "${WORK}")" ] || { log "cannot unmount under ${WORK}"; exit 1; }
rm -rf "${WORK}/var/lib/apt/lists/"*

echo "${STAMP}" >"${WORK}/${STAMP_NAME}"
rm -rf "${ROOT}"
mv "${WORK}" "${ROOT}"
end=$(date +%s)
log "built ${ROOT} in $((end - start)) s (base $((base - start)) s, packages $((end - base)) s), $(du -sh "${ROOT}" | cut -f1)"
echo "${ROOT}"
