"""The report builder: records in, one self-contained HTML page out (no browser here; the
browser check is tests/e2e/test_report_browser.py)."""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from streaming.tools.report import classify, read_files, write_report
from streaming.tools.report_html import ReportData, build_report

T0 = 1_760_000_000_000


def forecasts(symbol: str, n: int, start: float = 100.0) -> list[dict[str, object]]:
    return [{"symbol": symbol, "ts": T0 + i * 1000, "price": start + i * 0.1,
             "forecast": start + i * 0.1 + 0.05, "model": "price-forecast@1"} for i in range(n)]


def anomaly(symbol: str, i: int, severity: str, score: float) -> dict[str, object]:
    return {"alert_id": f"{symbol}:{T0 + i * 1000}", "kind": "price", "symbol": symbol, "ts": T0 + i * 1000,
            "price": 99.0, "expected": 100.0, "residual": -0.01, "score": score, "threshold": 6.0,
            "severity": severity, "model": "price-forecast@1"}


def escalation(i: int, priority: str, text: str = "broken zipper, refund") -> dict[str, object]:
    return {"alert_id": f"fb:r-{i}", "id": f"r-{i}", "ts": T0 + i * 5000, "p_negative": 0.97,
            "priority": priority, "reason": "x", "text_excerpt": text, "channel": "review",
            "customer_id": None, "model": "feedback-sentiment@1"}


def sample() -> ReportData:
    return classify([*forecasts("SPY", 300), *forecasts("AAPL", 200, 250.0),
                     anomaly("SPY", 120, "critical", 20.4), anomaly("SPY", 121, "low", 6.2),
                     anomaly("AAPL", 50, "medium", 8.1),
                     escalation(1, "P1"), escalation(2, "P2"), escalation(30, "P3")], "test")


def test_one_chart_per_symbol_with_every_alert_marked_by_severity() -> None:
    page = build_report(sample(), now_ms=T0)
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert re.findall(r'data-symbol="(\w+)"', page) == ["SPY", "AAPL"]  # most alerts first
    marks = re.findall(r'class="alert-mark sev-(\w+)"', page)
    assert sorted(marks) == ["critical", "low", "medium"]
    assert page.count('class="price"') == 2 and page.count('class="forecast"') == 2
    assert len(re.findall(r'<rect class="esc prio-(P\d)"', page)) == 3
    assert '<b id="n-alerts">3</b>' in page and '<b id="n-escalations">3</b>' in page
    assert "<script src" not in page and "http" not in page.split("<body")[0]  # self-contained


def test_text_from_the_stream_is_escaped() -> None:
    data = classify([escalation(1, "P1", "<script>alert(1)</script> & more")], "x<y")
    page = build_report(data, now_ms=T0)
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page and "x&lt;y" in page


def test_long_series_are_thinned_and_session_gaps_break_the_line() -> None:
    rows = forecasts("QQQ", 5000)
    rows += [{**r, "ts": r["ts"] + 10_000_000} for r in forecasts("QQQ", 10, 200.0)]  # after a "close"
    for i, r in enumerate(rows):
        r["ts"] = T0 + i * 1000 if i < 5000 else T0 + 10_000_000 + i * 1000
    page = build_report(classify(rows), now_ms=T0)
    price_path = re.search(r'class="price" d="([^"]+)"', page)
    assert price_path is not None
    assert price_path.group(1).count("L") < 1600  # thinned to about MAX_POINTS
    assert price_path.group(1).count("M") == 2  # the gap starts a new segment


def test_repeats_and_other_records_are_dropped() -> None:
    a = anomaly("SPY", 1, "high", 11.0)
    data = classify([a, dict(a), {"alert_id": "SPY:1:volume", "kind": "volume", "severity": "low"},
                     {"id": "s", "label": "negative"}, "not a dict",
                     *forecasts("SPY", 2), *forecasts("SPY", 2)])
    assert len(data.anomalies) == 1 and len(data.forecasts) == 2 and not data.escalations


def test_empty_input_still_writes_a_page(tmp_path: Path) -> None:
    out = write_report(tmp_path / "r" / "report.html", ReportData(source="nothing"))
    page = out.read_text()
    assert "No forecasts or price alerts." in page and "No escalations." in page


def test_reads_alerts_tail_json_output_with_log_lines_mixed_in(tmp_path: Path) -> None:
    lines = [b"2026-01-01 INFO aiokafka joined group", orjson.dumps(anomaly("SPY", 3, "high", 12.0)),
             b"", orjson.dumps(escalation(4, "P2")), b"{broken json"]
    path = tmp_path / "alerts.jsonl"
    path.write_bytes(b"\n".join(lines))
    data = read_files([path])
    assert len(data.anomalies) == 1 and len(data.escalations) == 1 and str(path) in data.source
