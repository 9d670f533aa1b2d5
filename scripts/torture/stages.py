"""Stage torture: sleepers, setsid escapers, a memory hog, a SIGTERM-ignorer and 100 MB of
output, each as the `generate` stage of a fresh daemon; then kill -9 of the daemon while an
escaping stage runs. Nothing of a stage may outlive it, and the daemon's memory and
descriptors must stay bounded."""

import json
import os
import time

from client import Daemon, call, fd_count, rss_kib

STAGES = ["generate", "validate", "unit_test", "train", "eval"]


def marker_processes(marker):
    """Pids whose command line contains `marker`."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def stage_cgroups(daemon):
    """The stage cgroup directories (`heidi-stage-<daemon pid>-<n>`) of `daemon`'s runs left
    anywhere under /sys/fs/cgroup."""
    prefixes = tuple(f"heidi-stage-{pid}-" for pid in daemon.pids)
    left = []
    for root, dirs, _ in os.walk("/sys/fs/cgroup"):
        for d in dirs:
            if d.startswith(prefixes):
                left.append(os.path.join(root, d))
    return left


def config(work, body, stage_extra):
    """A pipeline whose `generate` stage runs `body` under bash; the other stages succeed."""
    toml = (
        f"[pipeline]\nrepo_root = {json.dumps(work)}\nmax_cpu_pct = 0\nmax_mem_pct = 0\n"
        # Where no pids cgroup is writable (some CI machines), root's stages run anyway and
        # the clean-up finds escapers by their marker; where one is, this changes nothing.
        "rounds = 1\nallow_uncontained = true\n"
    )
    for stage in STAGES:
        script = os.path.join(work, f"{stage}.sh")
        with open(script, "w") as f:
            f.write("#!/bin/bash\n" + (body if stage == "generate" else "exit 0") + "\n")
        toml += f"[pipeline.stages.{stage}]\ncommand = [\"bash\", {json.dumps(script)}]\n"
        if stage == "generate":
            toml += stage_extra + "\n"
    return toml


def wait_until(what, check, deadline=60.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(what)


def generate_done(daemon):
    """The generate stage's stage_end or failure is journaled."""
    try:
        with open(daemon.journal(), "rb") as f:
            for raw in f:
                e = json.loads(raw)
                if e["stage"] == "generate" and e["event_type"] in ("stage_end", "pipeline_error"):
                    return e
    except (OSError, ValueError):
        pass
    return None


def dropped_output(daemon, at_least):
    """Whether a stage_output event counts at least `at_least` dropped output bytes."""
    with open(daemon.journal(), "rb") as f:
        for raw in f:
            e = json.loads(raw)
            if e["event_type"] == "stage_output":
                if e["counters_delta"].get("output_dropped_bytes", 0) >= at_least:
                    return True
    return False


def scenarios(marker):
    m = marker
    return [
        ("sleeper past its timeout", f"sleep 600.{m}1", "timeout_s = 1", "stage_timeout"),
        (
            "setsid escapers and grandchildren",
            f"sleep 600.{m}2 & setsid sleep 600.{m}2 & (setsid bash -c 'sleep 600.{m}2' &); "
            f"bash -c 'sleep 600.{m}2 & wait' & sleep 600.{m}2",
            "timeout_s = 1",
            "stage_timeout",
        ),
        (
            "memory hog",
            "python3 -c 'x = bytearray(4 << 30); print(len(x))'",
            "address_space_mb = 512",
            "stage_failed",
        ),
        (
            "SIGTERM ignorer",
            f"trap '' TERM; sleep 600.{m}4; sleep 600.{m}4",
            "timeout_s = 1",
            "stage_timeout",
        ),
        (
            "100 MB of output",
            "head -c 100000000 /dev/zero | tr '\\0' x; exit 1",
            "timeout_s = 60",
            "stage_failed",
        ),
    ]


def stage_torture(bin_dir, work_root, rng):
    row = {"phase": "stage torture", "cycles": 0, "appends_checked": 0, "lost": 0,
           "duplicated": 0, "failures": []}
    marker = f"{rng.randrange(10**6):06d}"
    rss_peak = 0
    for i, (name, body, extra, reason) in enumerate(scenarios(marker)):
        work = os.path.join(work_root, f"stage{i}")
        os.makedirs(work)
        d = Daemon(bin_dir, work, config=config(work, body, extra))
        d.start()
        try:
            ended = wait_until(f"{name}: generate ends", lambda: generate_done(d))
        except TimeoutError as e:
            row["failures"].append(str(e))
            d.kill9()
            continue
        rss_peak = max(rss_peak, rss_kib(d.pid))
        if ended["event_type"] != "stage_end" or ended["error"] != reason:
            row["failures"].append(f"{name}: ended {ended['event_type']} {ended['error']}, not {reason}")
        # stage_output follows the stage_end that ended the wait above: wait for it too.
        if name == "100 MB of output":
            try:
                wait_until(f"{name}: output journaled", lambda: dropped_output(d, 99_000_000), 10)
            except TimeoutError:
                row["failures"].append(f"{name}: no stage_output event counting the dropped bytes")
        try:
            wait_until(f"{name}: processes gone", lambda: not marker_processes(marker), 10)
        except TimeoutError:
            row["failures"].append(f"{name}: left {marker_processes(marker)}")
        if stage_cgroups(d):
            row["failures"].append(f"{name}: cgroups left {stage_cgroups(d)}")
        if not call(d.socket, "PING", {}).get("pong"):
            row["failures"].append(f"{name}: daemon not answering")
        d.stop()
        row["cycles"] += 1
    row["rss_after_kib"] = rss_peak

    # kill -9 of the daemon while an escaping stage runs: after the restart nothing is left.
    work = os.path.join(work_root, "stage-kill9")
    os.makedirs(work)
    body = (
        f"sleep 600.{marker}9 & setsid sleep 600.{marker}9 & "
        f"(setsid bash -c 'sleep 600.{marker}9' &); sleep 600.{marker}9"
    )
    d = Daemon(bin_dir, work, config=config(work, body, "timeout_s = 60"))
    d.start()
    try:
        wait_until("escapers running", lambda: len(marker_processes(f"600.{marker}9")) >= 4, 30)
        d.kill9()
        d.start()
        wait_until(
            "escapers gone after restart",
            lambda: not marker_processes(f"600.{marker}9"),
            10,
        )
    except TimeoutError as e:
        row["failures"].append(f"kill -9 during a stage: {e}: left {marker_processes(marker)}")
    if stage_cgroups(d):
        row["failures"].append(f"kill -9 during a stage: cgroups left {stage_cgroups(d)}")
    if d.proc.poll() is None:
        row["fds_after"] = fd_count(d.pid)
        d.stop()
    row["cycles"] += 1
    # Whatever a failure left behind must not outlive the torture run.
    for pid in marker_processes(marker):
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    return row
