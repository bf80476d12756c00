"""Render the recorded-run table of docs/benchmarks.md from committed ``sentinel bench --json`` files.

    python scripts/bench_tables.py docs/results/bench-AFTER.json [BEFORE.json ...]

The first file is the shipped code's run (its rows, targets and verdicts); every further
file adds a column of the same rows (an earlier commit, or a setting switched off), matched
by the row's label, so a comparison is read from runs made back to back on one machine.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streaming.bench.report import rows  # noqa: E402


def _key(label: str) -> str:
    return re.sub(r" \([\d,]+/s sent\)$", "", label)  # the achieved rate differs run to run


def _title(result: dict, path: Path) -> str:
    m = result.get("machine", {})
    return (f"`{path.name}`: commit `{result.get('commit', '?')}`, {m.get('date', '?')}, "
            f"load average at start {m.get('load_avg_at_start')}")


def main() -> int:
    paths = [Path(p) for p in sys.argv[1:]]
    results = [json.loads(p.read_text()) for p in paths]
    others = [{_key(r[0]): r[1] for r in rows(res)} for res in results[1:]]
    for path, res in zip(paths, results, strict=True):
        print(f"- {_title(res, path)}; settings: {res.get('settings_note', 'defaults')}")
    names = [p.stem for p in paths[1:]]
    print()
    heads = [f"`{paths[0].stem}`", "met", *(f"`{n}`" for n in names)]
    print("| metric | target | " + " | ".join(heads) + " |")
    print("|---|---|---:|---|" + "---:|" * len(names))
    for label, value, target, met in rows(results[0]):
        extra = [o.get(_key(label), "") for o in others]
        print("| " + " | ".join([_key(label), target, value, met, *extra]) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
