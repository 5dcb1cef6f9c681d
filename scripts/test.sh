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

if [ "$(id -u)" = 0 ] && [ -f scripts/lab.sh ]; then
  echo "== lab tests (network namespaces)"
  bash scripts/lab.sh
else
  echo "note: lab tests need root; skipped"
fi
echo "== all tests passed"
