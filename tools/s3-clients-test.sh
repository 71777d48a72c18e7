#!/usr/bin/env bash
# tools/s3-clients-test.sh: everyday commands of S3 clients nobody here
# wrote (aws-cli, boto3, rclone, s3cmd, restic) against a `shoal dev up`
# cluster and its gateway. Each step checks what it got back (bytes
# compared, listings counted); the first failure stops the script with
# the command that failed. Installs the clients from Debian when missing.
# Called by tools/test.sh; needs the debug binaries built by cargo.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v aws >/dev/null || need+=(awscli)
command -v rclone >/dev/null || need+=(rclone)
command -v s3cmd >/dev/null || need+=(s3cmd)
command -v restic >/dev/null || need+=(restic)
# boto3 from the python3 on PATH, else Debian's for the system python.
PY=python3
python3 -c 'import boto3' 2>/dev/null || { PY=/usr/bin/python3; $PY -c 'import boto3' 2>/dev/null || need+=(python3-boto3); }
if [ ${#need[@]} -gt 0 ]; then
    echo "s3-clients: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
    sudo_ apt-get update -qq
    sudo_ apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

bin=${CARGO_TARGET_DIR:-$PWD/target}/debug
cargo build --quiet --locked -p shoal-cli -p shoal-mon -p shoal-osd -p shoal-s3
work=$(mktemp -d)
cleanup() {
    PATH=$bin:$PATH "$bin/shoal" dev down --dir "$work/cluster" --purge >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

PATH=$bin:$PATH "$bin/shoal" dev up --dir "$work/cluster" --mons 1 --osds 3 --format json > "$work/up.json"
read -r endpoint ak sk < <(python3 -c '
import json, sys
s3 = json.load(open(sys.argv[1]))["s3"]
print(s3["endpoint"], s3["access_key"], s3["secret_key"])' "$work/up.json")
# Plain HTTP on loopback: a CA bundle from the environment only breaks
# clients that insist on loading it (rclone).
unset AWS_CA_BUNDLE AWS_PROFILE AWS_ENDPOINT_URL
export AWS_ACCESS_KEY_ID=$ak AWS_SECRET_ACCESS_KEY=$sk AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=$work/aws-config AWS_SHARED_CREDENTIALS_FILE=$work/aws-credentials
hostport=${endpoint#http://}

step() { echo "s3-clients: $*"; }
fail() { echo "s3-clients: FAILED: $*" >&2; exit 1; }
same() { cmp -s "$1" "$2" || fail "$3: $1 and $2 differ"; }

# Test data: a small file, a 20 MiB one (multipart for every client), a tree.
mkdir -p "$work/data/tree/sub"
head -c 1000 /dev/urandom > "$work/data/small"
head -c $((20 << 20)) /dev/urandom > "$work/data/big"
for i in $(seq 1 25); do head -c $((i * 1000)) /dev/urandom > "$work/data/tree/f$i"; done
for i in 1 2 3; do echo "nested $i" > "$work/data/tree/sub/n$i"; done

step "aws-cli $(aws --version 2>&1 | cut -d' ' -f1)"
aws() { command aws --endpoint-url "$endpoint" "$@"; }
aws s3 mb s3://awscli >/dev/null
aws s3 cp "$work/data/small" s3://awscli/small >/dev/null
aws s3 cp "$work/data/big" s3://awscli/big >/dev/null
aws s3 cp s3://awscli/big "$work/big.aws" >/dev/null
same "$work/data/big" "$work/big.aws" "aws s3 cp (multipart) round trip"
aws s3 sync "$work/data/tree" s3://awscli/tree >/dev/null
n=$(aws s3 ls --recursive s3://awscli/tree/ | wc -l)
[ "$n" = 28 ] || fail "aws s3 ls --recursive listed $n of 28 keys"
aws s3 sync s3://awscli/tree "$work/tree.aws" >/dev/null
diff -r "$work/data/tree" "$work/tree.aws" >/dev/null || fail "aws s3 sync down differs"
url=$(aws s3 presign s3://awscli/small --expires-in 300)
curl -sf "$url" -o "$work/small.presigned" || fail "presigned GET"
same "$work/data/small" "$work/small.presigned" "presigned URL"
aws s3api put-bucket-versioning --bucket awscli --versioning-configuration Status=Enabled
aws s3 cp "$work/data/small" s3://awscli/small >/dev/null
v=$(aws s3api list-object-versions --bucket awscli --prefix small --query 'length(Versions)' --output text)
[ "$v" = 2 ] || fail "list-object-versions shows $v versions of small, not 2"
aws s3 rm --recursive s3://awscli/tree >/dev/null
# `aws s3 ls` exits 1 when it lists nothing.
n=$({ aws s3 ls --recursive s3://awscli/tree/ || true; } | wc -l)
[ "$n" = 0 ] || fail "aws s3 rm --recursive left $n keys"

step "boto3 $($PY -c 'import boto3; print(boto3.__version__)')"
$PY - "$endpoint" "$work" <<'PY'
import os, sys
import boto3
from boto3.s3.transfer import TransferConfig
endpoint, work = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=endpoint)
s3.create_bucket(Bucket="boto3")
cfg = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20)
s3.upload_file(f"{work}/data/big", "boto3", "big", Config=cfg)
s3.download_file("boto3", "big", f"{work}/big.boto3", Config=cfg)
assert open(f"{work}/big.boto3", "rb").read() == open(f"{work}/data/big", "rb").read(), "boto3 round trip"
for i in range(1500):
    s3.put_object(Bucket="boto3", Key=f"many/{i:05d}", Body=b"x")
keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="boto3", Prefix="many/")
        for o in page.get("Contents", [])]
assert keys == [f"many/{i:05d}" for i in range(1500)], f"paginated listing: {len(keys)} keys"
r = s3.delete_objects(Bucket="boto3", Delete={"Objects": [{"Key": k} for k in keys[:1000]]})
assert len(r["Deleted"]) == 1000, r.get("Errors")
left = s3.list_objects_v2(Bucket="boto3", Prefix="many/")["KeyCount"]
assert left == 500, f"{left} keys left after deleting 1000 of 1500"
head = s3.head_object(Bucket="boto3", Key="big")
assert head["ContentLength"] == os.path.getsize(f"{work}/data/big")
PY

step "rclone $(rclone version 2>/dev/null | head -1 | cut -d' ' -f2)"
export RCLONE_CONFIG_SHOAL_TYPE=s3 RCLONE_CONFIG_SHOAL_PROVIDER=Other
export RCLONE_CONFIG_SHOAL_ENDPOINT=$endpoint RCLONE_CONFIG_SHOAL_ACCESS_KEY_ID=$ak
export RCLONE_CONFIG_SHOAL_SECRET_ACCESS_KEY=$sk RCLONE_CONFIG_SHOAL_FORCE_PATH_STYLE=true
rclone() { command rclone --config /dev/null "$@"; }
rclone mkdir shoal:rclone
rclone copy "$work/data" shoal:rclone/data
rclone check "$work/data" shoal:rclone/data >/dev/null 2>&1 || fail "rclone check after copy"
n=$(rclone ls shoal:rclone/data | wc -l)
[ "$n" = 30 ] || fail "rclone ls listed $n of 30 files"
rclone copy shoal:rclone/data "$work/data.rclone"
diff -r "$work/data" "$work/data.rclone" >/dev/null || fail "rclone copy down differs"
rclone delete shoal:rclone/data/tree
n=$(rclone ls shoal:rclone/data | wc -l)
[ "$n" = 2 ] || fail "rclone delete left $n files, not 2"

step "s3cmd $(s3cmd --version | cut -d' ' -f3)"
s3cmd() {
    command s3cmd --config=/dev/null --access_key="$ak" --secret_key="$sk" --host="$hostport" \
        --host-bucket="$hostport" --no-ssl --region=us-east-1 "$@"
}
s3cmd mb s3://s3cmd >/dev/null
s3cmd put "$work/data/big" s3://s3cmd/big >/dev/null
s3cmd get s3://s3cmd/big "$work/big.s3cmd" >/dev/null
same "$work/data/big" "$work/big.s3cmd" "s3cmd put/get (multipart)"
s3cmd sync "$work/data/tree/" s3://s3cmd/tree/ >/dev/null
n=$(s3cmd ls --recursive s3://s3cmd/tree/ | wc -l)
[ "$n" = 28 ] || fail "s3cmd ls listed $n of 28 keys"
s3cmd del --recursive --force s3://s3cmd/tree/ >/dev/null
s3cmd del s3://s3cmd/big >/dev/null
s3cmd rb s3://s3cmd >/dev/null

step "restic $(restic version | cut -d' ' -f2)"
export RESTIC_REPOSITORY=s3:$endpoint/restic RESTIC_PASSWORD=shoal-test
restic init >/dev/null
restic backup --quiet "$work/data"
restic backup --quiet "$work/data"
n=$(restic snapshots --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" = 2 ] || fail "restic snapshots shows $n, not 2"
restic check --read-data >/dev/null 2>&1 || fail "restic check --read-data"
restic restore latest --target "$work/restored" >/dev/null
diff -r "$work/data" "$work/restored$work/data" >/dev/null || fail "restic restore differs"

step "all clients passed"
