# bench/lib.sh: what the bench sections that run `vigil serve` share.
# Source it after setting VIGIL (the binary), PG (a PostgreSQL URL without
# a database) and PGDB (the throwaway database's name).

SERVEPID=
SERVE_URL=
HAVEPG=

# bench_cleanup stops the server and drops the throwaway database; the
# sections run it on EXIT.
bench_cleanup() {
  serve_stop
  if [ -n "$HAVEPG" ]; then psql "$PG/postgres?sslmode=disable" -qc "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null 2>&1 || true; fi
}

# jsonfield FIELD: prints a top-level field of the JSON object on stdin.
jsonfield() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# serve_start NAME DIR SERVE-ARGS...: starts `vigil serve --http` on a
# loopback port with its output in DIR, waits until it serves, and sets
# SERVEPID and SERVE_URL. Returns 3 (saying why) if it did not start.
serve_start() {
  local name=$1 dir=$2; shift 2
  "$VIGIL" serve --http --addr 127.0.0.1:0 --log-format json "$@" > "$dir/serve.out" 2> "$dir/serve.err" &
  SERVEPID=$!
  SERVE_URL=
  for _ in $(seq 1 240); do
    SERVE_URL=$(sed -n 's/^serving on //p' "$dir/serve.out")
    [ -n "$SERVE_URL" ] && break
    kill -0 "$SERVEPID" 2>/dev/null || break
    sleep 0.5
  done
  [ -n "$SERVE_URL" ] || { echo "bench: vigil serve ($name) did not start"; tail -5 "$dir/serve.err"; return 3; }
}

# serve_stop stops the server serve_start started, if any.
serve_stop() {
  if [ -n "$SERVEPID" ]; then kill "$SERVEPID" 2>/dev/null || true; wait "$SERVEPID" 2>/dev/null || true; fi
  SERVEPID=
}

# pg_create: makes the throwaway database and sets HAVEPG, or says why the
# PostgreSQL runs are skipped and returns 1.
pg_create() {
  if psql "$PG/postgres?sslmode=disable" -qc "CREATE DATABASE $PGDB" >/dev/null 2>&1; then
    HAVEPG=1
  else
    echo "  postgres   skipped: cannot create a database at $PG"
    return 1
  fi
}
