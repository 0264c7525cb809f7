#!/usr/bin/env bash
# Builds `weed` (SeaweedFS: master, volume, filer and S3 gateway in one binary) from the Go
# module pinned beside this script, into a cache directory keyed by that pin. The dev/test
# cluster runs `weed server -s3` as its S3-compatible object store (devcluster/objectstore.py).
# A second run with the same pin reuses the cache and builds nothing. Prints the binary
# directory last. A cold build takes about ten minutes (SeaweedFS pulls in many cloud SDKs).
#
# Nothing built here ships in jobgate: in a user's cluster the store is any S3 service.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache_root=${JOBGATE_BIN_CACHE:-$repo/.cache/bin}

key=$(cat "$here"/seaweedfs/go.mod "$here"/seaweedfs/go.sum "$0" | sha256sum | cut -c1-16)
out=$cache_root/store-$key
if [[ -f $out/.complete ]]; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { echo "store/build.sh: Go is not installed (need go >= 1.26)" >&2; exit 1; }
mkdir -p "$out"
start=$(date +%s)
version=$(cd "$here/seaweedfs" && go list -m -f '{{.Version}}' github.com/seaweedfs/seaweedfs)
echo "store/build.sh: building weed $version ..." >&2
(cd "$here/seaweedfs" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false nice -n 10 \
  go build -trimpath -ldflags "-s -w" -o "$out/" github.com/seaweedfs/seaweedfs/weed) >&2
echo "seaweedfs=$version" > "$out/VERSIONS"
touch "$out/.complete"
echo "store/build.sh: built weed in $(( $(date +%s) - start ))s" >&2
echo "$out"
