"""A minimal client of heidid's framed socket protocol, and daemon process control,
for the torture run (scripts/torture.sh)."""

import json
import os
import signal
import socket
import struct
import subprocess
import time


class Closed(Exception):
    """The daemon closed the connection or went away."""


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def request(method: str, params: dict) -> bytes:
    return frame(json.dumps({"method": method, "params": params}).encode())


def read_exact(sock: socket.socket, n: int) -> bytes:
    got = b""
    while len(got) < n:
        try:
            chunk = sock.recv(n - len(got))
        except OSError as e:
            raise Closed(str(e)) from e
        if not chunk:
            raise Closed("end of stream")
        got += chunk
    return got


def read_reply(sock: socket.socket) -> dict:
    (length,) = struct.unpack(">I", read_exact(sock, 4))
    return json.loads(read_exact(sock, length))


class Conn:
    """One framed connection."""

    def __init__(self, path: str, timeout: float = 10.0):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError as e:
            self.sock.close()
            raise Closed(str(e)) from e

    def call(self, method: str, params: dict) -> dict:
        try:
            self.sock.sendall(request(method, params))
        except OSError as e:
            raise Closed(str(e)) from e
        return read_reply(self.sock)

    def close(self):
        self.sock.close()


def call(path: str, method: str, params: dict, timeout: float = 10.0) -> dict:
    c = Conn(path, timeout)
    try:
        return c.call(method, params)
    finally:
        c.close()


def proc_status(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def rss_kib(pid: int) -> int:
    return proc_status(pid, "VmRSS")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Daemon:
    """A heidid on a socket and OUT_DIR of its own, restarted at will."""

    def __init__(self, bin_dir: str, work: str, extra_args=(), env=None, config=None):
        self.heidid = os.path.join(bin_dir, "heidid")
        self.heidi = os.path.join(bin_dir, "heidi")
        self.work = work
        self.socket = os.path.join(work, "k.sock")
        self.out_dir = os.path.join(work, "out")
        self.key = os.path.join(work, "seal.key")
        self.log = os.path.join(work, "heidid.log")
        self.extra_args = list(extra_args)
        self.env = dict(os.environ)
        self.env.update({"MAX_CPU_PCT": "0", "MAX_MEM_PCT": "0"})
        self.env.update(env or {})
        self.config = None
        if config is not None:
            self.config = os.path.join(work, "heidid.toml")
            with open(self.config, "w") as f:
                f.write(config)
        self.proc = None
        # Every pid this daemon has had (a stage cgroup is named after its daemon's pid).
        self.pids = []

    def args(self):
        a = [
            self.heidid,
            "--socket", self.socket,
            "--out-dir", self.out_dir,
            "--seal-key", self.key,
            "--no-http",
        ]
        if self.config:
            a += ["--config", self.config]
        return a + self.extra_args

    def start(self, deadline: float = 30.0, expect_ready: bool = True):
        """Starts heidid; waits until it answers PING. Returns the exit code instead if it
        exits during start-up and `expect_ready` is false."""
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(self.args(), env=self.env, stdout=log, stderr=log)
        self.pids.append(self.proc.pid)
        log.close()
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            code = self.proc.poll()
            if code is not None:
                if expect_ready:
                    raise RuntimeError(f"heidid exited with {code} at start; see {self.log}")
                return code
            try:
                if call(self.socket, "PING", {}, timeout=2.0).get("pong"):
                    return None
            except (Closed, OSError, ValueError):
                pass
            time.sleep(0.02)
        self.kill9()
        raise RuntimeError(f"heidid not ready within {deadline}s; see {self.log}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self, deadline: float = 30.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=deadline)

    def journal(self) -> str:
        return os.path.join(self.out_dir, "events.jsonl")

    def verify(self) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.heidi, "journal", "verify", "--key", self.key, self.out_dir],
            capture_output=True,
            text=True,
            timeout=300,
        )
