"""Table of the feedback-only ``sentinel bench`` runs behind the sentiment release choice.

    python scripts/feedback_ab.py docs/results/feedback-lstm32-vs-lstm64

Files are named ``<model>-r<round>.json``; within a round the models ran back to back on one
machine, so compare within a row, not across rows (the shared VM's speed drifts).
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

FIELDS = (("feedback end to end (msgs/s)", "feedback_messages_per_s"),
          ("inference bound, sentiment (msgs/s)", "sentiment_messages_per_s"),
          ("trivial agent, feedback topic (events/s)", "trivial_agent_feedback_events_per_s"))


def main(directory: str) -> int:
    runs: dict[str, dict[str, dict]] = {}
    for path in sorted(Path(directory).glob("*-r*.json")):
        match = re.fullmatch(r"(.+)-r(\d+)\.json", path.name)
        if match:
            runs.setdefault(match[2], {})[match[1]] = json.loads(path.read_text())
    models = sorted({m for r in runs.values() for m in r})
    first = next(iter(next(iter(runs.values())).values()))
    machine = first.get("machine", {})
    print(f"commit `{first.get('commit')}`, {machine.get('date')}, {machine.get('nproc', '?')} CPUs, "
          f"{machine.get('cpu_model', '')}\n")
    for title, key in FIELDS:
        print(f"| {title}: round | " + " | ".join(models) + " |")
        print("|---|" + "---:|" * len(models))
        for rnd in sorted(runs, key=int):
            print(f"| {rnd} | " + " | ".join(f"{runs[rnd][m][key]:,.0f}" if m in runs[rnd] else "-"
                                            for m in models) + " |")
        print("| median | " + " | ".join(
            f"{statistics.median(r[m][key] for r in runs.values() if m in r):,.0f}" for m in models) + " |\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/results/feedback-lstm32-vs-lstm64"))
