#!/usr/bin/env bash
# Times `shoalmap crush test --show-mappings` against Ceph's `crushtool --test`
# on the same map and arguments, in one run, and prints mappings per second
# and the ratio. Both outputs are compared byte for byte first.
#
#   bench/crush-vs-crushtool.sh [MAP.txt] [NUM_X] [RUNS]
#
# Defaults: the 1000-OSD reference map (../shared/crush-vectors/d03), 1,000,000
# inputs, best of 3 runs. Installs crushtool (Debian package ceph-base) if
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."
map=${1:-../shared/crush-vectors/d03_h40x25_1000osd/map.txt}
num_x=${2:-1000000}
runs=${3:-3}

if ! command -v crushtool >/dev/null; then
    echo "installing crushtool (ceph-base)..." >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ceph-base >/dev/null
fi
cargo build --quiet --release -p shoalmap
shoalmap=target/release/shoalmap
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
crushtool -c "$map" -o "$work/map.ceph"
"$shoalmap" crush compile "$map" -o "$work/map.shoal"

max_x=$((num_x - 1))
args=(--test --show-mappings --rule 0 --num-rep 3 --min-x 0 --max-x "$max_x")

# Same answers first: a fast wrong tool is worth nothing.
crushtool -i "$work/map.ceph" "${args[@]}" > "$work/ceph.out"
"$shoalmap" crush test --map "$work/map.shoal" "${args[@]:1}" > "$work/shoal.out"
if ! cmp -s "$work/ceph.out" "$work/shoal.out"; then
    echo "outputs differ!" >&2
    exit 1
fi

best() { # best wall time of $runs runs of "$@", in seconds
    local best=""
    for _ in $(seq "$runs"); do
        local t0 t1
        t0=$(date +%s.%N)
        "$@" > /dev/null
        t1=$(date +%s.%N)
        best=$(python3 -c "t=$t1-$t0; b='$best'; print(t if not b else min(t, float(b)))")
    done
    echo "$best"
}
t_ceph=$(best crushtool -i "$work/map.ceph" "${args[@]}")
t_shoal=$(best "$shoalmap" crush test --map "$work/map.shoal" "${args[@]:1}")
python3 - "$num_x" "$t_ceph" "$t_shoal" "$map" <<'PY'
import sys
n, tc, ts, m = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
print(f"map {m}, {n} inputs, rule 0, 3 replicas, --show-mappings (outputs identical)")
print(f"crushtool  {tc:8.3f} s  {n / tc:12,.0f} mappings/s")
print(f"shoalmap   {ts:8.3f} s  {n / ts:12,.0f} mappings/s")
print(f"ratio      {tc / ts:8.2f}x  (goal: at least 2x)")
PY
