#!/usr/bin/env bash
# bench/recovery.sh: how fast a Shoal cluster heals after losing an OSD,
# as a fraction of what the disk can do (fio in the same invocation), and
# what recovery costs client writes.
#
#   1. fio: sequential 4 MiB direct writes to a file on the same
#      filesystem (the bound for a member receiving copies).
#   2. Shoal, idle: 4 OSDs (one per host), pool `data` (32 PGs, size 3),
#      DATA_MB of 4 MiB objects; SIGKILL one OSD and mark it down and out
#      at once; time until every PG is active+clean again; recovery
#      throughput = bytes the OSDs report copied / that time.
#   3. Shoal, loaded: the same on a fresh cluster, with 4 MiB client
#      writes (-t 8) measured before the failure and again while it heals.
#
# Knobs: DATA_MB (1024), OSD_SIZE (3G), LOAD_SECS (10), LIMITS
# ("recovery_max_active=8 max_backfills=4": osd/* config keys set first).
# Ceph's time-to-clean on the same data set is still to be added.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_MB=${DATA_MB:-1024}
OSD_SIZE=${OSD_SIZE:-3G}
LOAD_SECS=${LOAD_SECS:-10}
LIMITS=${LIMITS:-"recovery_max_active=8 max_backfills=4"}
command -v fio >/dev/null || { echo "fio is missing" >&2; exit 1; }

cargo build --quiet --release -p shoal-cli -p shoal-mon -p shoal-osd
shoal=$PWD/target/release/shoal
work=$(mktemp -d)
cleanup() {
    "$shoal" dev down --dir "$work/shoal" --purge >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

echo "== fio: sequential 4 MiB direct writes, 1 GiB"
fio --name=seqwrite --directory="$work" --rw=write --bs=4M --size=1G --direct=1 \
    --ioengine=libaio --iodepth=4 --output-format=json > "$work/fio.json"
fio_mbps=$(json 'd["jobs"][0]["write"]["bw_bytes"]/1e6' < "$work/fio.json")
echo "  fio write: $fio_mbps MB/s"

# Starts a cluster, sets the limits, writes DATA_MB; prints nothing.
fresh_cluster() {
    "$shoal" dev down --dir "$work/shoal" --purge >/dev/null 2>&1 || true
    "$shoal" dev up --dir "$work/shoal" --mons 1 --osds 4 --osd-size "$OSD_SIZE" >/dev/null
    export SHOAL_CONF=$work/shoal/shoal.toml
    for kv in $LIMITS; do
        "$shoal" config-key set "osd/${kv%%=*}" "${kv#*=}" >/dev/null
    done
    local objects=$((DATA_MB / 4))
    "$shoal" bench data 3600 write -b 4M -t 16 --no-cleanup --max-objects "$objects" >/dev/null
}

# Kills osd.3 and marks it down and out; echoes the recovered bytes before.
fail_osd() {
    local before pid
    before=$("$shoal" --format json status | json 'd["recovered"]["bytes"]')
    pid=$(awk '$1 == "osd.3" { p = $2 } END { print p }' "$work/shoal/pids")
    kill -9 "$pid"
    "$shoal" osd down 3 >/dev/null
    "$shoal" osd out 3 >/dev/null
    echo "$before"
}

# Waits until every PG is active+clean and nothing is degraded; echoes the
# recovered bytes then. One python process polls `shoal status` every
# 50 ms (a shell loop starting python per poll took a sixth of the CPU
# from the cluster it measured).
wait_clean() {
    python3 - "$shoal" <<'PY'
import json, subprocess, sys, time
while True:
    out = subprocess.run([sys.argv[1], "--format", "json", "status"],
                         capture_output=True, text=True)
    if out.returncode == 0:
        d = json.loads(out.stdout)
        states = d["pgs_by_state"]
        if len(states) == 1 and states[0]["state"] == "active+clean" and d["degraded_objects"] == 0:
            print(d["recovered"]["bytes"])
            break
    time.sleep(0.05)
PY
}

echo "== Shoal idle: 4 OSDs, ${DATA_MB} MiB of 4 MiB objects, osd.3 killed and marked out"
fresh_cluster
sleep 3 # a beacon or two, so status counts every PG
before=$(fail_osd)
t0=$(now)
after=$(wait_clean)
t1=$(now)
idle_secs=$(python3 -c "print(round($t1 - $t0, 2))")
idle_mb=$(python3 -c "print(round(($after - $before) / 1e6, 1))")
idle_mbps=$(python3 -c "print(round(($after - $before) / 1e6 / ($t1 - $t0), 1))")
echo "  clean again after $idle_secs s; $idle_mb MB copied; $idle_mbps MB/s"

echo "== Shoal loaded: the same, with 4 MiB client writes (-t 8)"
fresh_cluster
base=$("$shoal" --format json bench data "$LOAD_SECS" write -b 4M -t 8 | json 'd["bandwidth_mb_s"]')
before=$(fail_osd)
t0=$(now)
"$shoal" --format json bench data "$LOAD_SECS" write -b 4M -t 8 > "$work/during.json" &
bench_pid=$!
after=$(wait_clean)
t1=$(now)
wait "$bench_pid"
during=$(json 'd["bandwidth_mb_s"]' < "$work/during.json")
loaded_secs=$(python3 -c "print(round($t1 - $t0, 2))")
loaded_mbps=$(python3 -c "print(round(($after - $before) / 1e6 / ($t1 - $t0), 1))")
echo "  clean again after $loaded_secs s; recovery $loaded_mbps MB/s; client writes $base MB/s before, $during MB/s during"

python3 - "$fio_mbps" "$idle_mbps" "$loaded_mbps" "$base" "$during" <<'PY'
import sys
fio, idle, loaded, base, during = map(float, sys.argv[1:])
print()
print(f"recovery idle / fio write:   {idle / fio:.2f}")
print(f"recovery loaded / fio write: {loaded / fio:.2f}")
print(f"client writes during / before recovery: {during / base:.2f}")
PY
