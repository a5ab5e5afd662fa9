#!/usr/bin/env python3
"""A/B of builds of one Google Benchmark program on a shared, noisy machine.

Runs each binary in turn, round after round (A B C A B C ...), so that load
from other processes falls on every variant alike, and prints per benchmark
the median CPU time per operation of each binary over the rounds, and its
ratio to the first binary (below 1.0: cheaper than the first). Every round
runs each benchmark once per binary (`--benchmark_repetitions=1`).

    bench/ab.py --cpus 0,1 --rounds 7 --filter "pingpong/keel|fanin/keel" \\
        base=/tmp/bench.base new=build/release/keel/job/keel_job_bench

Used for the keel/job per-post and per-slice changes (docs/job.md, "Measured").
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import OrderedDict, defaultdict


def to_ns(value, unit):
    return value * {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}[unit]


def run_once(binary, args):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        out_path = out.name
    cmd = ["taskset", "-c", args.cpus] if args.cpus else []
    cmd += [binary, "--benchmark_repetitions=1", f"--benchmark_out={out_path}",
            "--benchmark_out_format=json"]
    if args.filter:
        cmd.append(f"--benchmark_filter={args.filter}")
    if args.min_time:
        cmd.append(f"--benchmark_min_time={args.min_time}")
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(out_path) as f:
        data = json.load(f)
    os.unlink(out_path)
    rows = OrderedDict()
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate":
            continue
        rows[b.get("run_name", b["name"])] = (to_ns(b["cpu_time"], b["time_unit"]),
                                              to_ns(b["real_time"], b["time_unit"]))
    return rows


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("variants", nargs="+", help="name=path/to/binary, first is the reference")
    p.add_argument("--cpus", default="", help="taskset CPU list, e.g. 0,1")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--filter", default="")
    p.add_argument("--min-time", default="")
    args = p.parse_args()
    variants = [v.split("=", 1) for v in args.variants]
    cpu = defaultdict(lambda: defaultdict(list))   # bench -> variant -> [ns]
    wall = defaultdict(lambda: defaultdict(list))
    order = OrderedDict()
    loads = [loadavg()]
    for r in range(args.rounds):
        for name, binary in variants:
            for bench, (c, w) in run_once(binary, args).items():
                order[bench] = None
                cpu[bench][name].append(c)
                wall[bench][name].append(w)
        loads.append(loadavg())
        print(f"round {r + 1}/{args.rounds} done, load {loads[-1]}", file=sys.stderr)
    names = [n for n, _ in variants]
    print(f"rounds: {args.rounds}; load average (1 min) per round: {' '.join(loads)}")
    print()
    head = " | ".join(f"{n} CPU ms" for n in names)
    ratios = " | ".join(f"{n} ÷ {names[0]}" for n in names[1:])
    print("CPU ms: median over the rounds. Ratio: median of the per-round ratios "
          "[lowest, highest].")
    print()
    print(f"| benchmark | {head} | {ratios} | wall ms ({', '.join(names)}) |")
    print("|---|" + "---:|" * (len(names) * 2 - 1) + "---|")
    for bench in order:
        med = {n: statistics.median(cpu[bench][n]) for n in names if cpu[bench][n]}
        medw = {n: statistics.median(wall[bench][n]) for n in names if wall[bench][n]}
        cells = " | ".join(f"{med[n] / 1e6:.2f}" if n in med else "-" for n in names)

        def ratio(n):
            a, b = cpu[bench][n], cpu[bench][names[0]]
            if not a or len(a) != len(b):
                return "-"
            r = [x / y for x, y in zip(a, b)]
            return f"{statistics.median(r):.2f} [{min(r):.2f}, {max(r):.2f}]"

        rcells = " | ".join(ratio(n) for n in names[1:])
        wcells = " / ".join(f"{medw[n] / 1e6:.1f}" if n in medw else "-" for n in names)
        print(f"| {bench} | {cells} | {rcells} | {wcells} |")


if __name__ == "__main__":
    main()
