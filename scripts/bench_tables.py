"""Render the recorded-run table of docs/benchmarks.md from committed ``sentinel bench --json`` files.

    python scripts/bench_tables.py docs/results/bench-AFTER.json [BEFORE.json ...]
    python scripts/bench_tables.py --sizing docs/results/bench-AFTER.json
    python scripts/bench_tables.py --ab RUN.json [RUN.json ...]

The first file is the shipped code's run (its rows, targets and verdicts); every further
file adds a column of the same rows (an earlier commit, or a setting switched off), matched
by the row's label, so a comparison is read from runs made back to back on one machine.
"""

from __future__ import annotations

import json
import math
import re
import statistics
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


def sizing(result: dict, target_ticks: float = 100_000, headroom: float = 0.7) -> None:
    """Workers and partitions for ``target_ticks`` from the run's measured per-worker figures.

    A linear extrapolation: it assumes each worker gets a core of its own and the brokers keep
    up. Unpinned, the figure is ticks per worker CPU-second (2 cores shared by broker, load
    generator and workers); from a ``--pin`` run, also the wall-clock rate of one worker alone
    on its core, with the broker on the other, which is what one more core buys.
    """
    runs = result.get("runs", {})
    options = result.get("options", {})
    bundle = options.get("bundle", 100)
    pinned = bool(options.get("pin"))
    if pinned:
        broker, _, workers_cpus = options["pin"].partition("/")
        print(f"Pinned run: broker, load generator and output reader on CPU {broker}, every worker "
              f"and trivial agent on CPU {workers_cpus}.\n")
    basis = "ticks/s of one worker on its own core" if pinned else "ticks per worker CPU-second"
    print(f"| input form | ticks per worker CPU-second | {basis} (basis) | workers for "
          f"{target_ticks:,.0f} ticks/s at {headroom:.0%} | partitions |")
    print("|---|---:|---:|---:|---:|")
    for name, label in (("single_tick", "single-tick messages"), ("bundled", f"bundles of {bundle}")):
        run = runs.get(name)
        if not run or not run.get("cpu_s"):
            continue
        per_cpu_s = run["records"] / run["cpu_s"]  # forecasts (one per tick) in the measured interval
        rate = run["per_s"] if pinned else per_cpu_s
        workers = math.ceil(target_ticks / (rate * headroom))
        partitions = 2 ** math.ceil(math.log2(max(workers, 1) * 2))  # room to add workers without re-keying
        print(f"| {label} | {per_cpu_s:,.0f} | {rate:,.0f} | {workers} | {partitions} |")
    group = {n: r for n, r in result.get("workers", {}).items() if r.get("per_s")}
    if len(group) > 1:
        cells = ", ".join(f"{n} worker(s) {r['per_s']:,.0f} ticks/s" for n, r in sorted(group.items()))
        where = " sharing one core" if pinned else ""
        print(f"\nOne group, bundles, started before the input{where}: {cells}.")
    lat = runs.get("latency", {})
    if lat.get("peak_rss_mb"):
        print(f"\nMemory measured: peak RSS {lat['peak_rss_mb']:.0f} MB for one worker with "
              f"{lat['symbols']:,} symbols (latency run).")


def _pause(stats: dict, family: str, label: str) -> str:
    s = stats.get(f"{family}/{label}")
    return f"{s['mean'] * 1000:.1f} ({s['count']:.0f})" if s and s["count"] else "-"


def ab(paths: list[Path]) -> None:
    """Latency-only A/B runs, one row each, then the median p99 per setting and rate."""
    results = [json.loads(p.read_text()) for p in paths]
    rates = sorted({r for res in results for r in res["latency_ms"]}, key=float)
    print("| run | settings | " + " | ".join(f"p50/p95/p99/max ms @ {float(r):,.0f}/s" for r in rates)
          + " | checkpoint, mean ms (n) | full GC pause, mean ms (n) | young GC pauses, s in all"
          + " | worker CPU s |")
    print("|---|---|" + "---|" * len(rates) + "---|---|---|---|")
    p99: dict[tuple[str, str], list[float]] = {}
    for path, res in zip(paths, results, strict=True):
        run = res["runs"]["latency"]
        stats = run.get("worker_batches", {})
        cells = []
        for r in rates:
            lat = res["latency_ms"].get(r)
            cells.append("/".join(f"{lat[k]:.0f}" for k in ("p50", "p95", "p99", "max")) if lat else "-")
            if lat:
                p99.setdefault((res.get("settings_note", "defaults"), r), []).append(lat["p99"])
        young = sum(stats[k]["mean"] * stats[k]["count"] for k in stats
                    if k in ("sentinel_gc_pause_seconds/0", "sentinel_gc_pause_seconds/1"))
        print(f"| {path.stem} | {res.get('settings_note', 'defaults')} | " + " | ".join(cells)
              + f" | {_pause(stats, 'sentinel_checkpoint_seconds', '')}"
              + f" | {_pause(stats, 'sentinel_gc_pause_seconds', '2')} | {young:.2f} | {run['cpu_s']:.1f} |")
    print()
    for (note, r), values in sorted(p99.items(), key=lambda kv: (float(kv[0][1]), kv[0][0])):
        print(f"- {note}, {float(r):,.0f}/s: p99 median **{statistics.median(values):.0f} ms** "
              f"over {len(values)} runs ({', '.join(f'{v:.0f}' for v in values)})")


def main() -> int:
    if sys.argv[1] == "--sizing":
        sizing(json.loads(Path(sys.argv[2]).read_text()))
        return 0
    if sys.argv[1] == "--ab":
        ab([Path(p) for p in sys.argv[2:]])
        return 0
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
