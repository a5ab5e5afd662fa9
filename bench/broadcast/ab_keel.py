#!/usr/bin/env python3
"""Interleaved A/B of keel_chat_server binaries (and redis-server) on the
room broadcast: each round runs every variant once, in order, with the
runner's flags (run_broadcast_bench.py: 4 publishers, window 16, 64-byte
messages, server on CPU 0, client on CPU 1, 2 s after 0.5 s warm-up). Prints
each run with the 1-minute load average, then medians.

    bench/broadcast/ab_keel.py ROUNDS MEMBERS main=/tmp/keel_chat_server.main \
        new=build/release/apps/chat_server/keel_chat_server redis [--rate=MSGS_PER_S]

--rate runs the client's open loop (a fixed offered load) instead of the
closed loop (window 16). A variant may add server flags after its binary,
comma-separated: off=BINARY,--broadcast-wake-batch=0 (the server's default is 64).

The client is build/release's broadcast_client (KEEL_BUILD to change).
"""
import json, os, subprocess, sys, statistics
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import PinnedServer, free_port  # noqa: E402
if len(sys.argv) < 4:
    sys.exit(__doc__)
pairs = int(sys.argv[1]); members = int(sys.argv[2])
variants = []
load_args = ["--window", "16"]
for a in sys.argv[3:]:
    if a.startswith("--rate="):
        load_args = ["--rate", a.split("=", 1)[1]]
    elif a == "redis":
        variants.append(("redis", "redis", lambda port: ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"]))
    else:
        name, spec = a.split("=", 1)
        binary, *flags = spec.split(",")
        variants.append((name, "keel", (lambda b, f: lambda port: [b, "--host", "127.0.0.1",
            "--port", str(port), "--io-threads", "1", "--worker-threads", "1", "--create-rooms", "bench",
            "--history", "0", "--max-room-members", "5000", "--say-per-second", "100000000",
            "--say-burst", "100000000", "--frames-per-second", "0", "--stats-interval", "0",
            "--log-level", "warn", "--send-hard-limit", "67108864", "--send-soft-limit", "16777216"] + f)(binary, flags)))
client = os.path.join(os.environ.get("KEEL_BUILD", "build/release"), "bench", "broadcast", "broadcast_client")
res = {v[0]: [] for v in variants}
for i in range(pairs):
    for name, proto, cmd in variants:
        port = free_port()
        with PinnedServer(cmd(port), "0", port) as proc:
            out = subprocess.run(["taskset", "-c", "1", client, "--protocol", proto, "--port", str(port), "--members", str(members),
                                  "--publishers", "4"] + load_args + ["--seconds", "2", "--warmup", "0.5", "--server-pid", str(proc.pid)],
                                 capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            print(name, "FAILED", out.stderr[-300:], flush=True); continue
        r = json.loads(out.stdout); res[name].append(r)
        la = open("/proc/loadavg").read().split()[0]
        print(f"{i} {name:8s} {r['deliveries_per_s']:>10,.0f}/s p50 {r['p50_us']/1000:6.2f} p99 {r['p99_us']/1000:7.2f} ms cpu {r['server_cpu_us_per_delivery']:.3f} us/del srv {r['server_cpu_s']:.2f}s cli {r['client_cpu_s']:.2f}s lost {r['lost']} dup {r['duplicated']} load {la}", flush=True)
print("medians:")
for name, rs in res.items():
    if rs:
        print(f"  {name:8s} {statistics.median(r['deliveries_per_s'] for r in rs):>10,.0f}/s p50 {statistics.median(r['p50_us'] for r in rs)/1000:.2f} p99 {statistics.median(r['p99_us'] for r in rs)/1000:.1f} ms cpu {statistics.median(r['server_cpu_us_per_delivery'] for r in rs):.3f} us/del (n={len(rs)})")
