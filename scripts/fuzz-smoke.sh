#!/usr/bin/env bash
# A short fuzz run of every Fuzz target (the seed corpus always runs in the
# unit tests; this adds FUZZTIME of new inputs per target). A crash fails the
# run and go test leaves the failing input under testdata/fuzz/ to commit.
#   FUZZTIME=30s bash scripts/fuzz-smoke.sh     # longer (a duration or Nx)
# The default is a count of inputs, not a duration: with a few seconds on a
# loaded machine Go's fuzzing coordinator can hit its own deadline while a
# worker is still starting and report "context deadline exceeded" for a
# target that found nothing; that case (no new input saved) is retried once.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${FUZZTIME:-500x}
n=0
while IFS=: read -r file name; do
  pkg=./$(dirname "$file")
  echo "-- fuzz $pkg $name ($t)"
  ok=""
  for attempt in 1 2; do
    if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$t" -parallel 1 "$pkg" >/tmp/petrel-fuzz.out 2>&1; then ok=1; break; fi
    grep -q "context deadline exceeded" /tmp/petrel-fuzz.out && ! grep -q "Failing input written" /tmp/petrel-fuzz.out || break
    echo "   (fuzzing engine deadline, nothing found; once more)"
  done
  [ -n "$ok" ] || { cat /tmp/petrel-fuzz.out; exit 1; }
  n=$((n + 1))
done < <(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' . | sed 's|^\./||; s|:func |:|' | sort)
echo "fuzzed $n targets for $t each"
