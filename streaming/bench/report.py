"""The ``sentinel bench`` report: machine description, ratios, targets, table.

The same rows print to the terminal and go into ``docs/benchmarks.md`` (``--markdown``).
"""

from __future__ import annotations

import math
import os
import platform
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import psutil

# (label, value, format, target text, check(value) -> bool, or None when not graded)
Spec = tuple[str, Any, str, str, Any]


def machine() -> dict[str, Any]:
    """nproc, CPU model, RAM, load when the bench started, software versions."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), model)
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for dist in ("faust-streaming", "aiokafka", "onnxruntime", "numpy", "orjson", "uvloop"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {"nproc": os.cpu_count(), "cpu_model": model,
            "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "platform": platform.platform(),
            "versions": versions, "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


def _div(a: Any, b: Any) -> float | None:
    if not isinstance(a, int | float) or not isinstance(b, int | float) or not b or math.isnan(b):
        return None
    return float(a) / float(b)


def ratios(r: dict[str, Any]) -> dict[str, float | None]:
    """Per-tick cost vs the inference bound, speed-ups vs naive, worker vs trivial agent."""
    e2e = r.get("end_to_end_ticks_per_s")
    return {
        # cost per tick end to end / cost per window in onnxruntime alone (>= 1; target <= 1.3)
        "end_to_end_cost_vs_inference_bound": _div(r.get("inference_bound_windows_per_s"), e2e),
        "speedup_vs_naive_predict": _div(e2e, r.get("naive_predict_ticks_per_s")),
        "speedup_vs_onnx_unbatched": _div(e2e, r.get("naive_onnx_unbatched_ticks_per_s")),
        "single_tick_vs_trivial_agent": _div(r.get("single_tick_messages_per_s"),
                                             r.get("trivial_agent_events_per_s")),
        "single_tick_vs_stock_trivial_agent": _div(r.get("single_tick_messages_per_s"),
                                                   r.get("trivial_agent_stock_events_per_s")),
        "feedback_vs_trivial_agent": _div(r.get("feedback_messages_per_s"),
                                          r.get("trivial_agent_feedback_events_per_s")),
    }


def _p99_at(r: dict[str, Any], rate: str) -> float | None:
    entry = r.get("latency_ms", {}).get(rate)
    return entry.get("p99") if entry else None


def rows(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(metric, value, target, verdict) rows of the summary table."""
    ratio = r.get("ratios", {})
    detector = r.get("detector_us_per_tick") or {}
    spec: list[Spec] = [
        ("bundled ticks, end to end (ticks/s)", r.get("end_to_end_ticks_per_s"), ",.0f", ">= 12,000",
         lambda v: v >= 12_000),  # issue 14
        ("single-tick messages, end to end (ticks/s)", r.get("single_tick_messages_per_s"), ",.0f",
         ">= 0.8x trivial", None),
        ("trivial Faust agent, same topic (events/s)", r.get("trivial_agent_events_per_s"), ",.0f", "", None),
        ("single-tick / trivial agent", ratio.get("single_tick_vs_trivial_agent"), ".2f", ">= 0.80",
         lambda v: v >= 0.8),
        ("trivial agent, stock Faust (events/s)", r.get("trivial_agent_stock_events_per_s"),
         ",.0f", "", None),
        ("single-tick / stock trivial agent", ratio.get("single_tick_vs_stock_trivial_agent"), ".2f", "",
         None),
        ("feedback, end to end (messages/s)", r.get("feedback_messages_per_s"), ",.0f", ">= 3,000",
         lambda v: v >= 3000),  # issue 13
        ("trivial agent, feedback topic (events/s)", r.get("trivial_agent_feedback_events_per_s"), ",.0f",
         "", None),
        ("inference bound, forecast (windows/s)", r.get("inference_bound_windows_per_s"), ",.0f", "", None),
        ("inference bound, sentiment (messages/s)", r.get("sentiment_messages_per_s"), ",.0f", "", None),
        ("end-to-end cost / inference bound", ratio.get("end_to_end_cost_vs_inference_bound"), ".2f",
         "<= 1.3", lambda v: v <= 1.3),
        ("naive Keras predict per tick (ticks/s)", r.get("naive_predict_ticks_per_s"), ",.1f", "", None),
        ("naive onnxruntime per tick (ticks/s)", r.get("naive_onnx_unbatched_ticks_per_s"), ",.0f", "", None),
        ("speed-up vs Keras predict", ratio.get("speedup_vs_naive_predict"), ",.0f", ">= 500",
         lambda v: v >= 500),
        ("worker peak RSS (MB)", r.get("peak_rss_mb"), ",.0f", "<= 400", lambda v: v <= 400),
        ("detector, price series (us per symbol-tick)", detector.get("price"), ".1f", "<= 20",
         lambda v: v <= 20),
        ("detector, volume series (us per symbol-tick)", detector.get("volume"), ".1f", "<= 20",
         lambda v: v <= 20),
    ]
    return [_row(*s) for s in spec + _run_rows(r)]


def _run_rows(r: dict[str, Any]) -> list[Spec]:
    """Rows that depend on which runs happened: RSS at 1,000 symbols, CPU, latency, workers."""
    spec: list[Spec] = []
    lat_run = r.get("runs", {}).get("latency")
    if lat_run:
        spec.append((f"worker peak RSS (MB), latency run, {lat_run['symbols']:,} symbols",
                     lat_run.get("peak_rss_mb"), ",.0f", "<= 400", lambda v: v <= 400))
    for name, run in r.get("runs", {}).items():
        if "cpu_s" in run and "seconds" in run:
            spec.append((f"worker CPU s / wall s, {name} run", f"{run['cpu_s']:.1f} / {run['seconds']:.1f}",
                         "s", "", None))
    for rate, entry in sorted(r.get("latency_ms", {}).items(), key=lambda kv: float(kv[0])):
        p99, graded = entry["p99"], float(rate) == 2000
        text = "n/a" if math.isnan(p99) else "/".join(f"{entry[k]:.0f}" for k in ("p50", "p95", "p99", "max"))
        check = (lambda _v, p=p99: p <= 50) if graded and not math.isnan(p99) else None
        spec.append((f"latency ms p50/p95/p99/max @ {float(rate):,.0f}/s offered "
                     f"({entry['achieved_per_s']:,.0f}/s sent)", text, "s", "p99 <= 50" if graded else "",
                     check))
    for n, entry in sorted(r.get("workers", {}).items()):
        spec.append((f"bundled ticks/s, {n} worker(s) in one group", entry.get("per_s"), ",.0f", "", None))
    return spec


def _row(label: str, value: Any, fmt: str, target: str, check: Any) -> tuple[str, str, str, str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return label, "n/a", target, ""
    shown = value if isinstance(value, str) else format(value, fmt)
    verdict = ""
    if check is not None:
        out = check(value)
        verdict = out if isinstance(out, str) else ("yes" if out else "NO")
    return label, shown, target, verdict


def render(r: dict[str, Any], markdown: bool = False) -> str:
    table = rows(r)
    head = ("metric", "value", "target", "met")
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|---|---:|---|---|"]
        lines += ["| " + " | ".join(row) + " |" for row in table]
        return "\n".join(lines)
    widths = [max(len(str(x[i])) for x in [head, *table]) for i in range(4)]
    fmt = "  ".join(f"{{:{'>' if i == 1 else '<'}{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths))]
                     + [fmt.format(*row) for row in table])
