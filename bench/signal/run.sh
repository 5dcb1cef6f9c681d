#!/usr/bin/env bash
# Signal throughput/latency benchmark (non-interactive; `make bench` may call it).
# Usage: bench/signal/run.sh [extra flags for ./bench/signal]
set -euo pipefail
cd "$(dirname "$0")/../.."
go build -o .bin/signal-bench ./bench/signal
echo "== saturation: 1000 clients, closed loop (8 in flight per client)"
.bin/signal-bench -clients 1000 -inflight 8 -duration 10s -warmup 5s "$@"
echo "== latency at 10k msgs/s offered: 1000 clients"
.bin/signal-bench -clients 1000 -inflight 8 -rate 10000 -duration 10s -warmup 5s "$@"
