#!/usr/bin/env bash
# The main job, until the local cluster lands: build shoalmap and use it on the
# bundled example map (6 hosts in 3 racks, hdd and ssd classes) the way an
# operator checks a map before putting it in production.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release -p shoalmap
shoalmap=target/release/shoalmap
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
map=docs/examples/cluster.txt

step() { printf '\n== %s\n' "$*"; }

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
