#!/usr/bin/env bash
# make bench: Vigil beside the CLIs it replaces, on the same inputs, as a
# ratio from one run of each.
#
#   corpus 1: Go modules as directories, taken from the Go module proxy:
#             go-containerregistry v0.22.1 (medium) and prometheus v0.316.0
#             (176k lines), each in two states:
#               after `go build ./...` on a fresh build cache (what a CI
#               runner has when the scan step starts), one run of each;
#               steady state (the second run of each, the cache warm).
#             vigil scan --engines sast,sbom   vs   gosec ./... then syft dir:
#   corpus 2: an image of a few hundred MB built here (Debian package
#             database, Go binaries, random filler) in a registry on loopback
#             vigil scan --engines sbom        vs   syft
#
# BENCH_MODULES picks the corpus-1 modules (default: both).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
B=$ROOT/.bench
GOSEC_VERSION=v2.30.0
SYFT_VERSION=v1.57.1
BENCH_MODULES=${BENCH_MODULES:-"ggcr=github.com/google/go-containerregistry@v0.22.1 prometheus=github.com/prometheus/prometheus@v0.316.0"}
mkdir -p "$B/bin"
VIGIL=$ROOT/bin/vigil
[ -x "$VIGIL" ] || { echo "bench: build vigil first (make build)"; exit 2; }

echo "== peers: gosec $GOSEC_VERSION and syft $SYFT_VERSION from the Go module proxy into $B/bin"
[ -x "$B/bin/gosec" ] || GOBIN=$B/bin GOFLAGS= go install github.com/securego/gosec/v2/cmd/gosec@$GOSEC_VERSION
[ -x "$B/bin/syft" ] || GOBIN=$B/bin GOFLAGS= go install github.com/anchore/syft/cmd/syft@$SYFT_VERSION

# corpus NAME MODULE@VERSION: copies the module's source from the module
# cache (downloading it through the Go module proxy) to $B/corpus/NAME and
# downloads its dependencies; prints the folder.
corpus() {
  local name=$1 mod=$2 src=$B/corpus/$1
  if [ ! -f "$src/go.mod" ]; then
    local dir
    dir=$(GOFLAGS= go mod download -json "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    rm -rf "$src"; mkdir -p "$(dirname "$src")"
    cp -r "$dir" "$src"; chmod -R u+w "$src"
    # A module's zip leaves out its nested modules, which its go.work
    # (prometheus has one) still uses: without them the go command loads
    # nothing there, so scan the root module alone, as its zip has it.
    rm -f "$src/go.work" "$src/go.work.sum"
    (cd "$src" && GOFLAGS=-mod=mod go mod download) >&2
  fi
  echo "$src"
}

# measure NAME CMD... : runs CMD once, records wall seconds and peak RSS.
declare -A WALL MEM
measure() {
  local name=$1; shift
  local out=$B/time.$$
  /usr/bin/time -f '%e %M' -o "$out" "$@" >/dev/null 2>"$B/$name.stderr" || true
  read -r WALL[$name] MEM[$name] < <(tail -n 1 "$out")
  rm -f "$out"
  printf '  %-32s %7.2f s %7d MiB\n' "$name" "${WALL[$name]}" "$(( ${MEM[$name]} / 1024 ))"
}

# fresh_build SRC CACHE: a fresh build cache holding what `go build ./...`
# in SRC compiles, as a CI pipeline leaves it before its scan step.
fresh_build() {
  rm -rf "$2"
  (cd "$1" && GOCACHE=$2 go build ./... >/dev/null 2>&1) || true
}

SUMMARY=()
for entry in $BENCH_MODULES; do
  name=${entry%%=*}; mod=${entry#*=}
  echo "== corpus: $mod"
  src=$(corpus "$name" "$mod")
  cache=$B/gocache-$name
  vigil_scan=("$VIGIL" scan -q --engines sast,sbom -o json=/dev/null "$src")
  gosec_scan=(sh -c "cd '$src' && exec '$B/bin/gosec' -quiet -fmt json -out /dev/null ./...")
  syft_scan=("$B/bin/syft" -q "dir:$src" -o syft-json=/dev/null)

  echo "-- $name: after 'go build ./...' on a fresh build cache (one run each)"
  fresh_build "$src" "$cache"
  GOCACHE=$cache measure "$name-vigil-after-build" "${vigil_scan[@]}"
  fresh_build "$src" "$cache"
  GOCACHE=$cache measure "$name-gosec-after-build" "${gosec_scan[@]}"
  measure "$name-syft-first" "${syft_scan[@]}"

  echo "-- $name: steady state (the second run of each)"
  GOCACHE=$cache "${vigil_scan[@]}" >/dev/null 2>&1 || true
  GOCACHE=$cache measure "$name-vigil-steady" "${vigil_scan[@]}"
  GOCACHE=$cache measure "$name-gosec-steady" "${gosec_scan[@]}"
  measure "$name-syft-steady" "${syft_scan[@]}"

  for state in after-build steady; do
    syft=$name-syft-steady; [ $state = after-build ] && syft=$name-syft-first
    SUMMARY+=("$name $state ${WALL[$name-vigil-$state]} ${MEM[$name-vigil-$state]} ${WALL[$name-gosec-$state]} ${MEM[$name-gosec-$state]} ${WALL[$syft]} ${MEM[$syft]}")
  done
done

echo "== image: building it"
(cd "$ROOT" && go build -o "$B/bin/imagegen" ./bench/imagegen)
"$B/bin/imagegen" -out "$B/image-oci" -serve 127.0.0.1:0 -filler-mb 250 \
  -bin "$VIGIL" -bin "$B/bin/gosec" -bin "$B/bin/syft" > "$B/imageref" 2>"$B/imagegen.stderr" &
IMGPID=$!
trap 'kill $IMGPID 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do [ -s "$B/imageref" ] && break; sleep 0.5; done
REF=$(cat "$B/imageref")
[ -n "$REF" ] || { echo "bench: the image registry did not start"; cat "$B/imagegen.stderr"; exit 3; }
cat "$B/imagegen.stderr"
export SYFT_REGISTRY_INSECURE_USE_HTTP=true
"$B/bin/syft" -q "registry:$REF" -o syft-json=/dev/null >/dev/null 2>&1 || true
echo "== image: $REF"
measure vigil-image "$VIGIL" scan -q --insecure --engines sbom -o json=/dev/null "$REF"
measure syft-image "$B/bin/syft" -q "registry:$REF" -o syft-json=/dev/null

echo
echo "== summary (one run each)"
python3 - "${WALL[vigil-image]}" "${MEM[vigil-image]}" "${WALL[syft-image]}" "${MEM[syft-image]}" "${SUMMARY[@]}" <<'PY'
import sys
vi, vim, si, sim = (float(x) for x in sys.argv[1:5])
mib = lambda k: k / 1024
print(f"{'input':44} {'vigil':>14} {'peers':>14} {'ratio':>7}")
for row in sys.argv[5:]:
    name, state, *v = row.split()
    vd, vdm, gd, gdm, sd, sdm = (float(x) for x in v)
    print(f"{name + ' ' + state + ', time (gosec+syft)':44} {vd:12.2f} s {gd+sd:12.2f} s {vd/(gd+sd):7.2f}")
    print(f"{name + ' ' + state + ', peak mem (max of two)':44} {mib(vdm):10.0f} MiB {mib(max(gdm,sdm)):10.0f} MiB {vdm/max(gdm,sdm):7.2f}")
print(f"{'image, time (syft)':44} {vi:12.2f} s {si:12.2f} s {vi/si:7.2f}")
print(f"{'image, peak mem (syft)':44} {mib(vim):10.0f} MiB {mib(sim):10.0f} MiB {vim/sim:7.2f}")
print()
print("targets: directory time ratio <= 0.70 and peak memory <= the larger peer's, in both states")
PY

# ---- licensing: Licensing API throughput (bench/licload) -------------------
# Refreshes/s through `vigil serve --http` at 100 concurrent clients, on
# SQLite and on a fresh PostgreSQL database; activations/s with the same
# handler and service in process (licload -db), because vigil serve limits
# activation attempts per tenant and per client address (a burst of 10),
# which is what a serve-side figure would measure. Target: >= 2,000
# refreshes/s on PostgreSQL.
echo
echo "== licensing: refreshes and activations per second, ${LIC_CLIENTS:-100} clients"
(
  set -euo pipefail
  LIC=$B/licensing
  LIC_CLIENTS=${LIC_CLIENTS:-100}
  LIC_DURATION=${LIC_DURATION:-20s}
  PG=${LIC_PG:-postgres://postgres@127.0.0.1:5432}
  PGDB=vigil_bench_lic_$$
  source "$ROOT/bench/lib.sh"
  mkdir -p "$LIC"
  (cd "$ROOT" && go build -o "$B/bin/licload" ./bench/licload)
  trap bench_cleanup EXIT

  # lic_run NAME STORE-ARGS...: seeds 10 entitlements of 10 seats (one per
  # 10 clients: the activation burst), serves, runs licload.
  lic_run() {
    local name=$1; shift
    local dir=$LIC/$name
    rm -rf "$dir"; mkdir -p "$dir"
    local store=(--data "$dir/data" "$@")
    : > "$dir/targets"
    local n=$(( (LIC_CLIENTS + 9) / 10 ))
    for i in $(seq 1 "$n"); do
      local tn pr code
      tn=$("$VIGIL" tenants create --name "bench-$i" --json "${store[@]}" 2>>"$dir/seed.err" | jsonfield id)
      pr=$("$VIGIL" products create --name "bench-$i" --json "${store[@]}" 2>>"$dir/seed.err" | jsonfield id)
      code=$("$VIGIL" entitlements create --tenant "$tn" --product "$pr" --seats 10 --lease 1h --json "${store[@]}" 2>>"$dir/seed.err" | jsonfield activation_code)
      echo "$tn $pr $code" >> "$dir/targets"
    done
    serve_start "$name" "$dir" --workers 1 "${store[@]}" || return
    printf '  %-10s ' "$name"
    "$B/bin/licload" -server "$SERVE_URL" -targets "$dir/targets" -clients "$LIC_CLIENTS" -duration "$LIC_DURATION" -op refresh
    serve_stop
  }

  echo "-- refresh through vigil serve --http"
  lic_run sqlite
  if pg_create; then
    lic_run postgres --database "$PG/$PGDB?sslmode=disable"
  fi
  echo "-- activate, in process (same handler and service, no activation limit)"
  printf '  %-10s ' sqlite
  "$B/bin/licload" -db "sqlite:$LIC/sqlite/activate.db" -clients "$LIC_CLIENTS" -duration "$LIC_DURATION" -op activate
  if [ -n "$HAVEPG" ]; then
    printf '  %-10s ' postgres
    "$B/bin/licload" -db "$PG/$PGDB?sslmode=disable" -clients "$LIC_CLIENTS" -duration "$LIC_DURATION" -op activate
  fi
  echo "target: >= 2000 refreshes/s on PostgreSQL"
)
# ---- end licensing ----------------------------------------------------------

# ---- rescan (scan cache) ------------------------------------------------
# The scan cache as the server's workers use it (SQLite store, blobs):
# first scan of a commit of the corpus vs a rescan of the same commit vs a
# commit that changes one package; first scan of the bench image vs a
# rescan of its digest vs a new image sharing its layers. Targets: rescan
# < 5% of the first scan, one package changed < 25%.
echo
echo "== rescan: building bench/rescan"
(cd "$ROOT" && go build -o "$B/bin/rescan" ./bench/rescan)
"$B/bin/rescan" -src "$(corpus ggcr github.com/google/go-containerregistry@v0.22.1)" -change pkg/v1/layout -oci "$B/image-oci" -work "$B/rescan"
# ---- end rescan ---------------------------------------------------------

# ---- report bundles (bench/bundles) ---------------------------------------
# A release of three repositories (go-containerregistry, go-pdf/fpdf and
# cobra from the module cache) and two images (built here, on a loopback
# registry), scanned through the pipeline as the server's workers scan
# them; then its signed audit report bundle built from the stored scans,
# as ticket approval builds it. Target: the bundle under a tenth of the
# scans' time.
echo
echo "== bundles: building bench/bundles"
(cd "$ROOT" && go build -o "$B/bin/bundles" ./bench/bundles)
"$B/bin/bundles" -work "$B/bundles"
# ---- end report bundles -----------------------------------------------------

# ---- gate latency (bench/gateload) ----------------------------------------
# GET /api/v1/gate through `vigil serve --http` on SQLite and on a fresh
# PostgreSQL database, seeded with real scans through the API; 200
# clients for 30 s, as a closed loop and at offered rates. Target: p99
# under 10 ms.
echo
VIGIL="$VIGIL" B="$B" "$ROOT/bench/gateload/run.sh"
# ---- end gate latency -----------------------------------------------------

# ---- secure link download (bench/download) ---------------------------------
# A 200 MB report bundle through a secure link (the whole server, SQLite,
# POST /r/{token}/download, whole and in 4 parallel ranges) against Go's
# http.FileServer serving the same file, both over HTTPS on loopback.
# Targets: throughput >= 0.8x the FileServer's; memory flat in the size.
echo
(cd "$ROOT" && go build -o "$B/bin/download" ./bench/download)
"$B/bin/download" -work "$B/download" -size-mb "${DOWNLOAD_MB:-200}"
# ---- end secure link download ----------------------------------------------
