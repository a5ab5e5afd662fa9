#!/usr/bin/env python3
"""Room broadcast benchmark: one room, M members, P publishers flat out (each
with W messages of its own in flight), 64-byte messages; every member gets
every message; with --loads also an open loop (a fixed offered load, the same
for every server, latency stamped from when each message was due). Servers:
redis-server PUBLISH/SUBSCRIBE, Boost.Asio's chat example as Debian ships it,
and Keel's chat server (keel_chat_server).
Placement "same": server and client on CPU 0; "split": server on 0, client
on 1. Rounds interleave the servers; median of repeats; ratios to redis-server.

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
    p.add_argument("--loads", default="", help="open loop too: offered deliveries/s, comma-separated "
                   "(e.g. 1000000,2000000); each is run at every member count")
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
    servers = [s for s in servers if s[1] in args.servers.split(",")]

    def run_once(name, cmd, protocol, server_cpu, client_cpu, members, extra):
        port = free_port()
        with PinnedServer(cmd(port), server_cpu, port) as proc:
            out = subprocess.run(
                ["taskset", "-c", client_cpu, client, "--protocol", protocol, "--port", str(port),
                 "--members", str(members), "--publishers", str(args.publishers),
                 "--seconds", str(args.seconds), "--warmup", str(args.warmup),
                 "--server-pid", str(proc.pid)] + extra,
                capture_output=True, text=True, timeout=args.seconds + args.warmup + 90)
        if out.returncode == 0:
            return json.loads(out.stdout)
        print(f"<!-- {name}: {out.stderr.strip()[-200:]} {out.stdout.strip()[-300:]} -->")
        return None

    def medians(placement, members, extra):
        """Every server once per round, rounds interleaved; medians per server."""
        server_cpu, client_cpu = ("0", "0") if placement == "same" else ("0", "1")
        runs = {name: [] for name, _, _ in servers}
        for _ in range(args.repeat):
            for name, protocol, cmd in servers:
                r = run_once(name, cmd, protocol, server_cpu, client_cpu, members, extra)
                if r is not None:
                    runs[name].append(r)
        keys = ("msgs_in_per_s", "deliveries_per_s", "p50_us", "p99_us", "p999_us", "server_cpu_us_per_delivery",
                "client_cpu_s", "offered_msgs_per_s", "held", "unfinished", "send_lag_p99_us")
        return {name: {k: statistics.median(r[k] for r in rs) for k in keys} for name, rs in runs.items() if rs}

    def table(title, head, rows_of):
        """One markdown table: head's (column, format(r, base)) pairs, a row
        per server and member count (and load), ratios to redis-server."""
        print()
        print(f"{title}; load {os.getloadavg()[0]:.2f}")
        print()
        print("| " + " | ".join(col for col, _ in head) + " |")
        print("|" + "|".join("---" if col in ("placement", "server") else "---:" for col, _ in head) + "|")
        for key, rows in rows_of():
            base = rows.get("redis-server")
            for name, r in rows.items():
                cells = [fmt(key, name, r, base) for _, fmt in head]
                print("| " + " | ".join(cells) + " |", flush=True)

    def ratio(r, base, k):
        return f"{r[k] / base[k]:.2f}" if base and base[k] else "n/a"

    def closed_rows():
        for placement in args.placements.split(","):
            for members in map(int, args.members.split(",")):
                yield (placement, members), medians(placement, members, ["--window", str(args.window)])

    def open_rows():
        for placement in args.placements.split(","):
            for members in map(int, args.members.split(",")):
                for load in map(float, args.loads.split(",")):
                    rate = load / members
                    if rate <= 0:
                        sys.exit(f"--loads {load} over {members} members is no messages/s")
                    yield (placement, members), medians(placement, members, ["--rate", f"{rate:.3f}"])

    client_cpu = ("client CPU %", lambda k, n, r, b: f"{100 * r['client_cpu_s'] / args.seconds:.0f}")
    common = [("placement", lambda k, n, r, b: k[0]), ("members", lambda k, n, r, b: str(k[1]))]
    latency = [("p50 ms", lambda k, n, r, b: f"{r['p50_us'] / 1000:.2f}"),
               ("p99 ms", lambda k, n, r, b: f"{r['p99_us'] / 1000:.2f}")]
    cpu = ("server CPU µs/delivery", lambda k, n, r, b: f"{r['server_cpu_us_per_delivery']:.3f}")
    table(f"Closed loop: {args.publishers} publishers, window {args.window} each",
          common + [("server", lambda k, n, r, b: n),
                    ("msgs in/s", lambda k, n, r, b: f"{r['msgs_in_per_s']:,.0f}"),
                    ("deliveries/s", lambda k, n, r, b: f"{r['deliveries_per_s']:,.0f}")] + latency +
          [cpu, client_cpu, ("deliveries vs redis", lambda k, n, r, b: ratio(r, b, "deliveries_per_s")),
           ("p99 vs redis", lambda k, n, r, b: ratio(r, b, "p99_us"))],
          closed_rows)
    if not args.loads:
        return
    # Open loop: the same offered load (deliveries/s = messages/s x members)
    # for every server; latency at a given load instead of at saturation.
    # held: messages sent late because 4096 were in flight; unfinished: due
    # or in flight at the end (not in the latencies); send lag: the client's
    # own lateness (charged as latency).
    table(f"Open loop: {args.publishers} publishers sending on a fixed schedule",
          common + [("offered deliveries/s", lambda k, n, r, b: f"{r['offered_msgs_per_s'] * k[1]:,.0f}"),
                    ("server", lambda k, n, r, b: n),
                    ("deliveries/s", lambda k, n, r, b: f"{r['deliveries_per_s']:,.0f}")] + latency +
          [("p999 ms", lambda k, n, r, b: f"{r['p999_us'] / 1000:.2f}"), cpu, client_cpu,
           ("held", lambda k, n, r, b: f"{r['held']:.0f}"), ("unfinished", lambda k, n, r, b: f"{r['unfinished']:.0f}"),
           ("send lag p99 µs", lambda k, n, r, b: f"{r['send_lag_p99_us']:.0f}"),
           ("p99 vs redis", lambda k, n, r, b: ratio(r, b, "p99_us"))],
          open_rows)

if __name__ == "__main__":
    main()
