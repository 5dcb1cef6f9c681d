#!/usr/bin/env bash
# A short fuzz run of every Fuzz target (the seed corpus always runs in the
# unit tests; this adds FUZZTIME of new inputs per target). A crash fails the
# run and go test leaves the failing input under testdata/fuzz/ to commit.
#   FUZZTIME=30s bash scripts/fuzz-smoke.sh     # longer
set -euo pipefail
cd "$(dirname "$0")/.."
t=${FUZZTIME:-2s}
n=0
while IFS=: read -r file name; do
  pkg=./$(dirname "$file")
  echo "-- fuzz $pkg $name ($t)"
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$t" "$pkg" >/tmp/petrel-fuzz.out 2>&1 || { cat /tmp/petrel-fuzz.out; exit 1; }
  n=$((n + 1))
done < <(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' . | sed 's|^\./||; s|:func |:|' | sort)
echo "fuzzed $n targets for $t each"
