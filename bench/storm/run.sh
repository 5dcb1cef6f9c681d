#!/usr/bin/env bash
# Update-storm benchmark (issue 12): 5,000 simulated agents (clients of the
# real management gRPC API, multiplexed over ~50 connections) on one real
# petrel-server in a child process (SQLite in a temporary directory), 10% of
# the agents churned per minute (reconnects; peers deleted through REST and
# new ones registered), a policy change through REST every 30 s, 5 minutes of
# storm with a checkpoint every minute. Exits 1 if a change was lost, a serial
# gap was seen or the server's goroutines or heap grew. Results: BENCHMARKS.md
# "Update storms".
# Usage: bash bench/storm/run.sh [extra flags, e.g. -agents 200 -duration 20s]
set -euo pipefail
cd "$(dirname "$0")/../.."
# The agents need only ~60 sockets, but a raised limit keeps larger -agents
# runs (and the server's SQLite files) clear of EMFILE.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
${GO:-go} build -o .bin/storm-bench ./bench/storm
exec .bin/storm-bench -agents 5000 -duration 5m -churn 0.10 -replace 0.3 -policy-every 30s -check-every 1m "$@"
