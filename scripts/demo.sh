#!/usr/bin/env bash
# The Petrel demo: a control plane and three agents on this machine, no root.
#   1. builds petrel-server and petrel
#   2. starts petrel-server on loopback (embedded SQLite store)
#   3. creates a setup key through the admin API
#   4. starts three agents (userspace netstack mode) as separate processes
#   5. shows a live status table until every agent reaches every peer
#   6. pings each peer by its DNS name over the encrypted overlay
#   7. stops everything and checks nothing is left behind
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
DEMO="$ROOT/.demo"
BIN="$DEMO/bin"
PIDS=()
AGENTS=(alpha bravo charlie)

# Bold headings and the live screen only on a terminal, never with NO_COLOR
# or TERM=dumb (no escape sequences in a log or a pipe).
tty=0
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ] && [ "${TERM:-dumb}" != dumb ]; then tty=1; fi
say() {
  if [ "$tty" = 1 ]; then printf '\n\033[1m== %s\033[0m\n' "$*"; else printf '\n== %s\n' "$*"; fi
}
info() { printf '   %s\n' "$*"; }

# build_progress reads `go build -v` output: it reports module downloads
# and every 25th compiled package, and passes errors through.
build_progress() {
  local n=0 line
  while IFS= read -r line; do
    case $line in
    "") ;;
    "go: downloading "*) info "downloading ${line#go: downloading }" ;;
    *" "* | "#"*) printf '%s\n' "$line" ;; # compiler and build errors
    *)
      n=$((n + 1))
      if [ $((n % 25)) = 0 ]; then info "compiled $n packages ($line), ${SECONDS}s"; fi
      ;;
    esac
  done
  if [ "$n" = 0 ]; then info "up to date (everything was in the build cache)"; else info "compiled $n packages in ${SECONDS}s"; fi
}

cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  done
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)); }

say "1/7 building petrel-server and petrel"
info "the first build downloads Go modules and compiles ~600 packages: it can take a few minutes"
rm -rf "$DEMO"; mkdir -p "$BIN"
SECONDS=0
GOFLAGS="${GOFLAGS:-} -v" bash scripts/build.sh "$BIN" 2>&1 | build_progress
info "binaries in $BIN"

say "2/7 starting the control plane (management, signal, relay, STUN) on loopback"
PORT=$(free_port); STUN_PORT=$(free_port)
"$BIN/petrel-server" run --data-dir "$DEMO/server" --listen "127.0.0.1:$PORT" \
  --stun-listen "127.0.0.1:$STUN_PORT" --metrics-listen "127.0.0.1:$(free_port)" >"$DEMO/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$DEMO/server/admin-token" ] && break; sleep 0.1; done
[ -s "$DEMO/server/admin-token" ] || { echo "server did not start:"; cat "$DEMO/server.log"; exit 1; }
info "petrel-server: http://127.0.0.1:$PORT (gRPC + REST /api + relay /relay), STUN udp/$STUN_PORT"
info "admin token written to $DEMO/server/admin-token (mode 0600)"

say "3/7 creating a reusable setup key through the REST API"
KEY=$("$BIN/petrel-server" setup-key create --server "http://127.0.0.1:$PORT" \
  --token-file "$DEMO/server/admin-token" --reusable --name demo)
info "setup key: ${KEY:0:8}… (peers register with it once; the agent then uses its WireGuard key)"

say "4/7 starting three agents (userspace WireGuard, no root)"
for a in "${AGENTS[@]}"; do
  "$BIN/petrel" up --foreground --netstack --ice-loopback --hostname "$a" \
    --management-url "http://127.0.0.1:$PORT" --setup-key "$KEY" \
    --state-dir "$DEMO/$a" >"$DEMO/$a.log" 2>&1 &
  PIDS+=($!)
  info "agent $a: state in $DEMO/$a, log $DEMO/$a.log"
done

st() { "$BIN/petrel" status --state-dir "$DEMO/$1" "${@:2}"; }

say "5/7 waiting for every agent to reach every peer (live status of alpha)"
ok=0
for i in $(seq 120); do
  connected=0
  for a in "${AGENTS[@]}"; do
    n=$(st "$a" --json 2>/dev/null | grep -c '"status": "connected"' || true)
    connected=$((connected + n))
  done
  if [ "$tty" = 1 ]; then printf '\033[2J\033[H'; fi
  echo "t=$((i/2))s  connected peer links: $connected/6"
  st alpha 2>/dev/null || true
  if [ "$connected" -ge 6 ]; then ok=1; break; fi
  sleep 0.5
done
[ "$ok" = 1 ] || { echo "the mesh did not come up; logs in $DEMO"; tail -n 20 "$DEMO"/*.log; exit 1; }
for a in "${AGENTS[@]}"; do echo; echo "--- petrel status ($a)"; st "$a"; done

say "6/7 pinging every peer by its DNS name over the overlay"
for a in "${AGENTS[@]}"; do
  for b in "${AGENTS[@]}"; do
    [ "$a" = "$b" ] && continue
    printf '   %-8s -> ' "$a"
    reply=$("$BIN/petrel" ping --state-dir "$DEMO/$a" -c 1 "$b.petrel.internal")
    printf '%s\n' "${reply%%$'\n'*}" # the reply line, not the summary
  done
done

say "7/7 stopping everything"
cleanup
PIDS=()
left=$(ls "$DEMO"/*/petrel.sock 2>/dev/null | wc -l)
info "agents and server stopped; sockets left behind: $left"
echo
echo "What happened: petrel-server handed each agent an overlay IP and a network map;"
echo "the agents exchanged end-to-end encrypted offers through signal, punched direct"
echo "WireGuard paths with ICE (path p2p above; the relay carries traffic until then),"
echo "and the pings crossed the encrypted tunnels. Logs: $DEMO"
