#!/usr/bin/env bash
# bench/recovery.sh: how fast a Shoal cluster heals after losing an OSD,
# as a fraction of what the disk can do (fio in the same invocation), and
# what recovery costs client writes.
#
#   1. fio: sequential 4 MiB direct writes to a file on the same
#      filesystem (the bound for a member receiving copies), and a 50/50
#      mix of 4 MiB direct reads and writes (the bound for copying on one
#      disk: here every OSD shares it, so each recovered byte is read from
#      it by the source and written to it by the target).
#   2. Shoal, idle: 4 OSDs (one per host), pool `data` (32 PGs, size 3),
#      DATA_MB of 4 MiB objects; SIGKILL one OSD and mark it down and out
#      at once; time until every PG is active+clean again; recovery
#      throughput = bytes the OSDs report copied / that time; the disk's
#      own counters (/proc/diskstats) over the same time.
#   3. Shoal, loaded: the same on a fresh cluster, with 4 MiB client
#      writes (-t 8) measured before the failure and again while it heals.
#
#   4. Ceph (when its daemons are installed, CEPH=0 skips it): the anchor
#      cluster of ../shared/anchors/ceph with 4 OSDs, pool `bench` (32
#      PGs, size 3), the same DATA_MB of 4 MiB objects (rados bench
#      --max-objects), the same limits (osd_max_backfills,
#      osd_recovery_max_active, no recovery sleep); osd.3 SIGKILLed,
#      marked down and out; time until every PG is active+clean.
#
# Knobs: DATA_MB (1024), OSD_SIZE (3G), LOAD_SECS (10), LIMITS
# ("recovery_max_active=8 max_backfills=4": osd/* config keys set first),
# WIRE_MODE (secure), CEPH (1 when ceph-osd is installed), SHOAL_BEFORE
# (a directory with another build's `shoal`, `shoal-mon` and `shoal-osd`,
# e.g. the previous commit's: steps 2 and 3 run with it too, in the same
# invocation, and the summary has a line per build).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_MB=${DATA_MB:-1024}
OSD_SIZE=${OSD_SIZE:-3G}
LOAD_SECS=${LOAD_SECS:-10}
LIMITS=${LIMITS:-"recovery_max_active=8 max_backfills=4"}
WIRE_MODE=${WIRE_MODE:-secure}
CEPH=${CEPH:-$(command -v ceph-osd >/dev/null && echo 1 || echo 0)}
anchors=$(cd "$(dirname "$0")/../../shared/anchors/ceph" 2>/dev/null && pwd || true)
command -v fio >/dev/null || { echo "fio is missing" >&2; exit 1; }

cargo build --quiet --release -p shoal-cli -p shoal-mon -p shoal-osd
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
shoal=$target/release/shoal
builds=("now=$target/release")
[ -n "${SHOAL_BEFORE:-}" ] && builds=("before=$SHOAL_BEFORE" "${builds[@]}")
work=$(mktemp -d)
cleanup() {
    for b in "${builds[@]}"; do
        "${b#*=}/shoal" dev down --dir "$work/shoal" --purge >/dev/null 2>&1 || true
    done
    if [ -n "$anchors" ] && [ -e "$work/ceph/.ceph-anchor" ]; then
        bash "$anchors/stop-ceph.sh" "$work/ceph" >/dev/null 2>&1 || true
    fi
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
echo "== fio: 4 MiB direct reads and writes, half each, iodepth 16, 1 GiB"
# A deeper queue than the write job's: recovery keeps reads and writes of
# three OSDs in flight at once (with iodepth=4 it outran fio's mix).
fio --name=copy --directory="$work" --rw=rw --rwmixread=50 --bs=4M --size=1G --direct=1 \
    --ioengine=libaio --iodepth=16 --output-format=json > "$work/fio-copy.json"
fio_copy_mbps=$(json 'min(d["jobs"][0]["read"]["bw_bytes"], d["jobs"][0]["write"]["bw_bytes"])/1e6' < "$work/fio-copy.json")
echo "  fio read+write: $(json 'round(d["jobs"][0]["read"]["bw_bytes"]/1e6, 1), round(d["jobs"][0]["write"]["bw_bytes"]/1e6, 1)' < "$work/fio-copy.json") MB/s (read, write); copy bound $fio_copy_mbps MB/s"
rm -f "$work"/seqwrite.* "$work"/copy.*

# The block device under $work and its counters: sectors read, sectors
# written, ms busy (zeros when it is not a plain disk in /proc/diskstats).
disk=$(basename "$(df --output=source "$work" | tail -1)")
disk_counters() {
    awk -v d="$disk" '$3 == d { print $6, $10, $13; found = 1 } END { if (!found) print 0, 0, 0 }' /proc/diskstats
}

# Starts a cluster, sets the limits, writes DATA_MB; prints nothing.
fresh_cluster() {
    "$shoal" dev down --dir "$work/shoal" --purge >/dev/null 2>&1 || true
    "$shoal" dev up --dir "$work/shoal" --mons 1 --osds 4 --osd-size "$OSD_SIZE" \
        --wire-mode "$WIRE_MODE" --no-s3 >/dev/null
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
def status():
    out = subprocess.run([sys.argv[1], "--format", "json", "status"],
                         capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else None
def clean(d):
    states = d["pgs_by_state"] if d else []
    return len(states) == 1 and states[0]["state"] == "active+clean" and d["degraded_objects"] == 0
# The heads report their PGs' new states shortly after the map change:
# first see one PG not clean (or give up on that after 10 s).
deadline = time.time() + 10
while clean(status()) and time.time() < deadline:
    time.sleep(0.05)
while True:
    d = status()
    if clean(d):
        print(d["recovered"]["bytes"])
        break
    time.sleep(0.05)
PY
}

summary=()
for b in "${builds[@]}"; do
    label=${b%%=*} shoal=${b#*=}/shoal
    echo "== Shoal ($label) idle: 4 OSDs, ${DATA_MB} MiB of 4 MiB objects, osd.3 killed and marked out"
    fresh_cluster
    sleep 3 # a beacon or two, so status counts every PG
    disk0=$(disk_counters)
    before=$(fail_osd)
    t0=$(now)
    after=$(wait_clean)
    t1=$(now)
    disk1=$(disk_counters)
    idle_secs=$(python3 -c "print(round($t1 - $t0, 2))")
    idle_mb=$(python3 -c "print(round(($after - $before) / 1e6, 1))")
    idle_mbps=$(python3 -c "print(round(($after - $before) / 1e6 / ($t1 - $t0), 1))")
    echo "  clean again after $idle_secs s; $idle_mb MB copied; $idle_mbps MB/s"
    python3 - $disk0 $disk1 "$t0" "$t1" <<'PY'
import sys
r0, w0, b0, r1, w1, b1 = map(int, sys.argv[1:7])
secs = float(sys.argv[8]) - float(sys.argv[7])
if b1 > b0:
    print(f"  disk meanwhile: read {(r1 - r0) * 512 / 1e6 / secs:.1f} MB/s, "
          f"wrote {(w1 - w0) * 512 / 1e6 / secs:.1f} MB/s, busy {(b1 - b0) / 10 / secs:.0f} %")
PY

    echo "== Shoal ($label) loaded: the same, with 4 MiB client writes (-t 8)"
    fresh_cluster
    "$shoal" --format json bench data "$LOAD_SECS" write -b 4M -t 8 > "$work/before.json"
    base=$(json 'd["bandwidth_mb_s"]' < "$work/before.json")
    lat_base=$(json 'round(d["latency_avg_s"] * 1000, 1), round(d["latency_p99_s"] * 1000, 1)' < "$work/before.json")
    before=$(fail_osd)
    t0=$(now)
    "$shoal" --format json bench data "$LOAD_SECS" write -b 4M -t 8 > "$work/during.json" &
    bench_pid=$!
    after=$(wait_clean)
    t1=$(now)
    wait "$bench_pid"
    during=$(json 'd["bandwidth_mb_s"]' < "$work/during.json")
    lat_during=$(json 'round(d["latency_avg_s"] * 1000, 1), round(d["latency_p99_s"] * 1000, 1)' < "$work/during.json")
    loaded_secs=$(python3 -c "print(round($t1 - $t0, 2))")
    loaded_mbps=$(python3 -c "print(round(($after - $before) / 1e6 / ($t1 - $t0), 1))")
    echo "  clean again after $loaded_secs s; recovery $loaded_mbps MB/s; client writes $base MB/s before, $during MB/s during"
    echo "  client write latency (avg, p99 ms): $lat_base before, $lat_during during"
    summary+=("$label $idle_mbps $loaded_mbps $base $during $idle_secs")
    "$shoal" dev down --dir "$work/shoal" --purge >/dev/null 2>&1 || true
done

# Shoal's part is done: free its disk space before Ceph's cluster.
"$shoal" dev down --dir "$work/shoal" --purge >/dev/null 2>&1 || true
ceph_secs=0
if [ "$CEPH" = 1 ] && [ -n "$anchors" ]; then
    echo "== Ceph: 4 OSDs, ${DATA_MB} MiB of 4 MiB objects, osd.3 killed and marked out"
    NUM_OSD=4 OSD_SIZE_GB=${CEPH_OSD_GB:-8} bash "$anchors/start-ceph.sh" "$work/ceph" > "$work/ceph-start.log" 2>&1 \
        || { tail -20 "$work/ceph-start.log" >&2; exit 1; }
    export CEPH_CONF=$work/ceph/ceph.conf
    # PG states reach the manager every second (default 5).
    ceph config set global mgr_stats_period 1 || true
    for kv in osd_max_backfills=4 osd_recovery_max_active=8 osd_recovery_sleep_hdd=0 \
        osd_recovery_sleep_ssd=0 osd_recovery_sleep_hybrid=0 osd_recovery_sleep=0; do
        ceph config set osd "${kv%%=*}" "${kv#*=}"
    done
    rados -p bench bench 3600 write -b 4M -t 16 --no-cleanup --max-objects $((DATA_MB / 4)) > /dev/null
    # Waits until every PG is active+clean (with "dirty": first until
    # one is not, as the manager's PG states lag the map).
    ceph_clean() {
        python3 - "${1:-}" <<'PY'
import json, subprocess, sys, time
def clean():
    out = subprocess.run(["ceph", "pg", "stat", "--format", "json"], capture_output=True, text=True)
    if out.returncode != 0:
        return False
    d = json.loads(out.stdout)
    m = d.get("pg_summary", d)
    states = {s["name"]: s["num"] for s in m.get("num_pg_by_state", [])}
    return m.get("num_pgs", 0) > 0 and states.get("active+clean", 0) == m["num_pgs"]
if sys.argv[1] == "dirty":
    deadline = time.time() + 30
    while clean() and time.time() < deadline:
        time.sleep(0.05)
while not clean():
    time.sleep(0.05)
PY
    }
    ceph_clean
    sleep 3 # the same settling as Shoal's runs
    t0=$(now)
    kill -9 "$(cat "$work/ceph/run/osd.3.pid")"
    ceph osd down 3 >/dev/null 2>&1
    ceph osd out 3 >/dev/null 2>&1
    ceph_clean dirty
    t1=$(now)
    ceph_secs=$(python3 -c "print(round($t1 - $t0, 2))")
    echo "  clean again after $ceph_secs s"
    bash "$anchors/stop-ceph.sh" "$work/ceph" >/dev/null 2>&1 || true
fi

python3 - "$fio_mbps" "$fio_copy_mbps" "$ceph_secs" "${summary[@]}" <<'PY'
import sys
fio, fio_copy, ceph_secs = map(float, sys.argv[1:4])
for line in sys.argv[4:]:
    label, *nums = line.split()
    idle, loaded, base, during, idle_secs = map(float, nums)
    print(f"\n{label}:")
    if ceph_secs > 0:
        print(f"time to clean, Shoal / Ceph (idle): {idle_secs:.2f} s / {ceph_secs:.2f} s = {idle_secs / ceph_secs:.2f}")
    print(f"recovery idle / fio write:   {idle / fio:.2f}")
    print(f"recovery loaded / fio write: {loaded / fio:.2f}")
    print(f"recovery idle / fio copy (read+write mix):   {idle / fio_copy:.2f}")
    print(f"recovery loaded / fio copy (read+write mix): {loaded / fio_copy:.2f}")
    print(f"client writes during / before recovery: {during / base:.2f}")
PY
