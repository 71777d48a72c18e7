#!/usr/bin/env bash
# The main job: start a local cluster in one command (`shoal dev up`: three
# monitors, four OSDs, pool `data`, an S3 gateway), store and read objects
# of any size through it and through S3 (curl signing with SigV4), SIGKILL
# an OSD in the middle and keep going, then stop the cluster. Last, check a
# production-size CRUSH map offline with `shoalmap`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release -p shoal-cli -p shoal-mon -p shoal-osd -p shoal-s3 -p shoalmap
bin=target/release
shoal=$bin/shoal
shoalmap=$bin/shoalmap
work=$(mktemp -d)
cleanup() {
    # `dev down` stops exactly the processes `dev up` recorded.
    "$shoal" dev down --dir "$work/cluster" --purge >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
map=docs/examples/cluster.txt

step() { printf '\n== %s\n' "$*"; }

step "one command: a local cluster on loopback (3 monitors, 4 OSDs of 1 GiB, pool data)"
"$shoal" dev up --dir "$work/cluster" --osd-size 1G
export SHOAL_CONF=$work/cluster/shoal.toml
"$shoal" status
"$shoal" osd tree

step "objects of any size: 0 B to 37 MiB, striped into 4 MiB pieces, 3 replicas each"
for size in 0 1 4096 4194304 4194305 38797312; do
    head -c "$size" /dev/urandom > "$work/obj.$size"
    "$shoal" put data "obj-$size" "$work/obj.$size"
done
echo "hello from stdin" | "$shoal" put data greeting -
"$shoal" get data greeting -
"$shoal" ls data
"$shoal" stat data obj-38797312

step "S3: the gateway dev up started, with the keys it printed (curl signs SigV4)"
read -r ak sk < "$work/cluster/s3-user.keys"
ep=http://$(sed -n '/^\[s3\]/,/^\[/s/^listen = "\(.*\)"/\1/p' "$SHOAL_CONF")
s3() {
    curl -sS --fail-with-body --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ak:$sk" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}
s3 -X PUT "$ep/photos"
s3 -T "$work/obj.38797312" "$ep/photos/2026/big.bin"
s3 -T "$work/obj.4096" -H "Content-Type: image/jpeg" "$ep/photos/2026/small.jpg"
s3 "$ep/photos/2026/big.bin" -o "$work/s3.back"
cmp "$work/obj.38797312" "$work/s3.back" && echo "37 MiB through S3: identical"
s3 "$ep/photos?list-type=2&prefix=2026%2F" | sed 's/<Contents>/\n  <Contents>/g'
echo

step "SIGKILL osd.1 (by the PID dev up recorded): its peers report it, PGs re-peer, I/O goes on"
pid=$(awk '$1 == "osd.1" {print $2}' "$work/cluster/pids")
kill -9 "$pid"
for _ in $(seq 300); do
    "$shoal" osd tree | grep -q 'osd.1 .*down' && break
    sleep 0.1
done
"$shoal" osd tree
"$shoal" put data after-the-kill "$work/obj.4194305"
for size in 0 1 4096 4194304 4194305 38797312; do
    "$shoal" get data "obj-$size" "$work/back.$size"
    cmp "$work/obj.$size" "$work/back.$size"
done
s3 "$ep/photos/2026/big.bin" -o "$work/s3.back"
cmp "$work/obj.38797312" "$work/s3.back"
echo "every object reads back identical with osd.1 dead, through S3 too"
"$shoal" rm data obj-0 obj-1
"$shoal" ls data

step "stop the cluster"
"$shoal" dev down --dir "$work/cluster" --purge

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
