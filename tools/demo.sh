#!/usr/bin/env bash
# The main job, as far as it exists today: start a local cluster of three
# monitors on 127.0.0.1-3, administer it with `shoal` (pools, OSDs, CRUSH,
# identities, the leader killed and replaced), then check a production-size
# CRUSH map offline with `shoalmap` (6 hosts in 3 racks, hdd and ssd). The OSD
# daemons and the data path come with the next issue.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release -p shoalmap -p shoal-mon -p shoal-cli
bin=target/release
shoalmap=$bin/shoalmap
work=$(mktemp -d)
pids=()
cleanup() {
    # Only the monitors this script started, by PID.
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
map=docs/examples/cluster.txt

step() { printf '\n== %s\n' "$*"; }

step "a local cluster: three monitors (the first --mkfs creates the CA and client.admin)"
port=$((20000 + RANDOM % 20000))
printf '%s\n' '[global]' "fsid = \"$(cat /proc/sys/kernel/random/uuid)\"" 'keyring = "keys"' \
    "mon_host = [\"a=127.0.0.1:$port\", \"b=127.0.0.2:$port\", \"c=127.0.0.3:$port\"]" \
    '[mon]' 'data = "mon.{id}"' > "$work/shoal.toml"
export SHOAL_CONF=$work/shoal.toml
for m in a b c; do "$bin/shoal-mon" --mkfs --id "$m" 2>&1 | sed 's/^/  /'; done
start_mon() { "$bin/shoal-mon" --id "$1" 2>>"$work/mon.$1.log" & pids[$2]=$!; }
start_mon a 0; start_mon b 1; start_mon c 2
wait_quorum() {
    for _ in $(seq 300); do
        "$bin/shoal" mon stat --format json 2>/dev/null | grep -q '"leader": "' && return 0
        sleep 0.1
    done
    echo "no quorum after 30 s" >&2; return 1
}
wait_quorum
"$bin/shoal" mon stat

step "OSD ids, CRUSH buckets, a pool, an identity with read-only caps"
for _ in 1 2 3; do "$bin/shoal" osd create >/dev/null; done
"$bin/shoal" osd crush add-bucket rack1 rack
"$bin/shoal" osd crush move rack1 root=default
"$bin/shoal" pool create rbd --pg-num 64 --size 3
"$bin/shoal" pool set rbd min_size 2
"$bin/shoal" pool ls
"$bin/shoal" auth add client.backup "mon r"
"$bin/shoal" --name client.backup pool create forbidden || echo "  (refused, as it should be)"
"$bin/shoal" osd tree
"$bin/shoal" status

step "SIGKILL the leader: the others elect a new one and nothing committed is lost"
leader=$("$bin/shoal" mon stat --format json | sed -n 's/.*"leader": "\(.\)".*/\1/p')
idx=$(( $(printf '%d' "'$leader") - 97 ))
{ kill -9 "${pids[$idx]}"; wait "${pids[$idx]}"; } 2>/dev/null || true
echo "killed mon.$leader (the leader) with SIGKILL"
"$bin/shoal" config-key set demo/after-failover ok
"$bin/shoal" pool ls
"$bin/shoal" mon stat
start_mon "$leader" "$idx"
wait_quorum
"$bin/shoal" config-key get demo/after-failover

step "offline: check a production CRUSH map with shoalmap"

step "compile the text map and decompile it back (round trip is byte-identical)"
"$shoalmap" crush compile "$map" -o "$work/cluster.bin"
"$shoalmap" crush decompile "$work/cluster.bin" | diff -u "$map" - && echo "identical"

step "rule 0 (one replica per rack): first mappings, then statistics"
"$shoalmap" crush test --map "$work/cluster.bin" --rule 0 --num-rep 3 --min-x 0 --max-x 4 --show-mappings
"$shoalmap" crush test --map "$work/cluster.bin" --rule 0 --num-rep 3 --min-x 0 --max-x 9999 --show-statistics

step "an OSDMap with an rbd pool (rule 0) and a fast pool (ssd rule)"
"$shoalmap" osdmap create --crush "$map" --pool rbd:256:3 --pool fast:64:2:fast_ssd -o "$work/osdmap"
"$shoalmap" tree --osdmap "$work/osdmap"

step "where do objects live?"
for obj in vm-disk-1 photos/2026/img_0001.jpg backup.tar; do
    "$shoalmap" map-object --osdmap "$work/osdmap" --pool rbd "$obj"
done

step "PGs per OSD for pool rbd against the weight-proportional target"
"$shoalmap" pgs --osdmap "$work/osdmap" --pool rbd --svg "$work/pgs.svg" | tail -6

step "what if we add a host with 4 x 3.638 OSDs to rack1?"
"$shoalmap" simulate --osdmap "$work/osdmap" --add-host node6:4:3.638:rack1

step "balance with upmap: every OSD within 1 PG of its target"
"$shoalmap" balance --osdmap "$work/osdmap" -o "$work/balanced" | tail -3
"$shoalmap" pgs --osdmap "$work/balanced" --pool rbd | tail -5
