#!/usr/bin/env bash
# Build the petrel and petrel-server .deb packages (`make package`).
#   version       from `git describe` of the last vX.Y.Z tag (1.2.3,
#                 1.2.3+git5.gHASH after it, +dirty for local changes);
#                 0.0.0~dev without a tag. Also set as `petrel --version`.
#   architecture  GOARCH (default: the Go toolchain's), Debian's name for it
#   file times    the last commit's time, so two builds of one commit match
# The binaries come from scripts/build.sh, the one way they are built; the
# packages are written by packaging/cmd/mkdeb with the nfpm library.
# Usage: scripts/package.sh [OUTDIR]   (default dist/)
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
out=${1:-dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)

arch=${GOARCH:-$("$GO" env GOARCH)}
describe=$(git describe --tags --long --match 'v[0-9]*' --dirty 2>/dev/null || true)
mtime=$(git log -1 --format=%ct 2>/dev/null || date +%s)

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
# The -X is ignored by binaries without a main.version.
ver=$("$GO" run ./packaging/cmd/mkdeb --print-version --describe "$describe")
GOOS=linux GOARCH=$arch GOFLAGS="${GOFLAGS:-} -ldflags=-X=main.version=$ver" \
	GO="$GO" bash scripts/build.sh "$bin" ./cmd/petrel ./cmd/petrel-server
"$GO" run ./packaging/cmd/mkdeb --bin-dir "$bin" --src-dir packaging --out "$out" \
	--arch "$arch" --describe "$describe" --mtime "$mtime"
