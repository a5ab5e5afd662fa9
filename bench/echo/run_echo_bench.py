#!/usr/bin/env python3
"""Echo benchmark: Keel's echo server and its peers against one ping-pong client.

Every server runs the same workload in the same invocation: N connections on
127.0.0.1, one S-byte message in flight on each (strict request/response).
Placement "same": server and client pinned to one core (steadiest, ranks CPU
efficiency); "split": server on CPU 0, client on CPU 1. Each cell is repeated
and the median kept. Reported: round trips/s, p99 latency, and server CPU
time per message (from /proc/<pid>/stat over the measured window), each with
its ratio to the plain epoll server; then the client's CPU per message and the
share of the window each process was on a CPU ("busy"). A server busy near 1.00
never slept: its CPU per message is then 1 / its msgs/s, not its cost, and the
throughput is set by whoever else is saturated (in "split", usually the client).

    bench/echo/run_echo_bench.py --build build/release
    bench/echo/run_echo_bench.py --connections 100 --sizes 16 --placements same --repeat 3

A/B of two Keel builds: --baseline OTHER_BINARY adds "keel base (io)" rows; --servers
keeps only the servers whose name contains one of the comma-separated words
(e.g. --servers keel,epoll). Repeats are interleaved (server 1, 2, ..., 1, 2, ...),
so slow drifts in machine load hit every server alike.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import PinnedServer, free_port  # noqa: E402


def servers(build, keel, keel_ios, baseline):
    echo = os.path.join(build, "bench", "echo")
    table = []
    if keel:
        for io in keel_ios:
            table.append((f"keel ({io})", lambda p, io=io: [keel, "--port", str(p), "--threads", "1", "--io", io]))
    if baseline:
        for io in keel_ios:
            table.append((f"keel base ({io})",
                          lambda p, io=io: [baseline, "--port", str(p), "--threads", "1", "--io", io]))
    table += [
        ("plain epoll", lambda p: [os.path.join(echo, "epoll_echo_server"), "--port", str(p)]),
        ("libuv", lambda p: [os.path.join(echo, "uv_echo_server"), "--port", str(p)]),
    ]
    uring = os.path.join(echo, "uring_echo_server")
    if os.path.exists(uring):
        table += [
            ("io_uring (buffer ring)", lambda p: [uring, "--port", str(p), "--recv", "ring"]),
            ("io_uring (per-conn buf)", lambda p: [uring, "--port", str(p), "--recv", "per-conn"]),
        ]
    table += [
        ("asio (1 thread, nodelay)", lambda p: [os.path.join(echo, "asio_echo_server_mt"), "--port", str(p), "--threads", "1"]),
    ]
    example = os.path.join(echo, "asio_echo_example")
    if os.path.exists(example):
        table.append(("asio example (Debian)", lambda p: [example, str(p)]))
    return table


def run_cell(cmd_for_port, client, placement, conns, size, seconds, warmup):
    port = free_port()
    server_cpu, client_cpu = ("0", "0") if placement == "same" else ("0", "1")
    with PinnedServer(cmd_for_port(port), server_cpu, port) as proc:
        out = subprocess.run(
            ["taskset", "-c", client_cpu, client, "--port", str(port), "--connections", str(conns),
             "--size", str(size), "--seconds", str(seconds), "--warmup", str(warmup),
             "--server-pid", str(proc.pid)],
            capture_output=True, text=True, timeout=seconds + warmup + 60)
        if out.returncode != 0:
            return {"error": out.stderr.strip()[-200:] or f"client exit {out.returncode}"}
        return json.loads(out.stdout)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default="build/release")
    p.add_argument("--keel", default="", help="Keel echo server binary (default: look in the build)")
    p.add_argument("--keel-io", default="uring,epoll")
    p.add_argument("--connections", default="1,10,100,1000")
    p.add_argument("--sizes", default="16,4096")
    p.add_argument("--placements", default="same,split")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--baseline", default="", help="a second Keel echo server binary, for A/B")
    p.add_argument("--servers", default="", help="comma-separated name filters (default: all)")
    p.add_argument("--json", default="", help="also write every raw result here")
    args = p.parse_args()

    keel = args.keel
    if not keel:
        for name in ("keel_echo_server", "echo_server"):
            cand = os.path.join(args.build, "apps", "echo_server", name)
            if os.path.exists(cand):
                keel = cand
                break
    if not keel:
        print("note: no Keel echo server found; peers only", file=sys.stderr)
    client = os.path.join(args.build, "bench", "echo", "pingpong_client")
    table = servers(args.build, keel, args.keel_io.split(","), args.baseline)
    if args.servers:
        words = args.servers.split(",")
        table = [(n, c) for n, c in table if any(w in n for w in words)]
    raw = []
    print("| placement | conns | size | server | msgs/s | p99 µs | server CPU µs/msg | msgs/s vs epoll | CPU/msg vs epoll | server RSS MiB | client CPU µs/msg | server busy | client busy |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for placement in args.placements.split(","):
        for conns in map(int, args.connections.split(",")):
            for size in map(int, args.sizes.split(",")):
                rows = {}
                all_runs = {name: [] for name, _ in table}
                for _ in range(args.repeat):
                    for name, cmd in table:
                        all_runs[name].append(
                            run_cell(cmd, client, placement, conns, size, args.seconds, args.warmup))
                for name, _ in table:
                    runs = all_runs[name]
                    raw.append({"placement": placement, "connections": conns, "size": size,
                                "server": name, "runs": runs})
                    good = [r for r in runs if "error" not in r]
                    if not good:
                        rows[name] = None
                        print(f"| {placement} | {conns} | {size} | {name} | error: {runs[0]['error']} | | | | | | | | |")
                        continue
                    rows[name] = {
                        "rate": statistics.median(r["msgs_per_s"] for r in good),
                        "p99": statistics.median(r["p99_us"] for r in good),
                        "cpu": statistics.median(r["server_cpu_us_per_msg"] for r in good),
                        "rss": statistics.median(r.get("server_rss_kb", -1) for r in good) / 1024.0,
                        "client_cpu": statistics.median(
                            [r["client_cpu_s"] * 1e6 / r["round_trips"] for r in good if r["round_trips"]] or [-1.0]),
                        "server_busy": statistics.median(r["server_cpu_s"] / r["seconds"] for r in good),
                        "client_busy": statistics.median(r["client_cpu_s"] / r["seconds"] for r in good),
                    }
                base = rows.get("plain epoll")
                for name, r in rows.items():
                    if r is None:
                        continue
                    rate_ratio = f"{r['rate'] / base['rate']:.2f}" if base and base["rate"] else "n/a"
                    cpu_ratio = f"{r['cpu'] / base['cpu']:.2f}" if base and base["cpu"] > 0 else "n/a"
                    print(f"| {placement} | {conns} | {size} | {name} | {r['rate']:,.0f} | {r['p99']:.0f} | "
                          f"{r['cpu']:.2f} | {rate_ratio} | {cpu_ratio} | {r['rss']:.1f} | {r['client_cpu']:.2f} | "
                          f"{r['server_busy']:.2f} | {r['client_busy']:.2f} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f, indent=1)


if __name__ == "__main__":
    main()
