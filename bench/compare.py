#!/usr/bin/env python3
"""Runs a Google Benchmark program and reports each result against its baseline.

Benchmark names read  group/impl/case...  (e.g. lock/SpinLock/threads:2). The
program names each group's baseline impl in its context:
    benchmark::AddCustomContext("baseline.lock", "std_mutex");
Every impl is then paired with the baseline run of the same group and case,
and the ratio of median CPU time per operation is printed (below 1.0: faster
than the baseline). Repetitions and CPU pinning are applied here, so every
number in docs/benchmarks.md comes from the same command shape. Repetitions of
all benchmarks are interleaved at random (Google Benchmark's
--benchmark_enable_random_interleaving) unless --in-order:

    bench/compare.py --cpus 0,1 --repetitions 5 build/release/keel/core/keel_core_bench
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import OrderedDict


def run(args):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        out_path = out.name
    cmd = []
    if args.cpus:
        cmd += ["taskset", "-c", args.cpus]
    cmd += [
        args.binary,
        f"--benchmark_repetitions={args.repetitions}",
        "--benchmark_report_aggregates_only=true",
        f"--benchmark_out={out_path}",
        "--benchmark_out_format=json",
    ]
    if args.min_time:
        cmd.append(f"--benchmark_min_time={args.min_time}")
    if args.filter:
        cmd.append(f"--benchmark_filter={args.filter}")
    if not args.in_order:
        # Shuffle the repetitions of every benchmark together, so that load
        # from other processes falls on each implementation alike.
        cmd.append("--benchmark_enable_random_interleaving=true")
    cmd += args.extra
    print("$ " + " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL if args.quiet else None)
    with open(out_path) as f:
        data = json.load(f)
    os.unlink(out_path)
    return data


def to_ns(value, unit):
    return value * {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}[unit]


def report(data, stream):
    ctx = data.get("context", {})
    baselines = {k[len("baseline."):]: v for k, v in ctx.items() if k.startswith("baseline.")}
    medians = OrderedDict()
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        name = b.get("run_name", b["name"])
        parts = name.split("/")
        if len(parts) < 2:
            continue
        group, impl, case = parts[0], parts[1], "/".join(parts[2:]) or "-"
        medians[(group, case, impl)] = {
            "cpu": to_ns(b["cpu_time"], b["time_unit"]),
            "real": to_ns(b["real_time"], b["time_unit"]),
        }
    stream.write(
        f"machine: {ctx.get('num_cpus')} CPUs @ {ctx.get('mhz_per_cpu')} MHz, "
        f"host {ctx.get('host_name')}, {ctx.get('date')}\n\n"
    )
    stream.write("| group | case | impl | CPU ns/op | wall ns/op | baseline | baseline CPU ns/op | CPU ratio |\n")
    stream.write("|---|---|---|---:|---:|---|---:|---:|\n")
    worst = None
    for (group, case, impl), m in medians.items():
        base_impl = baselines.get(group)
        base = medians.get((group, case, base_impl)) if base_impl else None
        if base_impl == impl:
            ratio, base_cpu = "1.00 (baseline)", f"{m['cpu']:.1f}"
        elif base:
            r = m["cpu"] / base["cpu"] if base["cpu"] > 0 else float("inf")
            ratio, base_cpu = f"{r:.2f}", f"{base['cpu']:.1f}"
            worst = max(worst or r, r)
        else:
            ratio, base_cpu = "n/a", "n/a"
        stream.write(
            f"| {group} | {case} | {impl} | {m['cpu']:.1f} | {m['real']:.1f} | "
            f"{base_impl or 'none'} | {base_cpu} | {ratio} |\n"
        )
    return worst


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("binary")
    p.add_argument("--cpus", default="", help="taskset CPU list, e.g. 0,1")
    p.add_argument("--repetitions", type=int, default=5)
    p.add_argument("--min-time", default="", help="--benchmark_min_time (seconds)")
    p.add_argument("--filter", default="")
    p.add_argument("--json", default="", help="also save the raw JSON here")
    p.add_argument("--quiet", action="store_true", help="hide the program's own table")
    p.add_argument("--in-order", action="store_true",
                   help="run each benchmark's repetitions back to back (the default "
                        "interleaves all repetitions at random)")
    p.add_argument("extra", nargs="*", help="more benchmark flags (after --)")
    args = p.parse_args()
    data = run(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
    report(data, sys.stdout)


if __name__ == "__main__":
    main()
