#!/usr/bin/env bash
# Builds the binaries of the local dev cluster's one real node, from the Go modules pinned
# beside this script, into a cache directory keyed by those pins:
#
#   kubelet                   k8s.io/kubernetes/cmd/kubelet, the control plane's release
#   containerd, containerd-shim-runc-v2, ctr
#   runc                      cgo + Debian's libseccomp-dev, tag `seccomp` (kubelet asks
#                             every container for the RuntimeDefault seccomp profile)
#   bridge, host-local, loopback   CNI plugins
#   pause                     our own (pause/main.go): the pods' sandbox process
#
# A second run with the same pins reuses the cache and builds nothing. Prints the binary
# directory last. The Debian packages the build needs (a C toolchain, libseccomp-dev,
# pkg-config) are installed first if missing (apt-get; root). Builds run under `nice`.
#
# Nothing built here ships in jobgate: these binaries only run the dev/test cluster's node.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache_root=${JOBGATE_BIN_CACHE:-$repo/.cache/bin}

# The key covers everything that decides what gets built: the pins, pause's source, this script.
key=$(cat "$here"/*/go.mod "$here"/*/go.sum "$here"/pause/*.go "$0" 2>/dev/null | sha256sum | cut -c1-16)
out=$cache_root/node-$key
if [[ -f $out/.complete ]]; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { echo "node/build.sh: Go is not installed (need go >= 1.24)" >&2; exit 1; }
bash "$here/debian-packages.sh" build >&2
mkdir -p "$out"
export GOFLAGS=-buildvcs=false
start=$(date +%s)

version_of() { (cd "$1" && go list -m -f '{{.Version}}' "$2"); }

build() { # [GO_BUILD_FLAGS=...] build MODULE_DIR CGO TAGS LDFLAGS PACKAGE...
  local dir=$1 cgo=$2 tags=$3 ldflags=$4; shift 4
  local t0; t0=$(date +%s)
  echo "node/build.sh: building $(printf '%s ' "${@##*/}")in $(basename "$dir") ..." >&2
  # shellcheck disable=SC2086  # GO_BUILD_FLAGS is a list of flags
  (cd "$dir" && CGO_ENABLED=$cgo nice -n 10 go build -trimpath ${GO_BUILD_FLAGS:-} -tags "$tags" \
    -ldflags "-s -w $ldflags" -o "$out/" "$@") >&2
  echo "node/build.sh:   done in $(( $(date +%s) - t0 ))s" >&2
}

k8s_version=$(version_of "$here/kubelet" k8s.io/kubernetes)
k8s_minor=$(echo "$k8s_version" | cut -d. -f2)
containerd_version=$(version_of "$here/containerd" github.com/containerd/containerd/v2)
runc_version=$(version_of "$here/runc" github.com/opencontainers/runc)
cni_version=$(version_of "$here/cni" github.com/containernetworking/plugins)
build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# The same version stamps the projects' own release builds write.
k8s_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done
containerd_ldflags="-X github.com/containerd/containerd/v2/version.Version=$containerd_version"
containerd_ldflags+=" -X github.com/containerd/containerd/v2/version.Package=github.com/containerd/containerd/v2"
cni_ldflags="-X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$cni_version"

build "$here/pause" 0 "" "-X main.version=$(sha256sum "$here/pause/main.go" | cut -c1-12)" jobgate.io/hack/node/pause
build "$here/cni" 0 "" "$cni_ldflags" \
  github.com/containernetworking/plugins/plugins/main/bridge \
  github.com/containernetworking/plugins/plugins/main/loopback \
  github.com/containernetworking/plugins/plugins/ipam/host-local
# runc links libseccomp statively (static-pie, as runc's own release build does), so the
# cached binary does not depend on the host's libseccomp2 at run time.
GO_BUILD_FLAGS=-buildmode=pie build "$here/runc" 1 "seccomp urfave_cli_no_docs netgo osusergo" \
  "-linkmode external -extldflags -static-pie" github.com/opencontainers/runc
# No btrfs/devmapper/zfs snapshotters: the node uses overlayfs, and they would need cgo.
build "$here/containerd" 0 "no_btrfs no_devmapper no_zfs" "$containerd_ldflags" \
  github.com/containerd/containerd/v2/cmd/containerd \
  github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
  github.com/containerd/containerd/v2/cmd/ctr
build "$here/kubelet" 0 "" "$k8s_ldflags" k8s.io/kubernetes/cmd/kubelet

"$out/runc" --version | grep -q 'seccomp' || { echo "node/build.sh: runc was built without seccomp" >&2; exit 1; }
echo "kubelet=$k8s_version containerd=$containerd_version runc=$runc_version cni-plugins=$cni_version" > "$out/VERSIONS"
touch "$out/.complete"
echo "node/build.sh: built $(cat "$out/VERSIONS") in $(( $(date +%s) - start ))s" >&2
echo "$out"
