#!/usr/bin/env bash
# bench/read-replicas.sh: CRAQ apportioned reads. Read throughput of one hot
# object grows with the number of replicas, because every chain member
# serves committed reads, not only the head (or the primary, as in Ceph).
#
# On one machine the OSDs share its cores, so each OSD is given CPU of its
# own: a cgroup (v1 `cpu` controller, or v2 `cpu.max`) with QUOTA_PCT of a
# core (25 by default). An OSD is then the bottleneck, as it would be on a
# machine of its own; the client is not limited. For size 1, 2 and 3: a
# pool rN (8 PGs, size N, min_size 1), one object of BLOCK bytes written
# (`shoal bench --max-objects 1 --no-cleanup`), then `shoal bench rN SECS
# rand -t 16` reads it; the script prints IOPS and the ratio to size 1.
# The same runs with `balance_reads = false` (every read at the head) are
# the control: they should not grow.
#
# Needs root (cgroups). Knobs: BENCH_SECS (8), BLOCK (64K), QUOTA_PCT (25).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${BENCH_SECS:-8}
BLOCK=${BLOCK:-64K}
QUOTA_PCT=${QUOTA_PCT:-25}

if [ -d /sys/fs/cgroup/cpu ] && [ -f /sys/fs/cgroup/cpu/cgroup.procs ]; then
    CG_ROOT=/sys/fs/cgroup/cpu; CG_V=1
elif grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
    CG_ROOT=/sys/fs/cgroup; CG_V=2
else
    echo "no cgroup cpu controller found (needs /sys/fs/cgroup/cpu or cgroup v2 with cpu)" >&2
    exit 1
fi

cargo build --quiet --release -p shoal-cli -p shoal-mon -p shoal-osd
shoal=$PWD/target/release/shoal
work=$(mktemp -d)
groups=()
cleanup() {
    "$shoal" dev down --dir "$work/shoal" --purge >/dev/null 2>&1 || true
    for g in "${groups[@]}"; do rmdir "$g" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

"$shoal" dev up --dir "$work/shoal" --mons 1 --osds 3 --osd-size 2G >/dev/null
export SHOAL_CONF=$work/shoal/shoal.toml

# One CPU-limited group per OSD (only the PIDs `shoal dev up` recorded).
while read -r name pid; do
    case $name in osd.*) ;; *) continue ;; esac
    g=$CG_ROOT/shoal-bench-$$-$name
    mkdir "$g"
    groups+=("$g")
    if [ $CG_V = 1 ]; then
        echo 100000 > "$g/cpu.cfs_period_us"
        echo $((QUOTA_PCT * 1000)) > "$g/cpu.cfs_quota_us"
    else
        echo "$((QUOTA_PCT * 1000)) 100000" > "$g/cpu.max"
    fi
    echo "$pid" > "$g/cgroup.procs"
done < "$work/shoal/pids"
echo "== 3 OSDs, each limited to ${QUOTA_PCT}% of a core; one hot object of $BLOCK; rand reads, 16 in flight, ${SECS}s"

wait_active() {  # all PGs active
    local deadline=$((SECONDS + 120))
    until "$shoal" --format json status | python3 -c '
import json, sys
s = json.load(sys.stdin)
sys.exit(0 if all("active" in p["state"].split("+") for p in s["pgs_by_state"]) else 1)'; do
        [ $SECONDS -lt $deadline ] || { echo "PGs did not become active" >&2; exit 1; }
        sleep 1
    done
}

for n in 1 2 3; do
    "$shoal" pool create "r$n" --pg-num 8 --size "$n" --min-size 1 >/dev/null
done
wait_active
for n in 1 2 3; do
    "$shoal" bench "r$n" 10 write -b "$BLOCK" -t 1 --max-objects 1 --no-cleanup >/dev/null
done

run() {  # pool balance -> IOPS
    local conf=$work/shoal/shoal-$2.toml  # beside shoal.toml: paths in it are relative
    sed "s/^balance_reads = .*//" "$SHOAL_CONF" > "$conf"
    if grep -q '^\[client\]' "$conf"; then
        sed -i "s/^\[client\]/[client]\nbalance_reads = $2/" "$conf"
    else
        printf '\n[client]\nbalance_reads = %s\n' "$2" >> "$conf"
    fi
    SHOAL_CONF=$conf "$shoal" --format json bench "$1" "$SECS" rand -t 16 |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["iops"])'
}

printf '\n%-8s %16s %8s %18s %8s\n' pool "IOPS (balanced)" ratio "IOPS (head only)" ratio
base_b="" base_h=""
for n in 1 2 3; do
    b=$(run "r$n" true)
    h=$(run "r$n" false)
    base_b=${base_b:-$b}
    base_h=${base_h:-$h}
    printf '%-8s %16.0f %8.2f %18.0f %8.2f\n' "size $n" "$b" "$(python3 -c "print($b/$base_b)")" \
        "$h" "$(python3 -c "print($h/$base_h)")"
done
