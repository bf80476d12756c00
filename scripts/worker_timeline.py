"""Where a restart's time goes, from a soak's logs: per worker process and per log-cleaner pass.

    PYTHONPATH=. .venv/bin/python scripts/worker_timeline.py /tmp/sentinel-soak-XXXX --json F

A soak's work dir holds one worker log (every process appends to it) and the broker's log.
Per worker process: seconds from its first log line to joining the group, the changelog
restore, and ready (the interpreter's start, imports and model loading come before the first
line and are not in the log). Per log-cleaner pass over a state-changelog partition: its
duration. Not in CI.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_meta import emit, run_meta  # noqa: E402

LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] \[(\d+)\] \[\w+\] (.*)")
STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")
BEGIN = re.compile(r"Beginning cleaning of log (\S+)")
SWAP = re.compile(r"Swapping in cleaned segment .* in log Log\(dir=\S*/(\S+?),")
EVENTS = {"joined": "Joined group", "restoring": "Restoring state", "restored": "Recovery complete",
          "ready": "[^Worker]: Ready"}


def _stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f")


def worker_processes(log: Path) -> list[dict[str, Any]]:
    procs: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for line in log.read_text(errors="replace").splitlines():
        m = LINE.match(line)
        if not m:
            continue
        at, pid, msg = _stamp(m.group(1)), m.group(2), m.group(3)
        if pid not in procs:
            procs[pid] = {"first": at, "last": at}
            order.append(pid)
        procs[pid]["last"] = at
        for name, marker in EVENTS.items():
            if marker in msg and name not in procs[pid]:
                procs[pid][name] = at
    out = []
    for pid in order:
        p = procs[pid]
        row: dict[str, Any] = {"pid": int(pid), "first_line": p["first"].isoformat()}
        for name in EVENTS:
            if name in p:
                row[f"{name}_s"] = round((p[name] - p["first"]).total_seconds(), 1)
        if "restoring" in p and "restored" in p:
            row["restore_s"] = round((p["restored"] - p["restoring"]).total_seconds(), 1)
        out.append(row)
    return out


def cleaner_passes(log: Path, topic_part: str = "symbol-state-changelog") -> list[float]:
    """Seconds from "Beginning cleaning" to "Swapping in cleaned segment" of each changelog partition."""
    begun: dict[str, datetime] = {}
    passes: list[float] = []
    for line in log.read_text(errors="replace").splitlines():
        m = STAMP.match(line)
        if not m or topic_part not in line:
            continue
        at = _stamp(m.group(1))
        if b := BEGIN.search(line):
            begun[b.group(1)] = at
        elif (w := SWAP.search(line)) and w.group(1) in begun:
            passes.append(round((at - begun.pop(w.group(1))).total_seconds(), 3))
    return passes


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("work_dir", type=Path)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    logs = sorted(args.work_dir.glob("worker-*.log"))
    if not logs:
        print(f"no worker log in {args.work_dir}", file=sys.stderr)
        return 1
    passes = cleaner_passes(args.work_dir / "kafka" / "broker.log")
    report = {"meta": run_meta("scripts/worker_timeline.py", sys.argv[1:]),
              "work_dir": str(args.work_dir), "worker_processes": worker_processes(logs[0]),
              "cleaner_passes": len(passes),
              "cleaner_pass_s": {"median": sorted(passes)[len(passes) // 2] if passes else None,
                                 "max": max(passes, default=None)}}
    emit(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
