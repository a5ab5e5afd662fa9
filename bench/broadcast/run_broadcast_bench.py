#!/usr/bin/env python3
"""Room broadcast benchmark: one room, M members, P publishers flat out (each
with W messages of its own in flight), 64-byte messages; every member gets
every message. Servers: redis-server PUBLISH/SUBSCRIBE, Boost.Asio's chat
example as Debian ships it, and Keel's chat server (keel_chat_server).
Placement "same": server and client on CPU 0; "split": server on 0, client
on 1. Median of repeats; ratios to redis-server.

    bench/broadcast/run_broadcast_bench.py --build build/release
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import PinnedServer, free_port  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default="build/release")
    p.add_argument("--members", default="100,1000")
    p.add_argument("--publishers", type=int, default=4)
    p.add_argument("--window", type=int, default=16)
    p.add_argument("--placements", default="split,same")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--servers", default="redis,asio,keel", help="protocols to run, comma-separated")
    args = p.parse_args()
    here = os.path.join(args.build, "bench", "broadcast")
    client = os.path.join(here, "broadcast_client")
    servers = [
        ("redis-server", "redis", lambda port: ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                                  "--save", "", "--appendonly", "no", "--loglevel", "warning"]),
        ("asio chat example", "asio", lambda port: [os.path.join(here, "asio_chat_example"), str(port)]),
        # Keel with one IO thread and one worker (the peers are single-threaded);
        # the per-user and per-session rate limits are off for a flat-out publisher.
        ("keel_chat_server", "keel", lambda port: [
            os.path.join(args.build, "apps", "chat_server", "keel_chat_server"), "--host", "127.0.0.1",
            "--port", str(port), "--io-threads", "1", "--worker-threads", "1", "--create-rooms", "bench",
            "--history", "0", "--max-room-members", "5000", "--say-per-second", "100000000",
            "--say-burst", "100000000", "--frames-per-second", "0", "--stats-interval", "0",
            "--log-level", "warn", "--send-hard-limit", "67108864", "--send-soft-limit", "16777216"]),
    ]
    print("| placement | members | server | msgs in/s | deliveries/s | p99 ms | server CPU µs/delivery | deliveries vs redis |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for placement in args.placements.split(","):
        server_cpu, client_cpu = ("0", "0") if placement == "same" else ("0", "1")
        for members in map(int, args.members.split(",")):
            rows = {}
            for name, protocol, cmd in servers:
                if protocol not in args.servers.split(","):
                    continue
                runs = []
                for _ in range(args.repeat):
                    port = free_port()
                    with PinnedServer(cmd(port), server_cpu, port) as proc:
                        out = subprocess.run(
                            ["taskset", "-c", client_cpu, client, "--protocol", protocol, "--port", str(port),
                             "--members", str(members), "--publishers", str(args.publishers),
                             "--window", str(args.window), "--seconds", str(args.seconds),
                             "--warmup", str(args.warmup), "--server-pid", str(proc.pid)],
                            capture_output=True, text=True, timeout=args.seconds + args.warmup + 90)
                    if out.returncode == 0:
                        runs.append(json.loads(out.stdout))
                    else:
                        print(f"<!-- {name}: {out.stderr.strip()[-200:]} {out.stdout.strip()[-300:]} -->")
                if not runs:
                    continue
                rows[name] = {k: statistics.median(r[k] for r in runs) for k in
                              ("msgs_in_per_s", "deliveries_per_s", "p99_us", "server_cpu_us_per_delivery")}
            base = rows.get("redis-server")
            for name, r in rows.items():
                ratio = f"{r['deliveries_per_s'] / base['deliveries_per_s']:.2f}" if base else "n/a"
                print(f"| {placement} | {members} | {name} | {r['msgs_in_per_s']:,.0f} | {r['deliveries_per_s']:,.0f} | "
                      f"{r['p99_us'] / 1000:.1f} | {r['server_cpu_us_per_delivery']:.3f} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
