"""Random and malformed frames, slow clients and connection floods against one daemon; the
daemon must keep answering, and its RSS and descriptors must come back."""

import random
import socket
import struct
import time

from client import Closed, call, fd_count, frame, rss_kib

# After a flood the RSS may stay this far above where it started (allocator slack).
RSS_SLACK_KIB = 16 * 1024


def send_and_drain(path, payload, timeout=2.0):
    """Sends bytes, reads whatever comes back until the daemon closes or goes quiet."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    except OSError:
        pass
    finally:
        s.close()


def malformed(rng):
    """One piece of hostile input."""
    kind = rng.randrange(8)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2048)))
    if kind == 1:
        return struct.pack(">I", rng.choice([0, 1, 8193, 65537, 2**31, 2**32 - 1]))
    if kind == 2:
        body = b'{"method":"PING","params":{}}'
        return frame(body)[: rng.randrange(1, len(body) + 4)]
    if kind == 3:
        return frame(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 512))))
    if kind == 4:
        return frame(b'{"method":"JOURNAL_APPEND","params":{"event_type":"x\\u0000","message":1}}')
    if kind == 5:
        return frame(b'{"method":"PING","params":{},"method":"STATUS"}')
    if kind == 6:
        return b"PING\n" * rng.randrange(1, 50) + b"X" * rng.randrange(0, 600)
    return frame(b'{"method":"' + b"A" * rng.randrange(1, 300) + b'","params":[]}') * 3


def settle(pid, fds_before, deadline=20.0):
    """Waits (bounded) for the descriptor count to come back; returns it."""
    end = time.monotonic() + deadline
    while True:
        now = fd_count(pid)
        if now <= fds_before or time.monotonic() > end:
            return now
        time.sleep(0.05)


def abuse(daemon, rounds, flood, rng):
    row = {"phase": "malformed frames, slow clients, floods", "cycles": 0, "appends_checked": 0,
           "lost": 0, "duplicated": 0, "failures": []}
    daemon.start()
    for _ in range(20):
        call(daemon.socket, "PING", {})
    row["rss_before_kib"] = rss_kib(daemon.pid)
    row["fds_before"] = fd_count(daemon.pid)
    for r in range(rounds):
        for _ in range(200):
            send_and_drain(daemon.socket, malformed(rng), timeout=0.5)
        # Slow clients: a frame trickled a byte at a time, and clients that never read.
        slow = []
        for _ in range(50):
            s = socket.socket(socket.AF_UNIX)
            s.setblocking(False)
            try:
                s.connect(daemon.socket)
                s.send(frame(b'{"method":"STATUS","params":{}}')[:3])
            except OSError:
                pass
            slow.append(s)
        # A flood of simultaneous connections, each asking once.
        conns = []
        for _ in range(flood):
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(10)
            try:
                s.connect(daemon.socket)
                conns.append(s)
            except OSError:
                s.close()
        ping = frame(b'{"method":"PING","params":{}}')
        for s in conns:
            try:
                s.sendall(ping)
            except OSError:
                pass
        answered = 0
        for s in conns:
            try:
                (n,) = struct.unpack(">I", s.recv(4))
                if n and s.recv(n):
                    answered += 1
            except (OSError, struct.error):
                pass
            s.close()
        for s in slow:
            s.close()
        if answered == 0:
            row["failures"].append(f"round {r}: no flood connection was answered")
        try:
            if not call(daemon.socket, "PING", {}).get("pong"):
                row["failures"].append(f"round {r}: PING not answered after the abuse")
        except Closed as e:
            row["failures"].append(f"round {r}: daemon gone: {e}")
            return row
        row["cycles"] += 1
    row["fds_after"] = settle(daemon.pid, row["fds_before"])
    time.sleep(1.5)  # the daemon trims its heap within a second of a storm ending
    row["rss_after_kib"] = rss_kib(daemon.pid)
    if row["fds_after"] > row["fds_before"]:
        row["failures"].append(f"descriptors {row['fds_before']} -> {row['fds_after']}")
    if row["rss_after_kib"] > row["rss_before_kib"] + RSS_SLACK_KIB:
        row["failures"].append(f"RSS {row['rss_before_kib']} -> {row['rss_after_kib']} KiB")
    daemon.stop()
    return row
