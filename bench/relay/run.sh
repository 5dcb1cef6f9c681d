#!/usr/bin/env bash
# Relay benchmark: Petrel relay vs coturn (TURN over UDP) on loopback,
# 1 and 10 pairs, 1280-byte packets. Prints a markdown table.
#   bash bench/relay/run.sh            (from the repo root; `make bench` calls it)
# Env: DURATION (default 5s), PINGS (default 2000), PAIRS (default "1 10").
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-5s}
PINGS=${PINGS:-2000}
PAIRS=${PAIRS:-"1 10"}
RELAY_ADDR=127.0.0.1:18080
TURN_PORT=13478
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

if ! command -v turnserver >/dev/null; then
  echo "installing coturn..." >&2
  (apt-get install -y coturn >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y coturn >/dev/null; }) ||
    { echo "coturn unavailable; TURN rows skipped" >&2; }
fi

go build -o "$work/relaybench" ./bench/relay/

"$work/relaybench" -mode server -listen "$RELAY_ADDR" -secret-file "$work/secret" >"$work/relay.out" 2>"$work/relay.err" &
relay_pid=$!
pids+=("$relay_pid")
for _ in $(seq 100); do grep -q ready "$work/relay.out" 2>/dev/null && break; sleep 0.1; done

turn_pid=""
if command -v turnserver >/dev/null; then
  turnserver -n --listening-ip=127.0.0.1 --listening-port=$TURN_PORT --relay-ip=127.0.0.1 \
    --lt-cred-mech --user=u:p --realm=lab --no-tls --no-dtls --no-cli \
    --allow-loopback-peers --log-file=stdout --simple-log >"$work/turn.log" 2>&1 &
  turn_pid=$!
  pids+=("$turn_pid")
  sleep 1
fi

run() { "$work/relaybench" "$@" -duration "$DURATION" -pings "$PINGS"; }
# added RELAY BASE: RTT added over direct UDP; a negative difference means the
# baseline's tail was noisier than the relay's (loaded machine).
added() {
  local d; d=$(echo "$1 - $2" | bc -l)
  if (( $(echo "$d < 0" | bc -l) )); then echo "n/a (noise)"; else printf "%.1f" "$d"; fi
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

echo "| pairs | relay | Mbit/s | loss % | RTT p50 µs | RTT p99 µs | added p50 µs | added p99 µs | server cores | Mbit/s per core |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for n in $PAIRS; do
  # Baseline: direct UDP on loopback; best of 3 per percentile (machine noise).
  b50=""; b99=""
  for _ in 1 2 3; do
    base=$(run -mode direct -pairs "$n")
    x50=$(field rtt_p50_us "$base"); x99=$(field rtt_p99_us "$base")
    if [[ -z "$b50" ]] || (( $(echo "$x50 < $b50" | bc -l) )); then b50=$x50; fi
    if [[ -z "$b99" ]] || (( $(echo "$x99 < $b99" | bc -l) )); then b99=$x99; fi
  done
  rows=()
  rows+=("petrel|$(run -mode petrel -pairs "$n" -relay "rel://$RELAY_ADDR" -secret-file "$work/secret" -server-pid "$relay_pid")")
  if [[ -n "$turn_pid" ]]; then
    rows+=("coturn|$(run -mode turn -pairs "$n" -turn 127.0.0.1:$TURN_PORT -server-pid "$turn_pid")")
  fi
  for r in "${rows[@]}"; do
    name=${r%%|*}; line=${r#*|}
    p50=$(field rtt_p50_us "$line"); p99=$(field rtt_p99_us "$line")
    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n" "$n" "$name" \
      "$(field mbps "$line")" "$(field loss_pct "$line")" "$p50" "$p99" \
      "$(added "$p50" "$b50")" "$(added "$p99" "$b99")" \
      "$(field server_cores "$line")" "$(field mbps_per_core "$line")"
    eval "res_${name}_$n='$line'"
  done
  echo "| $n | direct UDP (baseline) | | | $b50 | $b99 | | | | |"
  if [[ -n "$turn_pid" ]]; then
    pl="res_petrel_$n"; cl="res_coturn_$n"
    pm=$(field mbps "${!pl}"); cm=$(field mbps "${!cl}")
    ppc=$(field mbps_per_core "${!pl}"); cpc=$(field mbps_per_core "${!cl}")
    echo "| $n | ratio petrel/coturn | $(echo "scale=2; $pm / $cm" | bc -l) | | | | | | | $(echo "scale=2; $ppc / $cpc" | bc -l) |"
  fi
done
