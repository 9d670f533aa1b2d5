"""kill -9 cycles under concurrent acknowledged appends and policy changes, torn tails and
corruption inside the sealed part of the journal."""

import json
import os
import random
import threading
import time

from client import Closed, Conn, call, read_reply, request


class Acks:
    """Every append the daemon acknowledged, by its unique message."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages = set()
        self.policy_version = 0

    def add(self, message):
        with self.lock:
            self.messages.add(message)

    def policy(self, version):
        with self.lock:
            self.policy_version = max(self.policy_version, version)


def writer(daemon, name, acks, stop, pipelined):
    """Appends until the daemon dies or `stop` is set; records what was acknowledged."""
    n = 0
    try:
        conn = Conn(daemon.socket)
    except Closed:
        return
    try:
        while not stop.is_set():
            batch = []
            for _ in range(pipelined):
                n += 1
                message = f"torture {name} {n}"
                batch.append(message)
            payload = b"".join(
                request(
                    "JOURNAL_APPEND",
                    {"event_type": "torture_append", "message": m, "counters_delta": {"n": i}},
                )
                for i, m in enumerate(batch)
            )
            conn.sock.sendall(payload)
            for m in batch:
                reply = read_reply(conn.sock)
                if reply.get("ok"):
                    acks.add(m)
                elif reply.get("code") != "OVERLOADED":
                    raise RuntimeError(f"append refused: {reply}")
    except (Closed, OSError, ValueError):
        pass
    finally:
        conn.close()


def policy_changer(daemon, acks, stop):
    """Applies policies with varying capacities until the daemon dies."""
    capacity = 10
    while not stop.is_set():
        capacity = capacity % 1000 + 1
        policy = {"limits": {"search": {"capacity_tokens": capacity}}}
        try:
            reply = call(daemon.socket, "APPLY_POLICY", {"policy": policy})
        except (Closed, OSError, ValueError):
            return
        if reply.get("ok"):
            acks.policy(reply["version"])
        time.sleep(0.01)


# Counts of the rotated segments already read, by path and size: a rotated segment
# (`events.NNNNNN.jsonl`) never changes, so each is parsed once, not once per cycle.
_segment_counts = {}


def file_messages(path):
    """Counts each torture message in one journal file."""
    counts = {}
    with open(path, "rb") as f:
        for raw in f:
            if b"torture_append" not in raw:
                continue
            message = json.loads(raw)["message"]
            counts[message] = counts.get(message, 0) + 1
    return counts


def segment_names(directory):
    return sorted(
        f for f in os.listdir(directory) if f.startswith("events.") and f.endswith(".jsonl")
        and f != "events.jsonl"
    )


def journal_messages(path):
    """Counts each torture message in the journal (all of it: one file, or segments first).
    The daemon may rotate the open segment while this reads (its start-up lines can cross
    the segment size): a read during which the list of segments changed is done again."""
    directory = os.path.dirname(path)
    for _ in range(20):
        before = segment_names(directory)
        counts = read_messages(directory, before)
        if counts is not None and segment_names(directory) == before:
            return counts
        time.sleep(0.05)
    raise RuntimeError("the journal kept rotating while it was read")


def read_messages(directory, segments):
    """Counts over `segments` and `events.jsonl`; `None` if a file vanished meanwhile."""
    counts = {}
    for name in segments + ["events.jsonl"]:
        full = os.path.join(directory, name)
        if not os.path.exists(full):
            return None
        if name == "events.jsonl":
            try:
                part = file_messages(full)
            except FileNotFoundError:
                return None
        else:
            key = (full, os.path.getsize(full))
            if key not in _segment_counts:
                _segment_counts[key] = file_messages(full)
            part = _segment_counts[key]
        for message, c in part.items():
            counts[message] = counts.get(message, 0) + c
    return counts


def check_after_restart(daemon, acks, row):
    """Every acknowledged append is in the journal exactly once, no append appears twice,
    the journal verifies, and the policy in force is at least the last acknowledged one."""
    counts = journal_messages(daemon.journal())
    with acks.lock:
        acked = set(acks.messages)
        version = acks.policy_version
    lost = [m for m in acked if counts.get(m, 0) == 0]
    doubled = [m for m, c in counts.items() if c > 1]
    row["appends_checked"] = len(acked)
    row["lost"] += len(lost)
    row["duplicated"] += len(doubled)
    if lost or doubled:
        row["failures"].append(f"lost {lost[:3]} duplicated {doubled[:3]}")
    v = daemon.verify()
    if v.returncode != 0:
        row["failures"].append(f"verify exit {v.returncode}: {v.stdout.strip()} {v.stderr.strip()}")
    status = call(daemon.socket, "STATUS", {})
    if status.get("policy_version", 0) < version:
        row["failures"].append(
            f"policy version {status.get('policy_version')} < acknowledged {version}"
        )


def kill9_cycles(daemon, cycles, budget_s, rng):
    """Runs up to `cycles` kill -9 cycles within `budget_s` seconds."""
    row = {"phase": "kill -9 cycles", "cycles": 0, "appends_checked": 0, "lost": 0,
           "duplicated": 0, "failures": []}
    acks = Acks()
    end = time.monotonic() + budget_s
    daemon.start()
    while row["cycles"] < cycles and time.monotonic() < end and not row["failures"]:
        stop = threading.Event()
        threads = [
            threading.Thread(target=writer, args=(daemon, f"w{row['cycles']}.{i}", acks, stop,
                                                  1 + i * 7))
            for i in range(3)
        ]
        threads.append(threading.Thread(target=policy_changer, args=(daemon, acks, stop)))
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.05, 0.6))
        daemon.kill9()
        stop.set()
        for t in threads:
            t.join(timeout=30)
        row["cycles"] += 1
        daemon.start()
        check_after_restart(daemon, acks, row)
    daemon.stop()
    return row


def torn_and_corrupt(daemon, rng):
    """A torn last line is cut at restart; a byte changed inside the sealed part stops
    start-up and fails verify; restoring it makes both succeed again."""
    row = {"phase": "torn tails, in-seal corruption", "cycles": 0, "appends_checked": 0,
           "lost": 0, "duplicated": 0, "failures": []}
    journal = daemon.journal()
    for i in range(5):
        daemon.start()
        for k in range(20):
            call(daemon.socket, "JOURNAL_APPEND",
                 {"event_type": "torture_append", "message": f"torn {i} {k}"})
        daemon.kill9()
        # A torn tail: part of a line, no newline.
        with open(journal, "ab") as f:
            f.write(b'{"event_version":"1.0","ts":"2026-'[: rng.randint(1, 30)])
        lines_before = sum(1 for _ in open(journal, "rb"))
        daemon.start()
        daemon.stop()
        v = daemon.verify()
        if v.returncode != 0:
            row["failures"].append(f"torn tail {i}: verify exit {v.returncode}: {v.stdout}")
        lines_after = sum(1 for _ in open(journal, "rb"))
        if lines_after < lines_before:
            row["failures"].append(f"torn tail {i}: {lines_before} lines before, {lines_after} after")
        row["cycles"] += 1
    # Corruption inside the sealed part: flip one byte of a middle line's message.
    data = bytearray(open(journal, "rb").read())
    lines = data.split(b"\n")
    target = len(lines) // 2
    offset = sum(len(line) + 1 for line in lines[:target]) + lines[target].index(b'"message":"') + 11
    original = data[offset]
    data[offset] = ord("X") if original != ord("X") else ord("Y")
    open(journal, "wb").write(bytes(data))
    code = daemon.start(expect_ready=False)
    if code is None:
        row["failures"].append("a corrupted sealed line did not stop start-up")
        daemon.stop()
    elif code != 3:
        row["failures"].append(f"a corrupted sealed line stopped start-up with {code}, not 3")
    v = daemon.verify()
    if v.returncode != 4:
        row["failures"].append(f"verify of a corrupted journal exited {v.returncode}, not 4")
    data[offset] = original
    open(journal, "wb").write(bytes(data))
    daemon.start()
    daemon.stop()
    if daemon.verify().returncode != 0:
        row["failures"].append("the restored journal does not verify")
    row["cycles"] += 1
    return row
