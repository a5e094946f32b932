#!/usr/bin/env bash
# Gate latency (make bench, or on its own): `vigil serve --http` on
# loopback, on SQLite and on a fresh PostgreSQL database (dropped after),
# seeded through the API with real scans (gateload -seed: a git repository
# of six commits on main and a feature branch, a waiver, a small image in
# a registry on loopback), then GATE_CLIENTS concurrent clients for
# GATE_DURATION against GET /api/v1/gate, once per rate in GATE_RATES
# (0: a closed loop, each client sends when its last answer arrived;
# N: N requests/s offered in all, latency counted from when each was due).
#
#   VIGIL=bin/vigil bench/gateload/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
B=${B:-$ROOT/.bench}
VIGIL=${VIGIL:-$ROOT/bin/vigil}
CLIENTS=${GATE_CLIENTS:-200}
DURATION=${GATE_DURATION:-30s}
RATES=${GATE_RATES:-0,500,1000}
PG=${GATE_PG:-postgres://postgres@127.0.0.1:5432}
PGDB=vigil_bench_gate_$$
[ -x "$VIGIL" ] || { echo "bench: build vigil first (make build)"; exit 2; }
mkdir -p "$B/bin" "$B/gate"
go build -o "$B/bin/gateload" ./bench/gateload

SERVEPID=
HAVEPG=
cleanup() {
  if [ -n "$SERVEPID" ]; then kill "$SERVEPID" 2>/dev/null || true; wait "$SERVEPID" 2>/dev/null || true; fi
  if [ -n "$HAVEPG" ]; then psql "$PG/postgres?sslmode=disable" -qc "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
jsonfield() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# gate_run NAME STORE-ARGS...: a client, vigil serve, gateload.
gate_run() {
  local name=$1; shift
  local dir=$B/gate/$name
  rm -rf "$dir"; mkdir -p "$dir"
  local store=(--data "$dir/data" "$@")
  "$VIGIL" clients create --name gateload --scopes admin --json "${store[@]}" > "$dir/client.json" 2> "$dir/client.err"
  "$VIGIL" serve --http --addr 127.0.0.1:0 --log-format json "${store[@]}" > "$dir/serve.out" 2> "$dir/serve.err" &
  SERVEPID=$!
  local url=
  for _ in $(seq 1 240); do
    url=$(sed -n 's/^serving on //p' "$dir/serve.out")
    [ -n "$url" ] && break
    kill -0 "$SERVEPID" 2>/dev/null || break
    sleep 0.5
  done
  [ -n "$url" ] || { echo "bench: vigil serve ($name) did not start"; tail -5 "$dir/serve.err"; return 3; }
  VIGIL_CLIENT_ID=$(jsonfield client_id < "$dir/client.json") \
  VIGIL_CLIENT_SECRET=$(jsonfield client_secret < "$dir/client.json") \
    "$B/bin/gateload" -server "$url" -server-pid "$SERVEPID" -seed -clients "$CLIENTS" -duration "$DURATION" -rate "$RATES" -label "$name" 2> "$dir/gateload.err" ||
    { echo "bench: gateload ($name) failed"; tail -5 "$dir/gateload.err"; return 3; }
  kill "$SERVEPID"; wait "$SERVEPID" 2>/dev/null || true; SERVEPID=
}

echo "== gate: GET /api/v1/gate, $CLIENTS clients, $DURATION per rate (0 = closed loop)"
gate_run sqlite
if psql "$PG/postgres?sslmode=disable" -qc "CREATE DATABASE $PGDB" >/dev/null 2>&1; then
  HAVEPG=1
  gate_run postgres --database "$PG/$PGDB?sslmode=disable"
else
  echo "  postgres   skipped: cannot create a database at $PG"
fi
echo "target: p99 < 10 ms at $CLIENTS concurrent clients"
