#!/usr/bin/env bash
# Runs Shoal's whole test suite: formatting, lints, and every crate's tests.
# This is the test command README.md documents and .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

# The CRUSH and map tests read Ceph's reference vectors from ../shared.
if [ ! -d ../shared/crush-vectors ]; then
    echo "tools/test.sh: ../shared/crush-vectors is missing (it sits beside the checkout)" >&2
    exit 1
fi

cargo fmt --all -- --check
# No module cycles in the crates that have none left (shoal-crush,
# shoal-map, shoal-mon, shoal-s3 and shoal-store still have some:
# tools/module-cycles.py names them).
python3 tools/module-cycles.py \
    crates/shoal-buf crates/shoal-cli crates/shoal-client crates/shoal-conf \
    crates/shoal-daemon crates/shoal-local crates/shoal-monc crates/shoal-net crates/shoal-osd \
    crates/shoal-paxos crates/shoal-proto tools/shoalmap bench tests
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# The store's suite again on the fallback backend (the first run used io_uring).
SHOAL_STORE_BACKEND=thread-pool cargo test -p shoal-store --locked
# Everyday commands of real S3 clients against a local cluster's gateway.
tools/s3-clients-test.sh
