#!/usr/bin/env bash
# Builds the local cluster's binaries (etcd, kube-apiserver, kube-scheduler,
# kube-controller-manager, kubectl, kwok) from the Go modules pinned beside this
# script, into a cache directory keyed by those pins. A second run with the same
# pins reuses the cache and builds nothing. Prints the binary directory last.
#
# Nothing built here ships in jobgate: these binaries only run the dev/test cluster.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache_root=${JOBGATE_BIN_CACHE:-$repo/.cache/bin}

# The key covers everything that decides what gets built: the pins and this script.
key=$(cat "$here"/*/go.mod "$here"/*/go.sum "$0" | sha256sum | cut -c1-16)
out=$cache_root/$key
if [[ -f $out/.complete ]]; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is not installed (need go >= 1.24)" >&2; exit 1; }
mkdir -p "$out"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
start=$(date +%s)

# version_of MODULE_DIR MODULE prints the version that MODULE_DIR's go.mod pins.
version_of() { (cd "$1" && go list -m -f '{{.Version}}' "$2"); }

build() { # build MODULE_DIR LDFLAGS PACKAGE...
  local dir=$1 ldflags=$2; shift 2
  local t0; t0=$(date +%s)
  echo "build.sh: building $(printf '%s ' "${@##*/}")in $(basename "$dir") ..." >&2
  (cd "$dir" && go build -trimpath -ldflags "-s -w $ldflags" -o "$out/" "$@") >&2
  echo "build.sh:   done in $(( $(date +%s) - t0 ))s" >&2
}

k8s_version=$(version_of "$here/kubernetes" k8s.io/kubernetes)
k8s_minor=$(echo "$k8s_version" | cut -d. -f2)
build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
k8s_ldflags=""
# The same stamps Kubernetes' own hack/lib/version.sh writes, so `kubectl version`
# and /version report the real release instead of v0.0.0-master.
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

build "$here/etcd" "" go.etcd.io/etcd/server/v3
mv "$out/server" "$out/etcd"  # the main package is the module root, named "server"
build "$here/kwok" "" sigs.k8s.io/kwok/cmd/kwok
build "$here/kubernetes" "$k8s_ldflags" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubectl

echo "kubernetes=$k8s_version etcd=$(version_of "$here/etcd" go.etcd.io/etcd/server/v3) kwok=$(version_of "$here/kwok" sigs.k8s.io/kwok)" > "$out/VERSIONS"
touch "$out/.complete"
echo "build.sh: built $(cat "$out/VERSIONS") in $(( $(date +%s) - start ))s" >&2
echo "$out"
