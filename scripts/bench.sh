#!/usr/bin/env bash
# make bench: every benchmark of the project, one after another. Raw output
# goes to .bench/<name>.txt; the tables in BENCHMARKS.md are copied from
# these runs (see each section there for the exact command).
#   BENCH_ONLY="netmap relay" bash scripts/bench.sh   # a subset
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=.bench
mkdir -p "$OUT"
only=" ${BENCH_ONLY:-netmap wire store wg firewall signal relay dns storm matrix ui ha dataplane connect failover} "
fail=0

step() {
  local name=$1; shift
  case "$only" in *" $name "*) ;; *) return 0 ;; esac
  echo "== $name: $*"
  if "$@" 2>&1 | tee "$OUT/$name.txt"; then :; else echo "!! $name failed"; fail=1; fi
}

step netmap go test ./management/netmap -run '^$' -bench . -benchmem -benchtime 3x
step wire   go test ./management/grpcapi ./client/mgmt -run 'TestWireSizes' -v -bench 'WireSize|OpenFullMap' -benchmem -benchtime 5x
step store  go test ./management/store/sqlite ./management/store/postgres -run '^$' -bench . -benchtime 2s
step wg     go test ./client/wg -run '^$' -bench . -benchtime 2s
step firewall go test ./client/firewall -run '^$' -bench . -benchmem
step signal bash bench/signal/run.sh
step relay  bash bench/relay/run.sh
step dns bash bench/dns/run.sh
step storm bash bench/storm/run.sh
step matrix go test ./management -run '^$' -bench Connectivity -benchmem -benchtime 200x
# Dashboard: the peers page of a 5,000-peer account, first byte and full
# render in headless Chromium (needs chromium); table in .bench/ui-report.md.
rm -f "$OUT/ui-report.md"
step ui env PETREL_UI_TIMINGS=1 PETREL_UI_TIMINGS_REPORT="$PWD/$OUT/ui-report.md" go test -count=1 -run 'TestPeersPageTimings$' -v ./management/ui/
# HA control plane: 3 instances, 300 simulated agents, 10 kill -9 trials and
# a 10 s database freeze; tables appended to .bench/ha-report.md.
rm -f "$OUT/ha-report.md"
step ha env PETREL_HA_TRIALS=10 PETREL_HA_AGENTS=300 PETREL_HA_REPORT="$PWD/$OUT/ha-report.md" \
  go test -count=1 -timeout 30m -run 'TestKillInstance$|TestFrozenDatabase$' -v ./e2e/ha/
if [ "$(id -u)" = 0 ]; then
  step dataplane bash bench/dataplane/run.sh
  step connect bash bench/connect/run.sh
  step failover env PETREL_FAILOVER_TRIALS=10 go test -tags lab -count=1 -run 'TestSiteRouteHAFailover$' -v ./e2e/
else
  echo "note: the data-plane and connection-time lab rigs need root; skipped"
fi
echo "raw results in $OUT/"
exit $fail
