#!/usr/bin/env bash
# bench/s3-vs-rgw.sh: the Shoal S3 gateway against Ceph's radosgw (RGW,
# ../shared/anchors/ceph with WITH_RGW=1), same machine, same invocation,
# same client (../shared/anchors/ceph/s3bench.py, boto3) and parameters:
#
#   - 4 MiB PUT then GET, 16 concurrent clients;
#   - 4 KiB PUT then GET, 16 concurrent clients in 2 client processes;
#   - a bucket of LIST_KEYS (200,000) keys listed whole (bench/s3-list.py);
#   - CPU seconds of the gateway process (shoal-s3 / radosgw) per request,
#     read from /proc before and after each phase;
#   - Shoal only: the gateway's peak memory (VmHWM) while BIG_CLIENTS (16)
#     clients upload BIG_SIZE objects at once, on a fresh cluster.
#
# Both clusters: 1 monitor, 3 OSDs, 3 replicas. Shoal runs with
# `--wire-mode integrity` (authenticated handshake, crc32c packets), as
# Ceph's default `crc` messenger mode. Prints both figures and Shoal / RGW.
#
# Knobs: S3_SECS (30, max seconds per phase), COUNT_4M (600), COUNT_4K
# (4000), LIST_KEYS (200000), BIG_SIZE (256M), BIG_CLIENTS (16),
# SHOAL_OSD_SIZE (6G; with BIG_SIZE=1G use 18G: 16 GiB x 3 replicas
# must fit), CEPH_DIR (/tmp/ceph-anchor-s3), ONLY (shoal|rgw: one side).
# Needs the Ceph packages with radosgw (../shared/anchors/ceph/README.md)
# and boto3 (installed with pip when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${S3_SECS:-30}
COUNT_4M=${COUNT_4M:-600}
COUNT_4K=${COUNT_4K:-4000}
LIST_KEYS=${LIST_KEYS:-200000}
BIG_SIZE=${BIG_SIZE:-256M}
BIG_CLIENTS=${BIG_CLIENTS:-16}
OSD_SIZE=${SHOAL_OSD_SIZE:-6G}
ONLY=${ONLY:-}
ANCHOR=$PWD/../shared/anchors/ceph
CEPH_DIR=${CEPH_DIR:-/tmp/ceph-anchor-s3}
PY=${PYTHON:-python3}
TCK=$(getconf CLK_TCK)

if [ "$ONLY" != shoal ]; then
    command -v radosgw >/dev/null || { echo "radosgw is missing: install the Ceph packages ($ANCHOR/README.md)" >&2; exit 1; }
fi
"$PY" -c 'import boto3' 2>/dev/null || "$PY" -m pip install --quiet boto3

cargo build --quiet --release -p shoal-cli -p shoal-mon -p shoal-osd -p shoal-s3
shoal=$PWD/target/release/shoal
work=$(mktemp -d)
res=$work/results
mkdir -p "$res"
cleanup() {
    "$shoal" dev down --dir "$work/shoal" --purge >/dev/null 2>&1 || true
    "$shoal" dev down --dir "$work/big" --purge >/dev/null 2>&1 || true
    [ "$ONLY" = shoal ] || "$ANCHOR/stop-ceph.sh" "$CEPH_DIR" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# phase TAG NAME PID ENDPOINT AK SK s3bench-args...: one s3bench run with
# the gateway's CPU ticks around it, into $res/TAG-NAME.{json,cpu}.
phase() {
    local tag=$1 name=$2 pid=$3 ep=$4 ak=$5 sk=$6
    shift 6
    local c0 c1
    c0=$(cpu_of "$pid")
    "$PY" "$ANCHOR/s3bench.py" "$ep" "$ak" "$sk" "$@" --duration "$SECS" \
        --json "$res/$tag-$name.json" > "$res/$tag-$name.txt" 2>&1
    c1=$(cpu_of "$pid")
    echo "$(( c1 - c0 )) $TCK" > "$res/$tag-$name.cpu"
    grep -E '^(PUT|GET)' "$res/$tag-$name.txt" | sed "s/^/  [$tag $name] /"
}

# suite TAG PID ENDPOINT AK SK: every phase against one gateway.
suite() {
    local tag=$1 pid=$2 ep=$3 ak=$4 sk=$5
    phase "$tag" 4M "$pid" "$ep" "$ak" "$sk" 4M 16 "$COUNT_4M"
    phase "$tag" 4K "$pid" "$ep" "$ak" "$sk" 4K 16 "$COUNT_4K" --procs 2
    local c0 c1
    c0=$(cpu_of "$pid")
    "$PY" bench/s3-list.py "$ep" "$ak" "$sk" --keys "$LIST_KEYS" --json "$res/$tag-list.json" \
        | sed "s/^/  [$tag] /"
    c1=$(cpu_of "$pid")
    echo "$(( c1 - c0 )) $TCK" > "$res/$tag-list.cpu"
}

pid_of() {  # dev dir, daemon name -> its PID from the dev cluster's pids file
    awk -v n="$2" '$1 == n {print $2}' "$1/pids" | tail -1
}

if [ "$ONLY" != rgw ]; then
    echo "== Shoal: 1 monitor, 3 OSDs ($OSD_SIZE each), S3 pools size 3, wire mode integrity"
    "$shoal" dev up --dir "$work/shoal" --mons 1 --osds 3 --osd-size "$OSD_SIZE" --wire-mode integrity >/dev/null
    read -r ak sk < "$work/shoal/s3-user.keys"
    suite shoal "$(pid_of "$work/shoal" s3)" http://127.0.0.1:7480 "$ak" "$sk"
    "$shoal" dev down --dir "$work/shoal" --purge >/dev/null

    echo "== Shoal: gateway memory while $BIG_CLIENTS clients upload $BIG_SIZE objects (fresh cluster)"
    "$shoal" dev up --dir "$work/big" --mons 1 --osds 3 --osd-size "$OSD_SIZE" --wire-mode integrity >/dev/null
    read -r ak sk < "$work/big/s3-user.keys"
    gw=$(pid_of "$work/big" s3)
    rss0=$(awk '/^VmHWM/ {print $2}' "/proc/$gw/status")
    "$PY" "$ANCHOR/s3bench.py" http://127.0.0.1:7480 "$ak" "$sk" "$BIG_SIZE" "$BIG_CLIENTS" "$BIG_CLIENTS" \
        --ops put --duration 3600 --json "$res/shoal-big.json" > "$res/shoal-big.txt" 2>&1
    rss1=$(awk '/^VmHWM/ {print $2}' "/proc/$gw/status")
    echo "$rss0 $rss1" > "$res/shoal-big.rss"
    grep -E '^PUT' "$res/shoal-big.txt" | sed "s/^/  [shoal big] /"
    "$shoal" dev down --dir "$work/big" --purge >/dev/null
fi

if [ "$ONLY" != shoal ]; then
    echo "== Ceph RGW: $ANCHOR/start-ceph.sh WITH_RGW=1 (1 mon, 1 mgr, 3 BlueStore OSDs, size 3)"
    WITH_RGW=1 RGW_TCP_NODELAY=1 "$ANCHOR/start-ceph.sh" "$CEPH_DIR" > "$res/ceph-start.log" 2>&1
    # shellcheck disable=SC1091
    source "$CEPH_DIR/s3-credentials.env"
    suite rgw "$(cat "$CEPH_DIR/run/client.rgw.a.pid")" "$S3_ENDPOINT" "$S3_ACCESS_KEY" "$S3_SECRET_KEY"
fi

"$PY" - "$res" <<'PY'
import json, os, sys
res = sys.argv[1]
def last_json(path):
    if not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.strip()]
def bench(tag, name, op):
    for r in last_json(f"{res}/{tag}-{name}.json"):
        if r.get("op", "").lower() == op:
            return r
    return None
def cpu(tag, name):
    p = f"{res}/{tag}-{name}.cpu"
    if not os.path.exists(p):
        return None
    ticks, tck = map(int, open(p).read().split())
    return ticks / tck
rows = []
for name, size in (("4M", "MB/s"), ("4K", "ops/s")):
    for op in ("put", "get"):
        s, r = bench("shoal", name, op), bench("rgw", name, op)
        key = "MB_per_s" if size == "MB/s" else "ops_per_s"
        sv = s and s.get(key); rv = r and r.get(key)
        rows.append((f"{name} {op.upper()}", sv, rv, size))
sl, rl = last_json(f"{res}/shoal-list.json"), last_json(f"{res}/rgw-list.json")
rows.append(("list keys/s", sl and sl[-1]["list_keys_per_s"], rl and rl[-1]["list_keys_per_s"], "keys/s"))
print(f"\n{'workload':14} {'shoal':>12} {'rgw':>12} {'ratio':>7}")
for w, s, r, unit in rows:
    ratio = f"{s / r:7.2f}" if s and r else "      -"
    fmt = lambda v: f"{v:12.1f}" if v else f"{'-':>12}"
    print(f"{w:14} {fmt(s)} {fmt(r)} {ratio}  {unit}")
print(f"\n{'gateway CPU ms per request':30} {'shoal':>8} {'rgw':>8}")
for name in ("4M", "4K"):
    ops = {}
    for tag in ("shoal", "rgw"):
        n = sum(x.get("ops", 0) for x in last_json(f"{res}/{tag}-{name}.json"))
        c = cpu(tag, name)
        ops[tag] = f"{1000 * c / n:8.2f}" if c is not None and n else f"{'-':>8}"
    print(f"{name + ' PUT+GET':30} {ops['shoal']} {ops['rgw']}")
p = f"{res}/shoal-big.rss"
if os.path.exists(p):
    before, after = map(int, open(p).read().split())
    big = bench("shoal", "big", "put")
    print(f"\nshoal-s3 peak memory (VmHWM): {after / 1024:.0f} MiB after the uploads "
          f"({before / 1024:.0f} MiB before); "
          f"{big['ops'] if big else '?'} uploads, {big['MB_per_s'] if big else '?'} MB/s")
PY
