#!/usr/bin/env python3
"""s3-list.py -- how fast an S3 endpoint lists a big bucket (boto3).

usage: s3-list.py ENDPOINT ACCESS_KEY SECRET_KEY [--keys 200000] [--procs 2]
                  [--threads 16] [--rounds 3] [--json FILE]

Fills a new bucket with KEYS empty objects (named like a photo archive,
"2026/06/day-NN/img-NNNNNNN.jpg", so that delimiter listings have work to
do), then lists the whole bucket ROUNDS times with ListObjectsV2 pages of
1000 keys and once with delimiter "/" under one day, and prints (and
appends to --json) the fill rate, and the best and median full-listing
times and keys per second. The bucket is left for the caller to drop with
its cluster.
"""
import argparse
import json
import multiprocessing as mp
import statistics
import threading
import time
import uuid

import boto3
from botocore.config import Config


def client(a):
    cfg = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        max_pool_connections=a.threads * 2,
        retries={"max_attempts": 5, "mode": "standard"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client(
        "s3", endpoint_url=a.endpoint, aws_access_key_id=a.access_key,
        aws_secret_access_key=a.secret_key, region_name="us-east-1", config=cfg)


def key_of(i):
    return "2026/06/day-%02d/img-%07d.jpg" % (i % 30, i)


def fill_part(a, bucket, proc, out):
    c = client(a)
    lock = threading.Lock()
    state = {"next": proc}

    def worker():
        while True:
            with lock:
                i = state["next"]
                if i >= a.keys:
                    return
                state["next"] += a.procs
            c.put_object(Bucket=bucket, Key=key_of(i), Body=b"")

    ts = [threading.Thread(target=worker) for _ in range(a.threads // a.procs)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.put(proc)


def list_all(c, bucket, **extra):
    n, pages, token = 0, 0, None
    while True:
        kw = dict(Bucket=bucket, MaxKeys=1000, **extra)
        if token:
            kw["ContinuationToken"] = token
        r = c.list_objects_v2(**kw)
        n += len(r.get("Contents", [])) + len(r.get("CommonPrefixes", []))
        pages += 1
        if not r.get("IsTruncated"):
            return n, pages
        token = r["NextContinuationToken"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("endpoint")
    ap.add_argument("access_key")
    ap.add_argument("secret_key")
    ap.add_argument("--keys", type=int, default=200_000)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    c = client(a)
    bucket = "list-" + uuid.uuid4().hex[:12]
    c.create_bucket(Bucket=bucket)

    t0 = time.time()
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    ps = [ctx.Process(target=fill_part, args=(a, bucket, p, q)) for p in range(a.procs)]
    for p in ps:
        p.start()
    for _ in ps:
        q.get()
    for p in ps:
        p.join()
    fill_s = time.time() - t0

    times = []
    for _ in range(a.rounds):
        t = time.perf_counter()
        n, pages = list_all(c, bucket)
        times.append(time.perf_counter() - t)
        if n != a.keys:
            raise SystemExit(f"listed {n} keys, expected {a.keys}")
    t = time.perf_counter()
    day, _ = list_all(c, bucket, Prefix="2026/06/", Delimiter="/")
    delim_s = time.perf_counter() - t

    out = {
        "endpoint": a.endpoint, "keys": a.keys, "pages": pages,
        "fill_s": round(fill_s, 2), "fill_keys_per_s": round(a.keys / fill_s, 1),
        "list_best_s": round(min(times), 3), "list_median_s": round(statistics.median(times), 3),
        "list_keys_per_s": round(a.keys / min(times), 1),
        "delimiter_prefixes": day, "delimiter_s": round(delim_s, 3),
    }
    print(f"LIST {a.keys} keys: fill {out['fill_keys_per_s']} keys/s; full listing best "
          f"{out['list_best_s']} s ({out['list_keys_per_s']} keys/s), median {out['list_median_s']} s; "
          f"delimiter listing ({day} prefixes) {out['delimiter_s']} s")
    if a.json:
        with open(a.json, "a") as f:
            f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
