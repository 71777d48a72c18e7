#!/usr/bin/env python3
"""Differential test of `shoalmap crush` against Ceph's real `crushtool`.

Generates random CRUSH maps (hierarchies of every bucket algorithm, tunable
profiles, device classes, replicated and erasure rules with set_* steps),
then checks that for the same arguments Shoal prints exactly what crushtool
prints: the decompiled text, mappings (with reweights and --pool-id),
statistics, utilization and choose-tries histograms.

Needs crushtool (Debian package ceph-base). Usage:
    tools/crush-diff.py [--maps N] [--seed S] [--shoalmap PATH] [--keep DIR]
Exit status 0 when every comparison matched.
"""

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile

PROFILES = {
    "argonaut": None,  # no tunable lines
    "bobtail": dict(choose_local_tries=0, choose_local_fallback_tries=0,
                    choose_total_tries=50, chooseleaf_descend_once=1),
    "firefly": dict(choose_local_tries=0, choose_local_fallback_tries=0,
                    choose_total_tries=50, chooseleaf_descend_once=1,
                    chooseleaf_vary_r=1),
    "jewel": dict(choose_local_tries=0, choose_local_fallback_tries=0,
                  choose_total_tries=50, chooseleaf_descend_once=1,
                  chooseleaf_vary_r=1, chooseleaf_stable=1,
                  straw_calc_version=1, allowed_bucket_algs=54),
}
TUNABLE_ORDER = ["choose_local_tries", "choose_local_fallback_tries",
                 "choose_total_tries", "chooseleaf_descend_once",
                 "chooseleaf_vary_r", "chooseleaf_stable",
                 "straw_calc_version", "allowed_bucket_algs"]


def rand_weight(rng):
    return rng.choice([1.0, 1.0, 2.0, 0.5, 3.638, 7.277, 1.819, 0.25, 0.0,
                       round(rng.uniform(0.01, 10), 3)])


def gen_map(rng):
    lines = ["# begin crush map"]
    profile = rng.choice(list(PROFILES))
    tun = dict(PROFILES[profile] or {})
    if rng.random() < 0.3:
        tun["choose_total_tries"] = rng.choice([1, 3, 19, 50, 100])
    if rng.random() < 0.2:
        tun["chooseleaf_vary_r"] = rng.choice([0, 1, 2, 3])
    if rng.random() < 0.2:
        tun["straw_calc_version"] = rng.choice([0, 1])
    if rng.random() < 0.2 and profile != "argonaut":
        tun["choose_local_tries"] = rng.choice([0, 1, 2])
        tun["choose_local_fallback_tries"] = rng.choice([0, 2, 5])
    for k in TUNABLE_ORDER:
        if k in tun:
            lines.append(f"tunable {k} {tun[k]}")
    classes = rng.random() < 0.35
    levels = rng.choice([["host"], ["host", "rack"], ["host", "rack", "row"]])
    fanout = [rng.randint(1, 5) for _ in range(len(levels) + 1)]
    osds_per_host = rng.randint(1, 6)
    algs = ["straw2"] * 6 + ["straw", "list", "uniform", "tree"]
    types = ["osd"] + levels + ["root"]

    devices = []
    buckets = []  # (type, name, alg, items[(name, weight)])
    next_osd = [0]
    counters = {}

    def build(level):
        """Builds a subtree; returns (name, weight)."""
        t = types[level]
        counters[t] = counters.get(t, 0) + 1
        name = f"{t}{counters[t]}"
        alg = rng.choice(algs)
        items = []
        if level == 1:
            n = osds_per_host if rng.random() < 0.8 else rng.randint(0, 6)
            uni_w = rand_weight(rng) or 1.0
            for _ in range(n):
                d = next_osd[0]
                next_osd[0] += 1
                cls = rng.choice(["hdd", "ssd"]) if classes else None
                devices.append((d, cls))
                w = uni_w if alg == "uniform" else rand_weight(rng)
                items.append((f"osd.{d}", w))
        else:
            for _ in range(rng.randint(1, fanout[level - 1])):
                child, w = build(level - 1)
                items.append((child, w))
            if alg == "uniform" and len({w for _, w in items}) > 1:
                alg = "straw2"
        buckets.append((t, name, alg, items))
        return name, round(sum(w for _, w in items), 3)

    root, _ = build(len(types) - 1)
    if rng.random() < 0.3:  # a device id hole
        pass
    lines.append("")
    lines.append("# devices")
    for d, cls in devices:
        lines.append(f"device {d} osd.{d}" + (f" class {cls}" if cls else ""))
    lines.append("")
    lines.append("# types")
    for i, t in enumerate(types):
        lines.append(f"type {i} {t}")
    lines.append("")
    lines.append("# buckets")
    bid = 0
    for t, name, alg, items in buckets:
        bid -= 1
        lines.append(f"{t} {name} {{")
        lines.append(f"\tid {bid}\t\t# do not change unnecessarily")
        lines.append(f"\talg {alg}")
        lines.append("\thash 0\t# rjenkins1")
        for i, (item, w) in enumerate(items):
            pos = f" pos {i}" if alg in ("uniform", "tree") else ""
            lines.append(f"\titem {item} weight {w:.3f}{pos}")
        lines.append("}")
    lines.append("")
    lines.append("# rules")
    rules = []
    nrules = rng.randint(1, 4)
    for rid in range(nrules):
        erasure = rng.random() < 0.35
        mode = "indep" if erasure else "firstn"
        steps = []
        if rng.random() < 0.3:
            steps.append(f"set_chooseleaf_tries {rng.choice([1, 3, 5])}")
        if rng.random() < 0.3:
            steps.append(f"set_choose_tries {rng.choice([1, 5, 50, 100])}")
        if not erasure and rng.random() < 0.15:
            steps.append(f"set_choose_local_tries {rng.choice([0, 1, 2])}")
            steps.append(f"set_choose_local_fallback_tries {rng.choice([0, 3, 5])}")
        if not erasure and rng.random() < 0.15:
            steps.append(f"set_chooseleaf_vary_r {rng.choice([0, 1])}")
            steps.append(f"set_chooseleaf_stable {rng.choice([0, 1])}")
        take = root if rng.random() < 0.85 else rng.choice(buckets)[1]
        if classes and rng.random() < 0.6:
            take += " class " + rng.choice(["hdd", "ssd"])
        steps.append(f"take {take}")
        shape = rng.random()
        fd = rng.choice(types[:-1])
        emits_devices = True
        if shape < 0.5:
            steps.append(f"chooseleaf {mode} {rng.choice([0, 0, 2, -1])} type {fd}")
        elif shape < 0.8 and len(types) > 2:
            steps.append(f"choose {mode} {rng.choice([0, 2, 3])} type {types[rng.randint(1, len(types) - 2)]}")
            steps.append(f"chooseleaf {mode} {rng.choice([1, 2])} type {rng.choice(types[:2])}")
        else:
            steps.append(f"choose {mode} {rng.choice([0, 1, 2])} type {fd}")
            emits_devices = fd == "osd"
        steps.append("emit")
        lines.append(f"rule r{rid} {{")
        lines.append(f"\tid {rid}")
        lines.append(f"\ttype {'erasure' if erasure else 'replicated'}")
        lines.append("\tmin_size 1")
        lines.append("\tmax_size 10")
        for s in steps:
            lines.append(f"\tstep {s}")
        lines.append("}")
        rules.append((rid, emits_devices))
    lines.append("")
    lines.append("# end crush map")
    return "\n".join(lines) + "\n", len(devices), rules


def run(cmd, **kw):
    """Runs a command; None when it hangs (crushtool sometimes does, at exit)."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)
    except subprocess.TimeoutExpired:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--maps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--shoalmap", default="target/release/shoalmap")
    ap.add_argument("--keep", help="keep failing maps in this directory")
    args = ap.parse_args()
    if not shutil.which("crushtool"):
        sys.exit("crushtool not found: apt-get install ceph-base")
    rng = random.Random(args.seed)
    failures = checks = skipped = 0
    tmp = tempfile.mkdtemp(prefix="crush-diff-")
    for i in range(args.maps):
        text, ndev, rules = gen_map(rng)
        src = os.path.join(tmp, f"m{i}.txt")
        binp = os.path.join(tmp, f"m{i}.bin")
        open(src, "w").write(text)
        c = run(["crushtool", "-c", src, "-o", binp])
        if c is None or c.returncode != 0:
            continue  # generator produced something Ceph refuses; skip
        d = run(["crushtool", "-d", binp])
        if d is None:
            continue
        canon = d.stdout
        open(src, "w").write(canon)
        # Decompiling prints weights with 3 decimals, which can shift them by
        # a unit: both tools must work from the same (canonical) text.
        c = run(["crushtool", "-c", src, "-o", binp])
        if c is None or c.returncode != 0:
            continue
        cases = [["--decompile"]]
        for _ in range(6):
            rid, emits_devices = rng.choice(rules)
            a = ["--test", "--rule", str(rid),
                 "--num-rep", str(rng.choice([1, 2, 3, 4, 6, 10])),
                 "--min-x", "0", "--max-x", str(rng.choice([200, 999]))]
            for _ in range(rng.choice([0, 0, 1, 3])):
                if ndev:
                    a += ["--weight", str(rng.randrange(ndev)),
                          rng.choice(["0", "0.5", "0.1", "1"])]
            if rng.random() < 0.3:
                a += ["--pool-id", str(rng.randint(0, 100000))]
            # crushtool's statistics index arrays by the emitted ids, so a
            # rule emitting buckets (negative ids) makes it corrupt its own
            # memory: compare only mappings for those.
            shows = ["--show-mappings", "--show-mappings"]
            if emits_devices:
                shows += ["--show-statistics", "--show-utilization", "--show-choose-tries"]
            a.append(rng.choice(shows))
            cases.append(a)
        for a in cases:
            checks += 1
            if a == ["--decompile"]:
                want = canon
                got = run([args.shoalmap, "crush", "decompile", src])
            else:
                ref = run(["crushtool", "-i", binp] + a)
                # crushtool hangs or crashes on some inputs (e.g. heap
                # corruption in its tester); those cases prove nothing.
                if ref is None or ref.returncode != 0:
                    checks -= 1
                    skipped += 1
                    continue
                want = ref.stdout
                got = run([args.shoalmap, "crush", "test", "--map", src] + a[1:])
            if got is None or got.returncode != 0 or got.stdout != want:
                failures += 1
                print(f"MISMATCH map {i} args {' '.join(a)}")
                if got is None:
                    print("  shoalmap timed out")
                    continue
                if got.stderr:
                    print("  stderr:", got.stderr.strip()[:300])
                gl, wl = got.stdout.splitlines(), want.splitlines()
                for g, w in zip(gl, wl):
                    if g != w:
                        print(f"  got  {g}\n  want {w}")
                        break
                else:
                    print(f"  lengths differ: got {len(gl)} want {len(wl)}")
                if args.keep:
                    os.makedirs(args.keep, exist_ok=True)
                    shutil.copy(src, os.path.join(args.keep, f"seed{args.seed}_m{i}.txt"))
    shutil.rmtree(tmp)
    if skipped:
        print(f"({skipped} cases skipped: crushtool hung or crashed)")
    print(f"{checks - failures} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
