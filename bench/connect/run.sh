#!/usr/bin/env bash
# Connection-time benchmark: two agents (TUN) behind lab NATs, time from
# starting both to the first ping reply, direct (EIM+EIM) and relayed
# (EIM+symmetric), plus idle RSS. Needs root. Results: docs/bench/connect.md.
# Usage: bash bench/connect/run.sh [-trials N] [-modes direct,relayed] [-logs DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ]; then
	echo "bench/connect/run.sh: needs root (network namespaces, TUN)" >&2
	exit 2
fi
${GO:-go} run ./lab/cmd/lab cleanup >/dev/null
exec ${GO:-go} run ./bench/connect "$@"
