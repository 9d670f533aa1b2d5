"""The torture run: see scripts/torture.sh --help."""

import argparse
import json
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from abuse import abuse  # noqa: E402
from client import Daemon  # noqa: E402
from crash import kill9_cycles, torn_and_corrupt  # noqa: E402
from stages import stage_torture  # noqa: E402

PHASES = ["crash", "torn", "abuse", "stages"]


def table(rows):
    cols = ["phase", "cycles", "appends_checked", "lost", "duplicated", "failures",
            "rss_before_kib", "rss_after_kib", "fds_before", "fds_after", "seconds"]
    cells = [[str(len(r[c]) if c == "failures" else r.get(c, "-")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    line = lambda vals: "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths)) + " |"
    print(line(cols))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print(line(row))


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bin-dir", required=True)
    p.add_argument("--work", help="working directory (default: a new temporary one)")
    p.add_argument("--cycles", type=int, default=500, help="kill -9 cycles at most")
    p.add_argument("--crash-seconds", type=float, default=1800, help="time for the kill -9 cycles")
    p.add_argument("--segment-bytes", type=int, default=1 << 20,
                   help="journal segment size in the crash phase")
    p.add_argument("--abuse-rounds", type=int, default=10)
    p.add_argument("--flood", type=int, default=2000, help="connections per flood")
    p.add_argument("--seed", type=int, default=int(time.time()))
    p.add_argument("--phases", default=",".join(PHASES))
    p.add_argument("--json", help="also write the rows to this file")
    a = p.parse_args()
    rng = random.Random(a.seed)
    work = a.work or tempfile.mkdtemp(prefix="heidi-torture-")
    print(f"torture: seed {a.seed}, work {work}", flush=True)
    rows = []
    for phase in a.phases.split(","):
        start = time.monotonic()
        sub = os.path.join(work, phase)
        os.makedirs(sub, exist_ok=True)
        if phase == "crash":
            # Small segments: rotations happen under the kill -9 cycles too.
            segments = f"[journal]\nsegment_max_bytes = {a.segment_bytes}\n"
            daemon = Daemon(a.bin_dir, sub, config=segments)
            row = kill9_cycles(daemon, a.cycles, a.crash_seconds, rng)
        elif phase == "torn":
            row = torn_and_corrupt(Daemon(a.bin_dir, sub), rng)
        elif phase == "abuse":
            row = abuse(Daemon(a.bin_dir, sub), a.abuse_rounds, a.flood, rng)
        elif phase == "stages":
            row = stage_torture(a.bin_dir, sub, rng)
        else:
            sys.exit(f"unknown phase {phase!r} (phases: {', '.join(PHASES)})")
        row["seconds"] = f"{time.monotonic() - start:.0f}"
        rows.append(row)
        print(f"torture: {phase} done in {row['seconds']} s, {len(row['failures'])} failures",
              flush=True)
    print()
    table(rows)
    failures = [f"{r['phase']}: {f}" for r in rows for f in r["failures"]]
    for f in failures:
        print("FAILURE", f)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
