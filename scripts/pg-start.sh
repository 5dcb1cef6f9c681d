#!/usr/bin/env bash
# Starts a throwaway PostgreSQL for the store tests and prints, on stdout,
# shell lines to eval:
#   export PETREL_TEST_POSTGRES_DSN='postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable'
#   export PETREL_TEST_POSTGRES_DIR='/tmp/petrel-pg.XXXXXX'
# Usage:
#   eval "$(scripts/pg-start.sh)"            # start (port $PG_PORT or 15432, next free one)
#   scripts/pg-start.sh stop "$PETREL_TEST_POSTGRES_DIR"   # stop and delete
# Runs as root (CI: installs postgresql if missing, runs the server as user
# postgres) or as an ordinary user. Everything else goes to stderr.
set -euo pipefail

log() { echo "pg-start: $*" >&2; }

find_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

# as_pg runs a command as the database owner (postgres when we are root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    su postgres -s /bin/sh -c "$1"
  else
    sh -c "$1"
  fi
}

if [ "${1:-}" = stop ]; then
  dir=${2:?usage: pg-start.sh stop DIR}
  bin=$(find_bin)
  if [ -f "$dir/data/PG_VERSION" ] && [ -n "$bin" ]; then
    as_pg "'$bin/pg_ctl' -D '$dir/data' -m fast -w stop" >&2 || true
  fi
  case "$dir" in
    */petrel-pg.*) rm -rf "$dir" ;;
    *) log "not removing $dir (not a pg-start directory)" ;;
  esac
  exit 0
fi

bin=$(find_bin)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  if [ "$(id -u)" != 0 ]; then
    log "PostgreSQL server binaries not found and not root; install postgresql"
    exit 1
  fi
  log "installing postgresql"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
  bin=$(find_bin)
fi

# A free port: start at $PG_PORT (default 15432) and walk up.
port=${PG_PORT:-15432}
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
  port=$((port + 1))
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/petrel-pg.XXXXXX")
chmod 700 "$dir"
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$dir"
fi

log "initdb in $dir"
as_pg "'$bin/initdb' -D '$dir/data' -A trust -U postgres -E UTF8 --locale=C --no-sync" >"$dir/initdb.log" 2>&1 || {
  cat "$dir/initdb.log" >&2
  exit 1
}
log "starting on 127.0.0.1:$port"
as_pg "'$bin/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w -t 60 -o \"-h 127.0.0.1 -p $port -k '$dir' -c fsync=off -c max_connections=300\" start" >&2 || {
  cat "$dir/server.log" >&2
  exit 1
}

echo "export PETREL_TEST_POSTGRES_DSN='postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable'"
echo "export PETREL_TEST_POSTGRES_DIR='$dir'"
