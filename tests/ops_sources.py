"""The shipped monitoring files as data: PromQL of the Grafana dashboard and of the alert rules.

Shared by tests/unit/ops (static checks, promtool) and tests/integration/test_prometheus_scrape.py
(evaluation on a real Prometheus), so both look at exactly the same expressions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
RULES_DIR = DEPLOY / "prometheus" / "rules"
RULE_TESTS_DIR = DEPLOY / "prometheus" / "tests"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "stream-sentinel.json"
DATASOURCES_DIR = DEPLOY / "grafana" / "provisioning" / "datasources"
WORKER_JOB = "sentinel-worker"

# Grafana's built-in interval variables, as Grafana would expand them for a short time range
# on a 15 s scrape interval. The integration test passes shorter ones for its 1 s scrapes.
GRAFANA_DEFAULTS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
_GRAFANA_VAR = re.compile(r"\$\{?(__rate_interval|__interval|__range)\}?")


@dataclass(frozen=True)
class Expr:
    source: str  # "dashboard" or "rule"
    name: str    # panel title / refId, or alert name
    expr: str

    @property
    def id(self) -> str:
        return f"{self.source}:{self.name}"


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def panels(dashboard: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every non-row panel, including panels nested in collapsed rows."""
    out = []
    for panel in (dashboard or load_dashboard())["panels"]:
        if panel["type"] == "row":
            out.extend(panel.get("panels", []))
        else:
            out.append(panel)
    return out


def expand_grafana_vars(expr: str, values: dict[str, str] | None = None) -> str:
    values = {**GRAFANA_DEFAULTS, **(values or {})}
    return _GRAFANA_VAR.sub(lambda m: values[m.group(1)], expr)


def dashboard_exprs(values: dict[str, str] | None = None) -> list[Expr]:
    return [Expr("dashboard", f"{p['title']} [{t['refId']}]", expand_grafana_vars(t["expr"], values))
            for p in panels() for t in p.get("targets", []) if t.get("expr")]


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


def rules() -> list[dict[str, Any]]:
    return [rule for path in rule_files()
            for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
            for rule in group["rules"]]


def alert_rules() -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for r in rules() if "alert" in r}


def rule_exprs() -> list[Expr]:
    return [Expr("rule", r.get("alert") or r["record"], r["expr"].strip()) for r in rules()]


def normalise(expr: str) -> str:
    """Whitespace-insensitive form, to find a sub-expression inside a rule."""
    return " ".join(expr.split())
