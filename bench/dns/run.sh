#!/usr/bin/env bash
# Agent DNS benchmark: Petrel's resolver (client/dns) vs unbound and dnsmasq
# serving the same 1,000-name peer zone and the same cached control-plane
# names, on loopback, measured with dnsperf in the same run. Prints the raw
# rows and a markdown table of medians over the rounds.
#   bash bench/dns/run.sh            (from the repo root; `make bench` calls it)
# Env: ROUNDS (3), DURATION (seconds per dnsperf run, 10), RATE (fixed-rate
#      QPS for the latency runs, 10000), QPS_ARGS (dnsperf load for the
#      max-QPS runs, "-c 8 -T 2 -q 200"), PEERS (1000),
#      PROFILE (file: CPU profile of the Petrel resolver over the whole run),
#      VARIANTS ("label=path ...": more dnsbench binaries, e.g. built from
#      other commits, run as Petrel servers "petrel-label" in the same
#      rotation, for A/B comparisons), REFERENCES ("unbound dnsmasq"; ""
#      skips them).
# Ports 15353-15356 on 127.0.0.1, variants from 15357 (BASE_PORT moves them).
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
RATE=${RATE:-10000}
QPS_ARGS=${QPS_ARGS:-"-c 8 -T 2 -q 200"}
LAT_ARGS="-c 4 -T 2 -q 200 -Q $RATE"
PEERS=${PEERS:-1000}
PROFILE=${PROFILE:-}
VARIANTS=${VARIANTS:-}
REFERENCES=${REFERENCES-unbound dnsmasq}
BASE_PORT=${BASE_PORT:-15353}
P_PETREL=$BASE_PORT
P_UNBOUND=$((BASE_PORT + 1))
P_DNSMASQ=$((BASE_PORT + 2))
P_UPSTREAM=$((BASE_PORT + 3))
THREADS=$(nproc)

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

need=()
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v unbound >/dev/null || need+=(unbound)
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
if ((${#need[@]})); then
  echo "installing ${need[*]}..." >&2
  apt-get install -y "${need[@]}" >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y "${need[@]}" >/dev/null; }
fi

go build -o "$work/dnsbench" ./bench/dns/
"$work/dnsbench" -mode files -out "$work" -peers "$PEERS"

# wait_ready PORT NAME: poll until the server answers NAME.
wait_ready() {
  for _ in $(seq 100); do
    if dnsperf -s 127.0.0.1 -p "$1" -d <(echo "$2 A") -n 1 -t 1 2>/dev/null | grep -q 'NOERROR 1 '; then return 0; fi
    sleep 0.1
  done
  echo "server on port $1 did not answer $2" >&2
  exit 1
}

# --- the servers; all run for the whole benchmark, one is queried at a time.
"$work/dnsbench" -mode upstream -listen "127.0.0.1:$P_UPSTREAM" >"$work/upstream.out" 2>"$work/upstream.err" &
pids+=($!)
wait_ready "$P_UPSTREAM" api.petrel.example

"$work/dnsbench" -mode serve -listen "127.0.0.1:$P_PETREL" -upstream "127.0.0.1:$P_UPSTREAM" \
  -peers "$PEERS" ${PROFILE:+-cpuprofile "$PROFILE"} >"$work/petrel.out" 2>"$work/petrel.err" &
petrel_pid=$!
pids+=($petrel_pid)
declare -A port pid
port[petrel]=$P_PETREL pid[petrel]=$petrel_pid
servers=(petrel)
next_port=$((BASE_PORT + 4))
for v in $VARIANTS; do
  name="petrel-${v%%=*}"
  "${v#*=}" -mode serve -listen "127.0.0.1:$next_port" -upstream "127.0.0.1:$P_UPSTREAM" \
    -peers "$PEERS" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  port[$name]=$next_port pid[$name]=$!
  servers+=("$name")
  next_port=$((next_port + 1))
done

cat >"$work/unbound.conf" <<EOF
server:
  interface: 127.0.0.1
  port: $P_UNBOUND
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "$work"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  num-threads: $THREADS
  so-reuseport: yes
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: "iterator"
  include: "$work/unbound-zone.conf"
remote-control:
  control-enable: no
forward-zone:
  name: "petrel.example."
  forward-addr: 127.0.0.1@$P_UPSTREAM
EOF
if [[ " $REFERENCES " == *" unbound "* ]]; then
  unbound -d -c "$work/unbound.conf" >"$work/unbound.log" 2>&1 &
  pids+=($!)
  port[unbound]=$P_UNBOUND pid[unbound]=$!
  servers+=(unbound)
fi

if [[ " $REFERENCES " == *" dnsmasq "* ]]; then
  dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --addn-hosts="$work/hosts" --local-ttl=300 \
    --server="/petrel.example/127.0.0.1#$P_UPSTREAM" --port="$P_DNSMASQ" \
    --listen-address=127.0.0.1 --bind-interfaces --cache-size=10000 \
    --user="$(id -un)" --pid-file= --log-facility=- >"$work/dnsmasq.log" 2>&1 &
  pids+=($!)
  port[dnsmasq]=$P_DNSMASQ pid[dnsmasq]=$!
  servers+=(dnsmasq)
fi

last_peer="peer$((PEERS - 1)).petrel.internal"
for srv in "${servers[@]}"; do
  wait_ready "${port[$srv]}" "$last_peer"
  # The first query for each control-plane name fills unbound's and
  # dnsmasq's caches (Petrel's was primed at start: serve waits for it).
  for n in $(cut -d' ' -f1 "$work/queries-cache.txt"); do wait_ready "${port[$srv]}" "$n"; done
done
# cpu_ticks PID: utime+stime of all threads, in clock ticks.
cpu_ticks() { awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
dstat() { sed -n "s/^ *$1: *\([0-9.]*\).*/\1/p" "$2" | head -1; }

# measure SERVER CASE KIND: one dnsperf run; prints one key=value row.
#   KIND qps: closed loop at QPS_ARGS; reports QPS and server CPU cores.
#   KIND lat: open loop at RATE with per-query latencies (-v); lost
#   queries count as never answered (they sort last).
measure() {
  local srv=$1 cs=$2 kind=$3 out t0 t1 args
  local sport=${port[$srv]} spid=${pid[$srv]}
  out="$work/$srv-$cs-$kind.txt"
  if [[ $kind == qps ]]; then args=$QPS_ARGS; else args="$LAT_ARGS -v"; fi
  t0=$(cpu_ticks "$spid")
  # shellcheck disable=SC2086
  dnsperf -s 127.0.0.1 -p "$sport" -d "$work/queries-$cs.txt" -l "$DURATION" $args >"$out" 2>&1
  t1=$(cpu_ticks "$spid")
  local qps lost sent cores
  qps=$(dstat "Queries per second" "$out"); lost=$(dstat "Queries lost" "$out"); sent=$(dstat "Queries sent" "$out")
  cores=$(echo "scale=3; ($t1 - $t0) / $(getconf CLK_TCK) / $DURATION" | bc -l)
  local row="server=$srv case=$cs kind=$kind qps=$(printf %.0f "$qps") lost=$lost sent=$sent cores=$cores"
  [[ $kind == qps ]] && row="$row qps_per_core=$(echo "scale=0; $qps / $cores" | bc -l 2>/dev/null || echo -)"
  if [[ $kind == lat ]]; then
    # Latencies in µs, lost queries as 1e9 (printed "inf"); nearest-rank percentiles.
    local pcts
    pcts=$( { grep '^> ' "$out" | awk '{printf "%d\n", $NF * 1e6}'; for ((i = 0; i < lost; i++)); do echo 1000000000; done; } |
      sort -n | awk '{v[NR] = $1} END {
        p50 = v[int((NR * 50 + 99) / 100)]; p99 = v[int((NR * 99 + 99) / 100)]
        printf "p50_us=%s p99_us=%s", (p50 >= 1e9 ? "inf" : p50), (p99 >= 1e9 ? "inf" : p99) }')
    row="$row $pcts"
  fi
  echo "$row"
}

rows="$work/rows.txt"
: >"$rows"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  for srv in "${servers[@]}"; do
    for cs in local cache; do
      for kind in qps lat; do
        r="round=$round $(measure "$srv" "$cs" "$kind")"
        echo "$r" | tee -a "$rows"
      done
    done
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# The measured cache-hit phases must not reach the upstream: stop it and
# read its counter (it answered only the priming queries).
for srv in "${servers[@]}"; do kill "${pid[$srv]}" 2>/dev/null || true; done
kill "${pids[0]}" 2>/dev/null || true
wait "${pids[0]}" 2>/dev/null || true
echo "$(cat "$work/upstream.err") (readiness probe + priming: at most 1 + ${#servers[@]} servers x 4 names x A/AAAA = $((1 + ${#servers[@]} * 8)))"

# values KEY SERVER CASE KIND: the rounds' values of KEY, sorted.
values() { grep " server=$2 case=$3 kind=$4 " "$rows" | while read -r l; do field "$1" "$l"; done | sort -g; }
median() { values "$@" | awk '{v[NR] = $1} END {print (NR ? v[int((NR + 1) / 2)] : "-")}'; }
span() { values "$@" | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo "–" hi}'; }
echo
echo "Medians over $ROUNDS rounds, each column on its own (${DURATION} s per run; max QPS: dnsperf $QPS_ARGS;"
echo "latency: dnsperf $LAT_ARGS -v; lost queries count as slowest):"
echo
echo "| case | server | max QPS (rounds) | server CPU cores at max | QPS per server core | p50 at $RATE QPS | p99 at $RATE QPS | p99 (rounds) | lost at $RATE QPS | server cores at $RATE QPS |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for cs in local cache; do
  for srv in "${servers[@]}"; do
    printf "| %s | %s | %s (%s) | %s | %s | %s µs | %s µs | %s | %s | %s |\n" "$cs" "$srv" \
      "$(median qps "$srv" "$cs" qps)" "$(span qps "$srv" "$cs" qps)" "$(median cores "$srv" "$cs" qps)" \
      "$(median qps_per_core "$srv" "$cs" qps)" "$(median p50_us "$srv" "$cs" lat)" "$(median p99_us "$srv" "$cs" lat)" \
      "$(span p99_us "$srv" "$cs" lat)" "$(median lost "$srv" "$cs" lat)" "$(median cores "$srv" "$cs" lat)"
  done
done
