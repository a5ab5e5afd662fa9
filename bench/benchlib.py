"""Shared helpers for the macro-benchmark runners (bench/echo, bench/broadcast):
free ports, starting a pinned server and waiting for it to listen, stopping it."""
import socket
import subprocess
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start listening")


class PinnedServer:
    """Runs `cmd` pinned to `cpus` for the length of a with-block."""

    def __init__(self, cmd, cpus, port):
        self.cmd, self.cpus, self.port = cmd, cpus, port

    def __enter__(self):
        self.proc = subprocess.Popen(["taskset", "-c", self.cpus] + self.cmd,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(self.port, self.proc)
        return self.proc

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return False
