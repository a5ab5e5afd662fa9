#!/usr/bin/env python3
"""Smoke test of the broadcast benchmark's client against keel_chat_server:
a short closed loop and a short open loop (20 members, 127.0.0.1, bounded
time). The client exits non-zero on any lost, duplicated or unparsable
delivery; this checks that, and that the open loop offered what it was asked
to (so a pacing bug cannot go unnoticed), not any speed.

    smoke_test.py CHAT_SERVER BROADCAST_CLIENT
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import free_port, wait_listening  # noqa: E402

MEMBERS, RATE, SECONDS = 20, 400, 1.0


def run(client, port, pid, extra):
    out = subprocess.run([client, "--protocol", "keel", "--port", str(port), "--members", str(MEMBERS),
                          "--publishers", "4", "--seconds", str(SECONDS), "--warmup", "0.2",
                          "--server-pid", str(pid)] + extra,
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        sys.exit(f"client {extra} exited {out.returncode}: {out.stderr.strip()[-400:]}")
    return json.loads(out.stdout)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    server, client = sys.argv[1], sys.argv[2]
    port = free_port()
    proc = subprocess.Popen([server, "--host", "127.0.0.1", "--port", str(port), "--io-threads", "1",
                             "--worker-threads", "1", "--create-rooms", "bench", "--history", "0",
                             "--say-per-second", "100000000", "--say-burst", "100000000",
                             "--frames-per-second", "0", "--stats-interval", "0", "--log-level", "warn"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    failures = []
    try:
        wait_listening(port, proc, timeout=10)
        closed = run(client, port, proc.pid, ["--window", "4"])
        if not (closed["deliveries_per_s"] > 0 and closed["lost"] == 0 and closed["duplicated"] == 0):
            failures.append(f"closed loop: {closed}")
        opened = run(client, port, proc.pid, ["--rate", str(RATE)])
        # The schedule sends RATE messages/s; what went out in the window is
        # within a few messages of it (a stall of the machine may hold some).
        sent = opened["msgs_in_per_s"] * opened["seconds"]
        if opened["offered_msgs_per_s"] != RATE or abs(sent - RATE * SECONDS) > 0.25 * RATE * SECONDS:
            failures.append(f"open loop sent {sent:.0f} messages in {opened['seconds']} s at {RATE}/s: {opened}")
        if opened["lost"] != 0 or opened["duplicated"] != 0 or opened["deliveries_per_s"] <= 0:
            failures.append(f"open loop: {opened}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if failures:
        sys.exit("\n".join(failures))
    print(f"closed loop {closed['deliveries_per_s']:,.0f} deliveries/s; open loop {opened['msgs_in_per_s']:,.0f} "
          f"of {RATE} messages/s, p99 {opened['p99_us'] / 1000:.1f} ms; no loss")


if __name__ == "__main__":
    main()
