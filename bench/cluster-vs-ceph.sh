#!/usr/bin/env bash
# bench/cluster-vs-ceph.sh: `shoal bench` on a local Shoal cluster against
# `rados bench` on a real Ceph cluster (../shared/anchors/ceph), same
# machine, same invocation, same parameters: 3 OSDs, a size-3 pool of 32
# PGs, 4 MiB and 4 KiB objects, write (--no-cleanup), seq and rand reads,
# 16 ops in flight. Prints both figures and the ratio Shoal / Ceph.
#
# Both clusters run with the same wire protection: Ceph's default messenger
# mode is `crc` (authenticated handshake, crc32c on the data), so Shoal runs
# with `--wire-mode integrity` (mutual-TLS handshake, crc32c packets).
#
# Knobs: BENCH_SECS (10), BENCH_THREADS (16), SHOAL_OSD_SIZE (6G; each
# OSD's store is allocated on disk), SHOAL_WIRE_MODE (integrity; `secure`
# encrypts), CEPH_DIR (/tmp/ceph-anchor-shoal), SHOAL_BEFORE (a directory
# with another build's `shoal`, `shoal-mon` and `shoal-osd`, e.g. the
# previous commit's: it runs too, in the same invocation, and the table
# gets a column for it).
# Needs the Ceph packages (see ../shared/anchors/ceph/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${BENCH_SECS:-10}
T=${BENCH_THREADS:-16}
OSD_SIZE=${SHOAL_OSD_SIZE:-6G}
WIRE_MODE=${SHOAL_WIRE_MODE:-integrity}
ANCHOR=../shared/anchors/ceph
CEPH_DIR=${CEPH_DIR:-/tmp/ceph-anchor-shoal}
command -v rados >/dev/null || { echo "rados is missing: install the Ceph packages ($ANCHOR/README.md)" >&2; exit 1; }

cargo build --quiet --release -p shoal-cli -p shoal-mon -p shoal-osd
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
shoal=$target/release/shoal
builds=("now=$target/release")
[ -n "${SHOAL_BEFORE:-}" ] && builds=("before=$SHOAL_BEFORE" "${builds[@]}")
work=$(mktemp -d)
res=$work/results
mkdir -p "$res"
cleanup() {
    for b in "${builds[@]}"; do
        "${b#*=}/shoal" dev down --dir "$work/shoal" --purge >/dev/null 2>&1 || true
    done
    "$ANCHOR/stop-ceph.sh" "$CEPH_DIR" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

workloads=(write-4M seq-4M rand-4M write-4K seq-4K rand-4K)
args_of() {  # workload -> "SIZE MODE"
    case $1 in
        write-4M) echo "4M write" ;; seq-4M) echo "4M seq" ;; rand-4M) echo "4M rand" ;;
        write-4K) echo "4K write" ;; seq-4K) echo "4K seq" ;; rand-4K) echo "4K rand" ;;
    esac
}

for b in "${builds[@]}"; do
    label=${b%%=*} shoal=${b#*=}/shoal
    echo "== Shoal ($label: $shoal): 1 monitor, 3 OSDs ($OSD_SIZE each), pool data (32 PGs, size 3), wire mode $WIRE_MODE"
    "$shoal" dev up --dir "$work/shoal" --mons 1 --osds 3 --osd-size "$OSD_SIZE" --wire-mode "$WIRE_MODE" --no-s3 >/dev/null
    export SHOAL_CONF=$work/shoal/shoal.toml
    for w in "${workloads[@]}"; do
        read -r size mode <<<"$(args_of "$w")"
        extra=()
        [ "$mode" = write ] && extra=(-b "$size" --no-cleanup)
        [ "$w" = write-4K ] && "$shoal" bench data 0 cleanup
        "$shoal" --format json bench data "$SECS" "$mode" -t "$T" "${extra[@]}" > "$res/$label-$w.json"
        echo "  $w done"
    done
    "$shoal" dev down --dir "$work/shoal" --purge >/dev/null
done

echo "== Ceph: $ANCHOR/start-ceph.sh (1 mon, 1 mgr, 3 BlueStore OSDs, pool bench: 32 PGs, size 3)"
"$ANCHOR/start-ceph.sh" "$CEPH_DIR" > "$res/ceph-start.log" 2>&1
export CEPH_CONF=$CEPH_DIR/ceph.conf
rados -p bench cleanup >/dev/null 2>&1 || true
for w in "${workloads[@]}"; do
    read -r size mode <<<"$(args_of "$w")"
    extra=()
    [ "$mode" = write ] && extra=(-b "$size" --no-cleanup)
    [ "$w" = write-4K ] && { rados -p bench cleanup >/dev/null 2>&1 || true; }
    rados bench -p bench "$SECS" "$mode" -t "$T" "${extra[@]}" > "$res/ceph-$w.txt" 2>&1
    echo "  $w done"
done
rados -p bench cleanup >/dev/null 2>&1 || true

labels=$(for b in "${builds[@]}"; do printf '%s,' "${b%%=*}"; done)
python3 - "$res" "${labels%,}" "${workloads[@]}" <<'PY'
import json, re, sys
res, labels, workloads = sys.argv[1], sys.argv[2].split(","), sys.argv[3:]
def ceph(w):
    text = open(f"{res}/ceph-{w}.txt").read()
    get = lambda key: float(re.search(rf"^{re.escape(key)}:\s+([0-9.]+)", text, re.M).group(1))
    return {"bw": get("Bandwidth (MB/sec)"), "iops": get("Average IOPS"), "lat": get("Average Latency(s)")}
def shoal(label, w):
    j = json.load(open(f"{res}/{label}-{w}.json"))
    return {"bw": j["bandwidth_mb_s"], "iops": j["iops"], "lat": j["latency_avg_s"]}
head = "".join(f" {'shoal ' + l:>16}" for l in labels)
ratios = "".join(f" {l + '/ceph':>12}" for l in labels)
print(f"\n{'workload':10}{head} {'ceph':>16}{ratios}   " + "".join(f"{'lat ' + l:>11}" for l in labels) + f" {'lat ceph':>10}")
for w in workloads:
    c = ceph(w)
    key, unit = ("bw", "MB/s") if w.endswith("4M") else ("iops", "IOPS")
    s = {l: shoal(l, w) for l in labels}
    row = "".join(f" {s[l][key]:11.1f} {unit:4}" for l in labels)
    row += f" {c[key]:11.1f} {unit:4}"
    row += "".join(f" {(s[l][key] / c[key] if c[key] else float('inf')):12.2f}" for l in labels)
    row += "   " + "".join(f" {s[l]['lat'] * 1000:7.1f} ms" for l in labels) + f" {c['lat'] * 1000:7.1f} ms"
    print(f"{w:10}{row}")
PY
