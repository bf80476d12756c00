"""The Grafana dashboard and provisioning: structure, metric names, PromQL syntax (promtool)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from streaming.metrics import Metrics
from tests.ops_sources import (
    DATASOURCES_DIR,
    REPO,
    dashboard_exprs,
    load_dashboard,
    panels,
    rule_exprs,
)

METRIC = re.compile(r"\bsentinel_[a-z0-9_]+")
# Panels the issue asks for, by title, with a metric each must use.
REQUIRED_PANELS = {
    "Throughput by topic": "sentinel_messages_total",
    "End-to-end latency p50 / p95 / p99": "sentinel_end_to_end_latency_seconds_bucket",
    "Inference latency p50 / p95 / p99": "sentinel_inference_seconds_bucket",
    "Consumer lag by topic": "sentinel_consumer_lag",
    "Anomalies by symbol and severity": "sentinel_anomalies_total",
    "Escalations by priority": "sentinel_escalations_total",
    "Dead letters by reason": "sentinel_dead_letters_total",
    "Model versions": "sentinel_model_info",
    "Latest anomalies": "sentinel_last_anomaly_score",
}


def exported_names() -> set[str]:
    """Every sample name the worker's registry can expose (histograms: _bucket/_sum/_count)."""
    names = set()
    for family in Metrics(CollectorRegistry()).registry.collect():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(family.type, [""])
        names |= {family.name + s for s in suffixes}
    return names


def by_title() -> dict[str, dict[str, object]]:
    return {p["title"]: p for p in panels()}


def test_dashboard_identity_and_datasource() -> None:
    dash = load_dashboard()
    assert dash["uid"] == "stream-sentinel" and dash["schemaVersion"] == 39
    (path,) = DATASOURCES_DIR.glob("*.yml")
    (ds,) = yaml.safe_load(path.read_text(encoding="utf-8"))["datasources"]
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": ds["uid"]}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
    assert dash["templating"]["list"] == [], "no variables: every query is self-contained"


def test_panels_are_unique_described_and_laid_out_without_overlap() -> None:
    all_panels = load_dashboard()["panels"]
    ids = [p["id"] for p in all_panels]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for p in all_panels:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = p["title"]
    for p in panels():
        assert p["description"], p["title"]
        assert [t["refId"] for t in p["targets"]] == sorted({t["refId"] for t in p["targets"]})


def test_interval_windows_span_four_scrapes() -> None:
    """``[$__interval]`` follows the zoom; a panel minimum keeps it >= 4 x the 15 s scrape."""
    for p in panels():
        if any("[$__interval]" in t["expr"] for t in p["targets"]):
            assert p.get("interval") in ("1m", "2m", "5m"), p["title"]


@pytest.mark.parametrize("title", sorted(REQUIRED_PANELS))
def test_required_panels(title: str) -> None:
    panel = by_title()[title]
    exprs = " ".join(t["expr"] for t in panel["targets"])
    assert REQUIRED_PANELS[title] in exprs
    if "p50 / p95 / p99" in title:
        for q in ("0.5", "0.95", "0.99"):
            assert f"histogram_quantile({q}," in exprs
    if title in ("Model versions", "Latest anomalies"):
        assert panel["type"] == "table" and all(t["instant"] for t in panel["targets"])
    if title == "Latest anomalies":
        assert "sentinel_last_anomaly_timestamp_seconds" in exprs


def test_every_metric_used_exists_in_streaming_metrics() -> None:
    known = exported_names()
    for e in dashboard_exprs() + rule_exprs():
        unknown = set(METRIC.findall(e.expr)) - known
        assert not unknown, f"{e.id} uses metrics the worker does not export: {unknown}"


def test_docs_describe_every_panel() -> None:
    docs = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    for title in by_title():
        assert f"**{title}**" in docs, f"docs/operations.md does not describe panel {title!r}"


def test_dashboard_promql_parses_with_promtool(promtool: str, tmp_path: Path) -> None:
    """Each dashboard query becomes a recording rule, so promtool's PromQL parser checks it."""
    exprs = dashboard_exprs()
    group = {"name": "dashboard", "rules": [{"record": f"dashboard:expr_{i}", "expr": e.expr}
                                           for i, e in enumerate(exprs)]}
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [group]}), encoding="utf-8")
    proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in proc.stdout
