"""The shipped Prometheus config and rules, checked by the real promtool (Debian's package).

``promtool check config`` also loads the rule files the config names; ``promtool test rules``
runs deploy/prometheus/tests/*.yml, which hold a firing and a quiet case for every alert.
Without promtool these tests skip, except with CI=true, where they fail (see conftest.py).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.ops_sources import PROMETHEUS_CONFIG, REPO, RULE_TESTS_DIR, alert_rules, rule_files, rules

REQUIRED_ALERTS = {"WorkerDown", "ConsumerLagGrowing", "DeadLettersIncreasing", "AnomalyStorm",
                   "EscalationsSpike", "InferenceLatencyP99High", "ModelNotLoaded", "ProcessingStalled",
                   "ProcessingErrors"}


def run(promtool: str, *args: str | Path) -> str:
    proc = subprocess.run([promtool, *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"promtool {' '.join(map(str, args))} failed:\n{output}"
    return output


def test_promtool_check_config(promtool: str) -> None:
    output = run(promtool, "check", "config", PROMETHEUS_CONFIG)
    assert "is valid prometheus config file syntax" in output
    assert f"SUCCESS: {len(rule_files())} rule files found" in output


def test_promtool_check_rules(promtool: str) -> None:
    output = run(promtool, "check", "rules", *rule_files())
    found = sum(int(n) for n in re.findall(r"SUCCESS: (\d+) rules found", output))
    assert found == len(rules()) > 0


def test_promtool_test_rules(promtool: str) -> None:
    tests = sorted(RULE_TESTS_DIR.glob("*.yml"))
    assert tests
    output = run(promtool, "test", "rules", *tests)
    assert output.count("SUCCESS") == len(tests), output


# ------------------------------------------------------- what the promtool tests must cover


def _unit_tests() -> list[dict[str, object]]:
    cases = []
    for path in sorted(RULE_TESTS_DIR.glob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        targets = {(path.parent / f).resolve() for f in doc["rule_files"]}
        assert targets <= {p.resolve() for p in rule_files()}, f"{path} tests unshipped rules"
        for test in doc["tests"]:
            cases.extend(test.get("alert_rule_test", []))
    return cases


def test_the_required_alerts_exist() -> None:
    assert set(alert_rules()) == REQUIRED_ALERTS


@pytest.mark.parametrize("alert", sorted(REQUIRED_ALERTS))
def test_every_alert_has_a_firing_and_a_quiet_promtool_case(alert: str) -> None:
    cases = [c for c in _unit_tests() if c["alertname"] == alert]
    assert any(c["exp_alerts"] for c in cases), f"no promtool case where {alert} fires"
    assert any(not c["exp_alerts"] for c in cases), f"no promtool case where {alert} stays quiet"


@pytest.mark.parametrize("alert", sorted(REQUIRED_ALERTS))
def test_every_alert_is_documented_and_labelled(alert: str) -> None:
    rule = alert_rules()[alert]
    assert rule["labels"]["severity"] in ("critical", "warning")
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    assert "for" in rule
    docs = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    assert f"`{alert}`" in docs, f"docs/operations.md does not describe {alert}"
