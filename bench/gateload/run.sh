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

source "$ROOT/bench/lib.sh"
trap bench_cleanup EXIT

# gate_run NAME STORE-ARGS...: a client, vigil serve, gateload.
gate_run() {
  local name=$1; shift
  local dir=$B/gate/$name
  rm -rf "$dir"; mkdir -p "$dir"
  local store=(--data "$dir/data" "$@")
  "$VIGIL" clients create --name gateload --scopes admin --json "${store[@]}" > "$dir/client.json" 2> "$dir/client.err"
  serve_start "$name" "$dir" "${store[@]}" || return
  local url=$SERVE_URL
  VIGIL_CLIENT_ID=$(jsonfield client_id < "$dir/client.json") \
  VIGIL_CLIENT_SECRET=$(jsonfield client_secret < "$dir/client.json") \
    "$B/bin/gateload" -server "$url" -server-pid "$SERVEPID" -seed -clients "$CLIENTS" -duration "$DURATION" -rate "$RATES" -label "$name" 2> "$dir/gateload.err" ||
    { echo "bench: gateload ($name) failed"; tail -5 "$dir/gateload.err"; return 3; }
  serve_stop
}

echo "== gate: GET /api/v1/gate, $CLIENTS clients, $DURATION per rate (0 = closed loop)"
gate_run sqlite
if pg_create; then
  gate_run postgres --database "$PG/$PGDB?sslmode=disable"
fi
echo "target: p99 < 10 ms at $CLIENTS concurrent clients"
