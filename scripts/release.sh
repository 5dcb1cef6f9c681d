#!/usr/bin/env bash
# Cross-builds the release binaries (`make release`; CI runs it too): the
# agent for every platform of docs/platforms.md and the server for Linux,
# into OUTDIR (default bin/release/), named petrel-VERSION-OS-ARCH[.exe]
# and petrel-server-VERSION-linux-ARCH, plus SHA256SUMS.
#   version  $VERSION, else `git describe` of the last vX.Y.Z tag without
#            the v (1.2.3; 1.2.3-5-gHASH after it; -dirty with local
#            changes), else 0.0.0-dev; stamped as `petrel --version`.
#   flags    scripts/build.sh builds each binary (CGO_ENABLED=0, -tags
#            grpcnotrace, -trimpath, the commit; see there why), with
#            -ldflags "-s -w -X main.version=VERSION" added: no symbol
#            table, no DWARF.
#   arm      linux/arm is ARMv7 (GOARM=7); linux/mipsle uses soft float
#            (GOMIPS=softfloat: many MIPS routers have no FPU).
#   JOBS     builds run in parallel (default 2).
# Usage: scripts/release.sh [OUTDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bin/release}
jobs=${JOBS:-2}

agent_targets="linux/amd64 linux/arm64 linux/arm linux/mipsle darwin/amd64 darwin/arm64 windows/amd64 freebsd/amd64"
server_targets="linux/amd64 linux/arm64"

version=${VERSION:-}
if [ -z "$version" ]; then
	version=$(git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null || true)
	version=${version#v}
	version=${version:-0.0.0-dev}
fi
if ! [[ $version =~ ^[0-9A-Za-z][0-9A-Za-z.+~-]*$ ]]; then
	echo "release: bad version '$version' (letters, digits and . + ~ - only)" >&2
	exit 2
fi
if ! [[ $jobs =~ ^[1-9][0-9]*$ ]]; then
	echo "release: JOBS must be a positive number, not '$jobs'" >&2
	exit 2
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/petrel-* "$out"/SHA256SUMS
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# build NAME PACKAGE OS ARCH: one binary, renamed into $out.
build() {
	local name=$1 pkg=$2 os=$3 arch=$4 ext=""
	[ "$os" = windows ] && ext=.exe
	local dir="$tmp/$name-$os-$arch"
	# build.sh merges each -ldflags=X word of GOFLAGS into its own -ldflags.
	GOOS=$os GOARCH=$arch GOARM=7 GOMIPS=softfloat \
		GOFLAGS="${GOFLAGS:-} -ldflags=-s -ldflags=-w -ldflags=-X=main.version=$version" \
		bash scripts/build.sh "$dir" "$pkg"
	mv "$dir/$name$ext" "$out/$name-$version-$os-$arch$ext"
	echo "built $name-$version-$os-$arch$ext"
}

running=0 failed=0
start() {
	if [ "$running" -ge "$jobs" ]; then
		wait -n || failed=1
		running=$((running - 1))
	fi
	build "$@" &
	running=$((running + 1))
}
for t in $agent_targets; do start petrel ./cmd/petrel "${t%/*}" "${t#*/}"; done
for t in $server_targets; do start petrel-server ./cmd/petrel-server "${t%/*}" "${t#*/}"; done
while [ "$running" -gt 0 ]; do
	wait -n || failed=1
	running=$((running - 1))
done
if [ "$failed" != 0 ]; then
	echo "release: a build failed" >&2
	exit 1
fi
(cd "$out" && sha256sum -- petrel-* >SHA256SUMS)
echo "release $version: $(ls "$out" | grep -c '^petrel-') binaries and SHA256SUMS in $out"
