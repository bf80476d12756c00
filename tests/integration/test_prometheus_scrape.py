"""A real Prometheus scrapes a real worker; every dashboard and rule expression must return data.

Prometheus is Debian's ``prometheus`` binary on a free port, with the shipped
deploy/prometheus/prometheus.yml and rules. Only the targets change (the compose file finds
workers through Docker's DNS, here the worker is ``worker_metrics_url``; the self-scrape points
at this Prometheus) and the intervals shrink to 1 s so the test takes seconds, not minutes.

After the worker has processed traffic (the fixture), and after a second burst while Prometheus
is scraping (so rates and quantiles are live, not NaN), every PromQL expression in the Grafana
dashboard and in the rule files is evaluated through /api/v1/query: it must parse and return at
least one series. The alert conditions that are false on a healthy test worker are listed in
EXPLAINED_FALSE with the reason; for those the full condition must return nothing, and the
signals the condition is built from (sub-expressions of the rule) must return series.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from streaming.tools.processes import free_port, stop_process
from tests.ops_sources import (
    PROMETHEUS_CONFIG,
    RULES_DIR,
    WORKER_JOB,
    Expr,
    alert_rules,
    dashboard_exprs,
    normalise,
    rule_exprs,
)

pytestmark = pytest.mark.integration

SCRAPE_INTERVAL = "1s"
# What Grafana would substitute on a 1 s scrape interval and a 5-minute time range.
GRAFANA_VARS = {"__rate_interval": "1m", "__interval": "5s", "__range": "5m"}

# Alert conditions that are false on a healthy worker after the test traffic, why, and the
# sub-expressions of the rule that must still return series (so the rule is not vacuous).
EXPLAINED_FALSE: dict[str, tuple[str, tuple[str, ...]]] = {
    "WorkerDown": ("the scraped worker answers (up == 1), so neither up == 0 nor absent(up) holds",
                   ('up{job="sentinel-worker"}',)),
    "ConsumerLagGrowing": ("a few hundred test messages are consumed in seconds: lag stays far "
                           "below 1000",
                           ("sum by (topic) (max by (topic, partition) (sentinel_consumer_lag))",
                            "sum by (topic) (max by (topic, partition) "
                            "(delta(sentinel_consumer_lag[10m])))")),
    "DeadLettersIncreasing": ("the traffic holds two invalid messages, not more than 10 per reason",
                              ("sum by (topic, reason) (increase(sentinel_dead_letters_total[10m]))",)),
    "InferenceLatencyP99High": ("the tiny test models answer in well under 100 ms",
                                ("histogram_quantile(0.99, sum by (model, le) "
                                 "(rate(sentinel_inference_seconds_bucket[5m])))",)),
    "ModelNotLoaded": ("the worker fixture waits until both models are loaded",
                       ("count by (instance) (sentinel_model_info == 1)",
                        'up{job="sentinel-worker"} == 1')),
    "AnomalyStorm": ("the traffic spikes two symbols (MTRX, LIVE), not five",
                     ("sum by (symbol) (increase(sentinel_anomalies_total[5m]))",
                      "max by (symbol) (sentinel_last_anomaly_timestamp_seconds)")),
    "EscalationsSpike": ("a handful of feedback messages are far from 20 escalations in 5 minutes",
                         ("sum(increase(sentinel_escalations_total[5m]))",
                          "sum(rate(sentinel_escalations_total[5m]))")),
    "ProcessingStalled": ("the worker processes every test message, so no topic has lag while "
                          "nothing is processed",
                          ("sum by (topic) (max by (topic, partition) (sentinel_consumer_lag))",
                           "sum by (topic) (rate(sentinel_messages_total[5m]))")),
    "ProcessingErrors": ("no test record raises while processed (invalid ones are rejected by "
                         "validation, not by an error)",
                         ("sum by (agent) (increase(sentinel_processing_errors_total[10m]))",)),
}


def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        message = "the prometheus binary is not installed (scripts/install_prometheus.sh installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def adapt_config(config: dict[str, Any], worker_url: str, self_target: str) -> dict[str, Any]:
    """The shipped config with only the targets changed, and 1 s intervals."""
    url = urllib.parse.urlsplit(worker_url)
    out = copy.deepcopy(config)
    out["global"].update(scrape_interval=SCRAPE_INTERVAL, evaluation_interval=SCRAPE_INTERVAL)
    jobs = {job["job_name"]: job for job in out["scrape_configs"]}
    worker = jobs[WORKER_JOB]
    assert worker.get("metrics_path", "/metrics") == url.path
    # Docker's DNS name "worker" -> the test worker's host:port; nothing else in the job changes.
    del worker["dns_sd_configs"]
    worker["static_configs"] = [{"targets": [url.netloc]}]
    jobs["prometheus"]["static_configs"] = [{"targets": [self_target]}]
    return out


class PrometheusServer:
    """Debian's prometheus on a free port, in a temp directory, with the shipped rules."""

    def __init__(self, binary: str, workdir: Path, worker_url: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        shipped = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
        self.config = adapt_config(shipped, worker_url, f"127.0.0.1:{self.port}")
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(self.config), encoding="utf-8")
        shutil.copytree(RULES_DIR, workdir / "rules")  # rule_files: rules/*.yml, as shipped
        self.log = workdir / "prometheus.log"
        self.binary = binary
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: float = 30.0) -> PrometheusServer:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [self.binary, f"--config.file={self.workdir / 'prometheus.yml'}",
                 f"--storage.tsdb.path={self.workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"prometheus exited:\n{self.log.read_text()}"
            try:
                with urllib.request.urlopen(f"{self.base}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus did not become ready:\n{self.log.read_text()}")

    def stop(self) -> None:
        stop_process(self.proc, 15)

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.base}/api/v1/{path}"
        data = urllib.parse.urlencode(params).encode() if params else None
        try:
            with urllib.request.urlopen(url, data=data, timeout=10) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:  # 400/422: the expression did not parse or evaluate
            body = json.load(exc)
        assert body["status"] == "success", f"{path} {params}: {body.get('errorType')}: {body.get('error')}"
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", f"{expr} returned a {data['resultType']}"
        return list(data["result"])

    def value(self, expr: str) -> float:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else 0.0

    def wait_until(self, expr: str, at_least: float, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.value(expr) < at_least:
            assert time.monotonic() < deadline, f"timed out waiting for {expr} >= {at_least}"
            time.sleep(0.5)


def live_ticks(symbol: str, n: int, spike_at: int, sigma: float = 0.001) -> list[tuple[bytes, bytes]]:
    """Wall-clock stamped random walk (so end-to-end latency is real) with one +25σ spike."""
    rng, price, now = random.Random(symbol), 100.0, int(time.time() * 1000)
    out = []
    for i in range(n):
        price *= math.exp(rng.gauss(0, sigma))
        shown = price * math.exp(25 * sigma) if i == spike_at else price
        value = {"symbol": symbol, "ts": now - (n - i) * 10, "price": shown}
        out.append((symbol.encode(), json.dumps(value).encode()))
    return out


def send_live_traffic(request: pytest.FixtureRequest) -> bool:
    """A second burst while Prometheus scrapes, through the worker fixture if there is one."""
    try:
        worker = request.getfixturevalue("worker")
    except pytest.FixtureLookupError:
        return False
    from streaming import topics
    from tests.integration.kafka_io import produce

    now = int(time.time() * 1000)
    produce(worker.bootstrap, worker.topic(topics.TICKS), live_ticks("LIVE", 160, spike_at=140))
    produce(worker.bootstrap, worker.topic(topics.FEEDBACK), [
        (f"live{i}".encode(), json.dumps({"id": f"live{i}", "ts": now, "text": text}).encode())
        for i, text in enumerate(["broken and defective, I want a refund", "great, love it"])])
    produce(worker.bootstrap, worker.topic(topics.TICKS), [(b"LIVE", b"{not json")])
    return True


@pytest.fixture(scope="module")
def prometheus(worker_metrics_url: str, request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    server = PrometheusServer(prometheus_binary(), tmp_path_factory.mktemp("prometheus"),
                              worker_metrics_url).start()
    try:
        up = f'count_over_time(up{{job="{WORKER_JOB}"}}[1m])'
        server.wait_until(up, 3)
        if send_live_traffic(request):
            server.wait_until('sum(rate(sentinel_messages_total{outcome="ok"}[1m]))', 0.001)
        server.wait_until(up, 10)  # enough samples on both sides of the burst for every range
        yield server
    finally:
        server.stop()


def test_prometheus_scrapes_the_worker_with_the_shipped_job(prometheus: PrometheusServer,
                                                            worker_metrics_url: str) -> None:
    targets = prometheus.api("targets")["activeTargets"]
    (worker,) = [t for t in targets if t["labels"]["job"] == WORKER_JOB]
    assert worker["health"] == "up", worker.get("lastError")
    assert worker["scrapeUrl"] == worker_metrics_url


def test_prometheus_loaded_and_evaluates_every_rule(prometheus: PrometheusServer) -> None:
    deadline = time.monotonic() + 30
    while True:
        loaded = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
        if all(r["lastEvaluation"] > "0001-01-02" for r in loaded) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert {r["name"] for r in loaded if r["type"] == "alerting"} == set(alert_rules())
    for rule in loaded:
        assert rule["health"] == "ok", f"{rule['name']}: {rule.get('lastError')}"


def test_explanations_cover_exactly_the_alerts() -> None:
    assert set(EXPLAINED_FALSE) == set(alert_rules())
    for alert, (_, signals) in EXPLAINED_FALSE.items():
        for signal in signals:
            assert normalise(signal) in normalise(alert_rules()[alert]["expr"]), (
                f"{signal!r} is not part of {alert}'s expression")


ALL_EXPRS = dashboard_exprs(GRAFANA_VARS) + rule_exprs()


@pytest.mark.parametrize("expr", ALL_EXPRS, ids=[e.id for e in ALL_EXPRS])
def test_expression_parses_and_returns_series(prometheus: PrometheusServer, expr: Expr) -> None:
    result = prometheus.query(expr.expr)  # a parse error fails inside query()
    if expr.source == "rule" and expr.name in EXPLAINED_FALSE:
        why, signals = EXPLAINED_FALSE[expr.name]
        assert result == [], f"{expr.name} holds although {why}: {result}"
        for signal in signals:
            assert prometheus.query(signal), f"{expr.name}: its signal {signal!r} has no series"
    else:
        assert result, f"{expr.id} returned no series: {expr.expr}"
