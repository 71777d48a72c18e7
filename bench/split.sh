#!/usr/bin/env bash
# bench/split.sh: what raising a pool's pg_num costs on a loaded cluster.
#
#   1. Shoal: 4 OSDs (one per host), pool `data` (32 PGs, as `shoal dev
#      up` makes it; size 3), DATA_MB of 4 MiB objects.
#   2. Client 4 MiB writes (-t 8) for LOAD_SECS: the baseline.
#   3. `pool set data pg_num PG_TO` with the same writes running: time
#      until every OSD split its PGs (every PG reported, active), and until
#      `pgp_num` reached PG_TO with every PG active+clean again (the leader
#      steps it within `target_max_misplaced_ratio`); the bytes the OSDs
#      copied meanwhile (recovery counters: the data the new placements
#      moved) against what `shoalmap simulate --pg-num` predicts on the
#      map taken just before (`shoal osd getmap`); client throughput
#      during (its first LOAD_SECS), as a ratio of the baseline of the
#      same invocation.
#
# Knobs: DATA_MB (2048), PG_TO (256), OSD_SIZE (8G: the baseline writes add to the data),
# LOAD_SECS (10), WIRE_MODE (secure).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_MB=${DATA_MB:-2048}
PG_TO=${PG_TO:-256}
OSD_SIZE=${OSD_SIZE:-8G}
LOAD_SECS=${LOAD_SECS:-10}
WIRE_MODE=${WIRE_MODE:-secure}

cargo build --quiet --release -p shoal-cli -p shoal-mon -p shoal-osd -p shoalmap
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
shoal=$target/release/shoal
shoalmap=$target/release/shoalmap
work=$(mktemp -d)
cleanup() {
    "$shoal" dev down --dir "$work/shoal" --purge >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

echo "== Shoal: 4 OSDs, pool data (32 PGs, size 3), $DATA_MB MiB of 4 MiB objects"
"$shoal" dev up --dir "$work/shoal" --mons 1 --osds 4 --osd-size "$OSD_SIZE" \
    --wire-mode "$WIRE_MODE" --no-s3 >/dev/null
export SHOAL_CONF=$work/shoal/shoal.toml
"$shoal" bench data 3600 write -b 4M -t 16 --no-cleanup --max-objects $((DATA_MB / 4)) >/dev/null

echo "== client 4 MiB writes (-t 8), ${LOAD_SECS} s: baseline"
"$shoal" --format json bench data "$LOAD_SECS" write -b 4M -t 8 > "$work/before.json"
base=$(json 'round(d["bandwidth_mb_s"], 1)' < "$work/before.json")
echo "  $base MB/s"

"$shoal" osd getmap -o "$work/before.map" 2>/dev/null
predicted=$("$shoalmap" simulate --osdmap "$work/before.map" --pg-num "data:$PG_TO" \
    --stored $((DATA_MB * 1048576)) --format json | json 'd["bytes_moved"]')

echo "== pg_num 32 -> $PG_TO under the same writes"
"$shoal" --format json bench data "$LOAD_SECS" write -b 4M -t 8 > "$work/during.json" &
bench_pid=$!
python3 - "$shoal" "$PG_TO" "$DATA_MB" "$predicted" <<'PY'
import json, subprocess, sys, time
shoal, pg_to, data_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
predicted = int(sys.argv[4]) / 1e6
def run(*args):
    out = subprocess.run([shoal, "--format", "json", *args], capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 and out.stdout.strip() else None
def pool():
    pools = run("pool", "ls") or []
    return next((p for p in pools if p["name"] == "data"), None)
before = run("status")["recovered"]["bytes"]
t0 = time.time()
subprocess.run([shoal, "pool", "set", "data", "pg_num", str(pg_to)], check=True,
               capture_output=True)
split = None
while True:
    s, p = run("status"), pool()
    if s is None or p is None:
        time.sleep(0.05)
        continue
    states = {c["state"]: c["count"] for c in s["pgs_by_state"]}
    if split is None and s["num_pgs"] == pg_to and all(st.startswith("active") for st in states):
        split = time.time() - t0
    clean = list(states) == ["active+clean"] and s["degraded_objects"] == 0
    if clean and p["pgp_num"] == pg_to and p["pgp_num_target"] == pg_to:
        total = time.time() - t0
        moved = (s["recovered"]["bytes"] - before) / 1e6
        print(f"  every PG split and active after {split:.2f} s")
        print(f"  pgp_num at {pg_to}, all active+clean after {total:.2f} s")
        print(f"  copied meanwhile: {moved:.0f} MB ({moved / (data_mb * 1.048576 * 3):.2f} of the "
              f"{data_mb * 3} MiB stored); shoalmap simulate predicted {predicted:.0f} MB "
              f"for the {data_mb} MiB written before (copied/predicted {moved / predicted:.2f})")
        break
    time.sleep(0.05)
PY
wait "$bench_pid"
during=$(json 'round(d["bandwidth_mb_s"], 1)' < "$work/during.json")
echo "  client writes: $base MB/s before, $during MB/s during ($(python3 -c "print(round($during / $base, 2))") of before)"
