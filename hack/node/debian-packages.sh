#!/usr/bin/env bash
# Installs (apt-get, as root) the Debian packages the local dev cluster's real node needs
# that are missing, and nothing else:
#   build   what hack/node/build.sh needs: a C toolchain and libseccomp-dev (runc is built
#           with cgo and the `seccomp` tag), pkg-config (libseccomp-golang finds it with it)
#   images  what devcluster/nodeimages.py needs: debootstrap (the job image's Debian rootfs)
#   run     what devcluster/realnode.py runs: ip (iproute2), mount/unshare/nsenter (util-linux)
#   all     all of the above
set -euo pipefail

declare -A needs=(
  [build]="gcc libc6-dev libseccomp-dev pkg-config"
  [images]="debootstrap"
  [run]="iproute2 mount util-linux"
)
wanted=()
for group in "${@:-all}"; do
  if [[ $group == all ]]; then
    for g in "${!needs[@]}"; do read -ra list <<< "${needs[$g]}"; wanted+=("${list[@]}"); done
  elif [[ -n ${needs[$group]:-} ]]; then
    read -ra list <<< "${needs[$group]}"; wanted+=("${list[@]}")
  else
    echo "debian-packages.sh: unknown group '$group' (build, images, run, all)" >&2; exit 2
  fi
done

missing=()
for pkg in "${wanted[@]}"; do
  status=$(dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "debian-packages.sh: need root to install: ${missing[*]}" >&2; exit 1
fi
echo "debian-packages.sh: installing ${missing[*]} ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
