"""The report page: one self-contained HTML file with inline SVG charts (no JavaScript
libraries, no matplotlib: serving installs numpy and the stdlib only, and the page must open
from disk or a mail attachment with nothing else)."""

from __future__ import annotations

import html
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SEVERITY_COLORS = {"low": "#e0b000", "medium": "#f08c00", "high": "#e03131", "critical": "#7a0000"}
SEVERITY_RADIUS = {"low": 3.5, "medium": 4.5, "high": 5.5, "critical": 7.0}
PRIORITY_COLORS = {"P1": "#c92a2a", "P2": "#f08c00", "P3": "#868e96"}
WIDTH, PRICE_HEIGHT, ESC_HEIGHT = 960, 210, 180
MARGIN = (12, 14, 26, 64)  # top, right, bottom, left
MAX_POINTS = 1500  # per line: enough for 5-minute bars over weeks, small files
GAP_FACTOR = 8.0  # a time step this many times the median breaks the line (the demo pauses ~15x at closes)

Record = dict[str, Any]


@dataclass
class ReportData:
    """Deduplicated records from the forecast and alert topics (or files)."""

    forecasts: list[Record] = field(default_factory=list)
    anomalies: list[Record] = field(default_factory=list)
    escalations: list[Record] = field(default_factory=list)
    source: str = ""


@dataclass(frozen=True)
class Scale:
    lo: float
    hi: float
    start: float
    length: float

    def __call__(self, v: float) -> float:
        span = self.hi - self.lo or 1.0
        return self.start + (v - self.lo) / span * self.length


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _when(ts_ms: float, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime(fmt)


def _thin(points: Sequence[tuple[float, float]], limit: int = MAX_POINTS) -> list[tuple[float, float]]:
    """Every k-th point (and the last), so long replays stay small files."""
    if len(points) <= limit:
        return list(points)
    step = math.ceil(len(points) / limit)
    return [*points[::step], points[-1]]


def _path(points: Sequence[tuple[float, float]], x: Scale, y: Scale, gap_ms: float) -> str:
    """An SVG path; a time gap wider than ``gap_ms`` starts a new segment instead of a slope."""
    parts, last_t = [], None
    for t, v in points:
        cmd = "M" if last_t is None or t - last_t > gap_ms else "L"
        parts.append(f"{cmd}{x(t):.1f},{y(v):.1f}")
        last_t = t
    return "".join(parts)


def _median_step(ts: Sequence[float]) -> float:
    steps = sorted(b - a for a, b in zip(ts, ts[1:], strict=False) if b > a)
    return steps[len(steps) // 2] if steps else 1.0


def _axes(x: Scale, y: Scale, height: int) -> str:
    """Three price ticks on the left, four time ticks along the bottom, light grid lines."""
    top, right, bottom, left = MARGIN
    out = []
    for i in range(3):
        v = y.lo + (y.hi - y.lo) * i / 2
        py = y(v)
        out.append(f'<line class="grid" x1="{left}" x2="{WIDTH - right}" y1="{py:.1f}" y2="{py:.1f}"/>'
                   f'<text x="{left - 6}" y="{py + 4:.1f}" text-anchor="end">{v:,.2f}</text>')
    for i in range(4):
        t = x.lo + (x.hi - x.lo) * i / 3
        anchor = ("start", "middle", "middle", "end")[i]
        out.append(f'<text x="{x(t):.1f}" y="{height - 8}" text-anchor="{anchor}">'
                   f'{_when(t, "%m-%d %H:%M:%S")}</text>')
    return "".join(out)


def symbol_chart(symbol: str, forecasts: list[Record], anomalies: list[Record]) -> str:
    """Price (line), the forecast made one tick earlier (dashed) and alert marks by severity."""
    rows = sorted(forecasts, key=lambda r: r["ts"])
    prices = [(float(r["ts"]), float(r["price"])) for r in rows]
    # forecast made at tick i is for tick i+1: draw it there, against the price it predicted
    predicted = [(float(b["ts"]), float(a["forecast"])) for a, b in zip(rows, rows[1:], strict=False)]
    marks = sorted(anomalies, key=lambda r: r["ts"])
    ts = [p[0] for p in prices] + [float(a["ts"]) for a in marks]
    vs = [p[1] for p in prices + predicted] + [float(a["price"]) for a in marks]
    if not ts:
        return ""
    top, right, bottom, left = MARGIN
    pad = (max(vs) - min(vs)) * 0.06 or max(vs) * 0.01 or 1.0
    x = Scale(min(ts), max(ts), left, WIDTH - left - right)
    y = Scale(min(vs) - pad, max(vs) + pad, PRICE_HEIGHT - bottom, -(PRICE_HEIGHT - top - bottom))
    gap = _median_step([p[0] for p in prices]) * GAP_FACTOR
    counts = Counter(a["severity"] for a in marks)
    summary = ", ".join(f"{counts[s]} {s}" for s in SEVERITY_COLORS if counts[s]) or "no alerts"
    dots = "".join(
        f'<circle class="alert-mark sev-{_esc(a["severity"])}" '
        f'cx="{x(a["ts"]):.1f}" cy="{y(a["price"]):.1f}" '
        f'r="{SEVERITY_RADIUS.get(a["severity"], 4)}" fill="{SEVERITY_COLORS.get(a["severity"], "#000")}">'
        f'<title>{_esc(a["severity"].upper())} {_esc(symbol)} {_when(a["ts"])}Z: price {a["price"]:.4f}, '
        f'expected {a["expected"]:.4f}, score {a["score"]:.1f} (threshold {a["threshold"]:.1f})</title>'
        f'</circle>' for a in marks)
    return (
        f'<section class="chart" data-symbol="{_esc(symbol)}"><h3>{_esc(symbol)} '
        f'<small>{len(prices):,} forecasts, {len(marks)} alerts ({summary})</small></h3>'
        f'<svg viewBox="0 0 {WIDTH} {PRICE_HEIGHT}" width="{WIDTH}" height="{PRICE_HEIGHT}" role="img" '
        f'aria-label="{_esc(symbol)} price, forecast and alerts">{_axes(x, y, PRICE_HEIGHT)}'
        f'<path class="price" d="{_path(_thin(prices), x, y, gap)}"/>'
        f'<path class="forecast" d="{_path(_thin(predicted), x, y, gap)}"/>{dots}</svg></section>')


def escalation_chart(escalations: list[Record], buckets: int = 60) -> str:
    """Escalations per time bucket, stacked by priority (P1 on top)."""
    if not escalations:
        return '<p class="empty">No escalations.</p>'
    ts = [float(e["ts"]) for e in escalations]
    lo, hi = min(ts), max(ts) + 1
    width_ms = max((hi - lo) / buckets, 1000.0)
    n = int((hi - lo) // width_ms) + 1
    grid: dict[int, Counter[str]] = defaultdict(Counter)
    for e in escalations:
        grid[int((e["ts"] - lo) // width_ms)][e["priority"]] += 1
    top, right, bottom, left = MARGIN
    peak = max(sum(c.values()) for c in grid.values())
    x = Scale(lo, lo + n * width_ms, left, WIDTH - left - right)
    y = Scale(0, peak, ESC_HEIGHT - bottom, -(ESC_HEIGHT - top - bottom))
    bar_w = max(x(lo + width_ms) - x(lo) - 1, 1.0)
    bars = []
    for i, counts in sorted(grid.items()):
        base = 0
        for prio in ("P3", "P2", "P1"):
            if counts[prio]:
                y0, y1 = y(base), y(base + counts[prio])
                bars.append(f'<rect class="esc prio-{prio}" x="{x(lo + i * width_ms):.1f}" y="{y1:.1f}" '
                            f'width="{bar_w:.1f}" height="{y0 - y1:.1f}" fill="{PRIORITY_COLORS[prio]}">'
                            f'<title>{counts[prio]} {prio} from {_when(lo + i * width_ms)}Z</title></rect>')
                base += counts[prio]
    return (f'<svg viewBox="0 0 {WIDTH} {ESC_HEIGHT}" width="{WIDTH}" height="{ESC_HEIGHT}" role="img" '
            f'aria-label="escalations over time">{_axes(x, y, ESC_HEIGHT)}{"".join(bars)}</svg>')


def _legend() -> str:
    sev = "".join(f'<span><i style="background:{c}"></i>{s}</span>' for s, c in SEVERITY_COLORS.items())
    pri = "".join(f'<span><i style="background:{c}"></i>{p}</span>' for p, c in PRIORITY_COLORS.items())
    return (f'<p class="legend"><span><i class="line"></i>price</span><span><i class="dash"></i>'
            f'forecast (made one tick earlier)</span>{sev} &nbsp; escalations: {pri}</p>')


def _alert_table(anomalies: list[Record], limit: int = 30) -> str:
    rows = "".join(
        f'<tr class="sev-{_esc(a["severity"])}"><td>{_when(a["ts"])}</td><td>{_esc(a["symbol"])}</td>'
        f'<td>{_esc(a["severity"])}</td><td>{a["price"]:.4f}</td><td>{a["expected"]:.4f}</td>'
        f'<td>{a["score"]:.1f}</td></tr>'
        for a in sorted(anomalies, key=lambda r: (-r["score"], r["ts"]))[:limit])
    return ('<table><tr><th>time (UTC)</th><th>symbol</th><th>severity</th><th>price</th>'
            f'<th>expected</th><th>score (σ)</th></tr>{rows}</table>')


def _escalation_table(escalations: list[Record], limit: int = 15) -> str:
    rows = "".join(
        f'<tr><td>{_when(e["ts"])}</td><td>{_esc(e["priority"])}</td><td>{e["p_negative"]:.3f}</td>'
        f'<td>{_esc(str(e.get("text_excerpt", ""))[:200])}</td></tr>'
        for e in sorted(escalations, key=lambda r: (r["priority"], -r["ts"]))[:limit])
    return ('<table><tr><th>time (UTC)</th><th>priority</th><th>p_negative</th><th>excerpt</th></tr>'
            f'{rows}</table>')


CSS = """body{font:14px system-ui,sans-serif;margin:24px;color:#212529;max-width:1000px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 6px}h3{font-size:14px;margin:14px 0 2px}
small,.meta{color:#868e96;font-weight:normal}svg{display:block;background:#fff;border:1px solid #e9ecef}
svg text{font-size:11px;fill:#868e96}.grid{stroke:#f1f3f5}.price{fill:none;stroke:#1c7ed6;stroke-width:1.3}
.forecast{fill:none;stroke:#adb5bd;stroke-width:1;stroke-dasharray:3 2}.alert-mark{stroke:#fff;stroke-width:1}
.legend span{margin-right:12px;white-space:nowrap}.legend i{display:inline-block;width:10px;height:10px;
border-radius:50%;margin-right:4px;vertical-align:middle}.legend i.line{border-radius:0;height:2px;
background:#1c7ed6}.legend i.dash{border-radius:0;height:0;border-top:2px dashed #adb5bd}
table{border-collapse:collapse;font-size:12px;margin-top:6px}td,th{padding:2px 8px;text-align:left;
border-bottom:1px solid #f1f3f5}.kpi span{display:inline-block;margin-right:22px}.kpi b{font-size:20px}"""

# Runs in the browser only to record that the page rendered (the browser test reads it back).
SCRIPT = """document.body.dataset.rendered=document.querySelectorAll('.alert-mark').length;
var c=document.querySelector('svg');
document.body.dataset.chartWidth=c?Math.round(c.getBoundingClientRect().width):0;"""


def build_report(data: ReportData, max_symbols: int = 12, now_ms: float | None = None) -> str:
    """The whole page: key figures, one chart per symbol (most alerts first), escalations, tables."""
    by_symbol: dict[str, list[Record]] = defaultdict(list)
    alerts: dict[str, list[Record]] = defaultdict(list)
    for r in data.forecasts:
        by_symbol[r["symbol"]].append(r)
    for a in data.anomalies:
        alerts[a["symbol"]].append(a)
    symbols = sorted(set(by_symbol) | set(alerts), key=lambda s: (-len(alerts[s]), s))
    charts = "".join(symbol_chart(s, by_symbol[s], alerts[s]) for s in symbols[:max_symbols])
    more = len(symbols) - max_symbols
    sev = Counter(a["severity"] for a in data.anomalies)
    pri = Counter(e["priority"] for e in data.escalations)
    generated = _when(now_ms if now_ms is not None else datetime.now(UTC).timestamp() * 1000)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>stream-sentinel report</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>{CSS}</style></head>
<body data-rendered="no">
<h1>stream-sentinel report</h1>
<p class="meta">generated {generated} UTC from {_esc(data.source)}</p>
<p class="kpi"><span><b>{len(symbols)}</b> symbols</span><span><b>{len(data.forecasts):,}</b> forecasts</span>
<span><b id="n-alerts">{len(data.anomalies)}</b> price alerts
({", ".join(f"{sev[s]} {s}" for s in SEVERITY_COLORS if sev[s]) or "none"})</span>
<span><b id="n-escalations">{len(data.escalations)}</b> escalations
({", ".join(f"{pri[p]} {p}" for p in ("P1", "P2", "P3") if pri[p]) or "none"})</span></p>
{_legend()}
<h2>Prices, forecasts and alerts</h2>
{charts or '<p class="empty">No forecasts or price alerts.</p>'}
{f'<p class="meta">{more} more symbols not drawn (--max-symbols).</p>' if more > 0 else ''}
<h2>Escalations over time</h2>
{escalation_chart(data.escalations)}
<h2>Strongest price alerts</h2>
{_alert_table(data.anomalies) if data.anomalies else '<p class="empty">No price alerts.</p>'}
<h2>Escalations (most urgent first)</h2>
{_escalation_table(data.escalations) if data.escalations else '<p class="empty">No escalations.</p>'}
<script>{SCRIPT}</script>
</body></html>
"""
