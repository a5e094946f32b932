#!/usr/bin/env bash
# make bench: Vigil beside the CLIs it replaces, on the same inputs, as a
# ratio from one run (after a warm-up run of each, so Go's build cache holds
# the compiled dependencies for both sides).
#
#   corpus 1: go-containerregistry v0.22.1 (a medium Go module) as a directory
#             vigil scan --engines sast,sbom   vs   gosec ./... then syft dir:
#   corpus 2: an image of a few hundred MB built here (Debian package
#             database, Go binaries, random filler) in a registry on loopback
#             vigil scan --engines sbom        vs   syft
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
B=$ROOT/.bench
GOSEC_VERSION=v2.30.0
SYFT_VERSION=v1.57.1
CORPUS_MODULE=github.com/google/go-containerregistry@v0.22.1
mkdir -p "$B/bin"
VIGIL=$ROOT/bin/vigil
[ -x "$VIGIL" ] || { echo "bench: build vigil first (make build)"; exit 2; }

echo "== peers: gosec $GOSEC_VERSION and syft $SYFT_VERSION from the Go module proxy into $B/bin"
[ -x "$B/bin/gosec" ] || GOBIN=$B/bin GOFLAGS= go install github.com/securego/gosec/v2/cmd/gosec@$GOSEC_VERSION
[ -x "$B/bin/syft" ] || GOBIN=$B/bin GOFLAGS= go install github.com/anchore/syft/cmd/syft@$SYFT_VERSION

echo "== corpus: $CORPUS_MODULE"
SRC=$B/corpus/ggcr
if [ ! -f "$SRC/go.mod" ]; then
  dir=$(GOFLAGS= go mod download -json "$CORPUS_MODULE" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  rm -rf "$SRC"; mkdir -p "$(dirname "$SRC")"
  cp -r "$dir" "$SRC"; chmod -R u+w "$SRC"
  # Nested modules: gosec's ./... walks into them, go list's does not.
  # Remove them so both sides scan the same packages.
  find "$SRC" -mindepth 2 -name go.mod -printf '%h\n' | xargs -r rm -rf
  (cd "$SRC" && GOFLAGS=-mod=mod go mod download)
fi

# measure NAME CMD... : runs CMD once, records wall seconds and peak RSS.
declare -A WALL MEM
measure() {
  local name=$1; shift
  local out=$B/time.$$
  /usr/bin/time -f '%e %M' -o "$out" "$@" >/dev/null 2>"$B/$name.stderr" || true
  read -r WALL[$name] MEM[$name] < <(tail -n 1 "$out")
  rm -f "$out"
  printf '  %-28s %7.2f s %7d MiB\n' "$name" "${WALL[$name]}" "$(( ${MEM[$name]} / 1024 ))"
}

echo "== warm-up (fills Go's build cache for both sides)"
(cd "$SRC" && "$B/bin/gosec" -quiet -fmt json -out /dev/null ./... >/dev/null 2>&1 || true)
"$VIGIL" scan -q --engines sast,sbom -o json=/dev/null "$SRC" >/dev/null 2>&1 || true

echo "== directory: $CORPUS_MODULE"
measure vigil-dir "$VIGIL" scan -q --engines sast,sbom -o json=/dev/null "$SRC"
measure gosec-dir sh -c "cd '$SRC' && '$B/bin/gosec' -quiet -fmt json -out /dev/null ./..."
measure syft-dir "$B/bin/syft" -q "dir:$SRC" -o syft-json=/dev/null

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
echo "== summary (one run each, after a warm-up)"
python3 - "${WALL[vigil-dir]}" "${MEM[vigil-dir]}" "${WALL[gosec-dir]}" "${MEM[gosec-dir]}" "${WALL[syft-dir]}" "${MEM[syft-dir]}" \
  "${WALL[vigil-image]}" "${MEM[vigil-image]}" "${WALL[syft-image]}" "${MEM[syft-image]}" <<'PY'
import sys
v = [float(x) for x in sys.argv[1:]]
vd, vdm, gd, gdm, sd, sdm, vi, vim, si, sim = v
mib = lambda k: k / 1024
print(f"{'input':34} {'vigil':>16} {'peers':>16} {'ratio':>7}")
print(f"{'directory, time (gosec+syft)':34} {vd:14.2f} s {gd+sd:14.2f} s {vd/(gd+sd):7.2f}")
print(f"{'directory, peak mem (max of two)':34} {mib(vdm):12.0f} MiB {mib(max(gdm,sdm)):12.0f} MiB {vdm/max(gdm,sdm):7.2f}")
print(f"{'image, time (syft)':34} {vi:14.2f} s {si:14.2f} s {vi/si:7.2f}")
print(f"{'image, peak mem (syft)':34} {mib(vim):12.0f} MiB {mib(sim):12.0f} MiB {vim/sim:7.2f}")
print()
print("targets: directory time ratio <= 0.70; directory peak memory <= the larger peer's")
PY
