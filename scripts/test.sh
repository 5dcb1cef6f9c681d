#!/usr/bin/env bash
# The whole test suite: gofmt and vet, unit and in-process integration tests
# under -race, the store suite against a throwaway PostgreSQL (started here
# when running as root), and the network-namespace lab tests (root only).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then echo "not gofmt'ed:"; echo "$bad"; exit 1; fi

echo "== go vet"
go vet ./...

# Every release binary must build: the agent's macOS, Windows and FreeBSD
# code only ever runs through these builds here (docs/platforms.md).
echo "== release cross-builds (scripts/release.sh)"
(rel=$(mktemp -d) && trap 'rm -rf "$rel"' EXIT && VERSION=0.0.0-ci bash scripts/release.sh "$rel")

# The REST API's OpenAPI document, linted with Redocly CLI's recommended-strict
# rules (management/restapi/redocly.yaml); go test validates it with
# kin-openapi as well. Redocly CLI 2.x needs Node.js >= 20.19.
REDOCLY=@redocly/cli@2.77.0
echo "== openapi lint ($REDOCLY)"
if command -v npx >/dev/null 2>&1 &&
  node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a == 20 && b >= 19) ? 0 : 1)'; then
  npx --yes "$REDOCLY" lint --config management/restapi/redocly.yaml management/restapi/openapi.yaml
elif [ -n "${CI:-}" ]; then
  echo "the OpenAPI lint needs Node.js >= 20.19 with npx"; exit 1
else
  echo "note: OpenAPI lint skipped (needs Node.js >= 20.19 with npx)"
fi

PG_STARTED=""
cleanup() {
  if [ -n "$PG_STARTED" ]; then bash scripts/pg-start.sh stop "$PG_STARTED" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
if [ -z "${PETREL_TEST_POSTGRES_DSN:-}" ] && [ "$(id -u)" = 0 ] && [ -f scripts/pg-start.sh ]; then
  echo "== starting a throwaway PostgreSQL"
  out=$(bash scripts/pg-start.sh)
  eval "$out"
  PG_STARTED="${PETREL_TEST_POSTGRES_DIR:-}"
fi
if [ -z "${PETREL_TEST_POSTGRES_DSN:-}" ]; then
  echo "note: PostgreSQL store tests will be skipped (run as root, or set PETREL_TEST_POSTGRES_DSN)"
fi

echo "== go test -race ./..."
go test -race -count=1 -timeout 30m ./...

echo "== fuzz smoke run (every target, ${FUZZTIME:-500x} each)"
bash scripts/fuzz-smoke.sh

if [ "$(id -u)" = 0 ]; then
  echo "== package install check (dpkg --install into a throwaway root)"
  go test -tags lab -count=1 -timeout 15m ./packaging/
else
  echo "note: the package install check needs root; skipped"
fi

if [ "$(id -u)" = 0 ] && [ -f scripts/lab.sh ]; then
  echo "== lab tests (network namespaces)"
  bash scripts/lab.sh
else
  echo "note: lab tests need root; skipped"
fi
echo "== all tests passed"
