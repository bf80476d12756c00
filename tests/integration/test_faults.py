"""Faults against the real broker, each compared with the in-process reference on the same input.

Figures (crashes survived, lost, duplicates) are printed so CI logs carry them. Kill and
restart times come from a seed that changes with every run and is printed, so CI explores
new schedules and a failure can be replayed (``FAULT_SEED=N``);
``FAULT_REPORT_DIR=DIR`` also writes one JSON report per test
(``scripts/fault_suite.py`` reruns the suite N times that way).
"""

from __future__ import annotations

import json
import os
import platform
import random
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streaming import topics
from streaming.kafka.broker import BrokerConfig, start_broker
from streaming.tools.processes import free_port
from tests.integration.kafka_io import WorkerProcess, consume, metric, scrape
from tests.integration.reliability_support import (
    BackgroundProducer,
    Outcome,
    Reference,
    history,
    labelled_stream,
    reference,
    ticks_missing_from_state,
)

pytestmark = pytest.mark.slow
SEED = int(os.environ.get("FAULT_SEED") or time.time_ns() % 1_000_000_007)


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """This test's schedule: the run's seed, printed so the run can be replayed."""
    print(f"fault seed={SEED} (replay: FAULT_SEED={SEED} pytest {request.node.nodeid})")
    return random.Random(f"{SEED}:{request.node.name}")


def save_report(name: str, report: dict[str, Any]) -> None:
    out = os.environ.get("FAULT_REPORT_DIR")
    if not out:
        return
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    record = {"test": name, "seed": SEED, "report": report, "commit": commit,
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}}
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / f"{name}-{SEED}.json").write_text(json.dumps(record, indent=1, sort_keys=True))


def collect(worker: WorkerProcess, ref: Reference, timeout: float = 180.0) -> Outcome:
    forecasts = consume(worker.bootstrap, worker.topic(topics.FORECASTS),
                        lambda r: len({(x["symbol"], x["ts"]) for x in r}) >= len(ref.forecasts),
                        timeout=timeout)
    anomalies = consume(worker.bootstrap, worker.topic(topics.ANOMALIES),
                        lambda r: ref.anomalies <= {x["alert_id"] for x in r}, timeout=30)
    return Outcome(forecasts, anomalies)


def survive(worker: WorkerProcess, producer: BackgroundProducer, ref: Reference, rng: random.Random,
            times: int, gap: tuple[float, float],
            fault: Callable[[int], None]) -> tuple[Outcome, dict[str, int]]:
    """Inject ``fault`` ``times`` times, ``gap`` seconds apart (from the seed), then compare with ``ref``."""
    producer.start()
    try:
        for i in range(times):
            time.sleep(rng.uniform(*gap))
            fault(i)
        producer.join(120)
        assert producer.error is None and not producer.is_alive()
        outcome = collect(worker, ref)
        settled(worker)
        return outcome, outcome.check(ref)
    finally:
        worker.stop()


def settled(worker: WorkerProcess, timeout: float = 90.0) -> None:
    """Until the whole input is committed, so processed and its state checkpointed.

    Every forecast can be out before that: a kill just after the input ended leaves the
    restarted worker replaying ticks whose forecasts the killed one already published, and
    stopping it then would leave the final state short of them (``ticks_missing_from_state``)
    although nothing was lost (their offsets were never committed).
    """
    topic = worker.topic(topics.TICKS)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            samples = scrape(worker.metrics_url)
        except OSError:
            samples = []
        lags = [s for s in samples if s.name == "sentinel_consumer_lag" and s.labels.get("topic") == topic]
        if lags and metric(lags, "sentinel_consumer_lag") == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"the worker did not commit its whole input within {timeout:.0f} s")


def assert_nothing_lost(report: dict[str, int], name: str) -> None:
    print("fault report:", report)
    save_report(name, report)
    assert report["forecasts_lost"] == 0 and report["anomalies_lost"] == 0, report
    assert report["forecasts_unexpected"] == 0 and report["forecast_values_wrong"] == 0, report
    assert report.get("ticks_missing_from_state", 0) == 0, report


def kill_setup(broker: object, models_dir: Path, tmp_path: Path, ticks: list[Any]
               ) -> tuple[Reference, WorkerProcess, BackgroundProducer]:
    """The reference for ``ticks``, a started worker and a producer of them at 1,500 ticks/s."""
    ref = reference(ticks, models_dir)
    worker = WorkerProcess(broker.bootstrap, models_dir, tmp_path / "state").start()  # type: ignore[attr-defined]
    return ref, worker, BackgroundProducer(worker.bootstrap, worker.topic(topics.TICKS), ticks, rate=1500)


def crash_and_restart(worker: WorkerProcess) -> Callable[[int], None]:
    """``kill -9`` and an immediate restart, what a supervisor does."""
    def crash(i: int) -> None:
        worker.kill()
        print(f"kill -9 at {time.strftime('%H:%M:%S', time.gmtime())} (crash {i + 1})")
        worker.start()
    return crash


def test_kill_9_worker_five_times(kafka_broker: object, tiny_models_dir: Path, tmp_path: Path,
                                  rng: random.Random) -> None:
    ticks = labelled_stream(symbols=200, per_symbol=250)  # 50,000 ticks
    ref, worker, producer = kill_setup(kafka_broker, tiny_models_dir, tmp_path, ticks)
    outcome, report = survive(worker, producer, ref, rng, 5, (3.0, 7.0), crash_and_restart(worker))
    report["crashes"] = 5
    report["offset_rewinds"] = worker.log_text().count("never reached the agent")
    report["ticks_missing_from_state"] = ticks_missing_from_state(
        worker.bootstrap, f"{worker.app_id}-symbol-state-changelog", ticks)
    if report["forecasts_lost"] or report["forecast_values_wrong"]:
        print(outcome.diagnose(ref))
        notable = [line for line in worker.log_text().splitlines()
                   if any(w in line for w in ("WARN", "ERROR", "Revoking", "assigned", "Seek", "ready"))
                   and "producer buffer full" not in line]
        print("\n".join(notable[-60:]))
        lost = outcome.lost(ref)
        if lost:
            print(history(worker.bootstrap, worker.topic(topics.TICKS), worker.topic(topics.FORECASTS),
                          f"{worker.app_id}-symbol-state-changelog", sorted({s for s, _ in lost})[:3]))
    assert_nothing_lost(report, "kill_9_x5")
    assert report["anomalies_expected"] > 0


def test_kill_9_restores_long_detector_histories(kafka_broker: object, tiny_models_dir: Path,
                                                tmp_path: Path, rng: random.Random) -> None:
    """Kills once the detector's shape history holds over a thousand ticks a symbol: the restored
    state must score as the uninterrupted reference, so every alert comes out, and no alert the
    reference lacks (one would mean a history restored short or stale)."""
    ticks = labelled_stream(symbols=12, per_symbol=2000, seed=4)  # 24,000 ticks, ~16 s
    ref, worker, producer = kill_setup(kafka_broker, tiny_models_dir, tmp_path, ticks)
    # The second kill 11-14 s in: 1,300-1,700 ticks a symbol sent.
    outcome, report = survive(worker, producer, ref, rng, 2, (5.5, 7.0), crash_and_restart(worker))
    report["anomalies_unexpected"] = len({a["alert_id"] for a in outcome.anomalies} - ref.anomalies)
    report["ticks_missing_from_state"] = ticks_missing_from_state(
        worker.bootstrap, f"{worker.app_id}-symbol-state-changelog", ticks)
    report["state_records_unreadable"] = worker.log_text().count("unreadable")
    assert_nothing_lost(report, "kill_9_long_histories")
    assert report["anomalies_expected"] > 0 and report["anomalies_unexpected"] == 0, report
    assert report["state_records_unreadable"] == 0, report


def test_broker_restart_mid_stream(tiny_models_dir: Path, tmp_path: Path, rng: random.Random) -> None:
    config = BrokerConfig(data_dir=tmp_path / "kafka", port=free_port(), controller_port=free_port())
    broker = start_broker(config)
    ticks = labelled_stream(symbols=50, per_symbol=200, seed=3)
    ref = reference(ticks, tiny_models_dir)
    worker = WorkerProcess(broker.bootstrap, tiny_models_dir, tmp_path / "state").start()
    producer = BackgroundProducer(broker.bootstrap, worker.topic(topics.TICKS), ticks, rate=1000)
    try:
        producer.start()
        time.sleep(rng.uniform(2.0, 6.0))
        broker.stop()
        time.sleep(rng.uniform(1.0, 5.0))
        broker = start_broker(config)
        producer.join(120)
        assert producer.error is None
        report = collect(worker, ref).check(ref)
        assert worker.proc is not None and worker.proc.poll() is None, "worker died with the broker"
        report["ticks_missing_from_state"] = ticks_missing_from_state(
            broker.bootstrap, f"{worker.app_id}-symbol-state-changelog", ticks)
    finally:
        worker.stop()
        broker.stop()
    assert_nothing_lost(report, "broker_restart")


def test_rebalance_kill_one_of_two_workers(kafka_broker: object, tiny_models_dir: Path,
                                           tmp_path: Path, rng: random.Random) -> None:
    ticks = labelled_stream(symbols=100, per_symbol=200, seed=9)
    ref = reference(ticks, tiny_models_dir)
    bootstrap = kafka_broker.bootstrap  # type: ignore[attr-defined]
    first = WorkerProcess(bootstrap, tiny_models_dir, tmp_path / "a").start()
    second = WorkerProcess(bootstrap, tiny_models_dir, tmp_path / "b", prefix=first.prefix,
                           app_id=first.app_id).start()
    producer = BackgroundProducer(bootstrap, first.topic(topics.TICKS), ticks, rate=800)
    try:
        producer.start()
        wait_forecasting(second)  # it owns partitions
        time.sleep(rng.uniform(0.0, 3.0))
        second.kill()  # the survivor takes over its partitions with their table state
        time.sleep(rng.uniform(1.0, 5.0))
        second.start()  # and partitions rebalance back
        wait_forecasting(second)
        producer.join(120)
        assert producer.error is None
        report = collect(first, ref).check(ref)
    finally:
        first.stop()
        second.stop()
    report["offset_rewinds"] = sum(w.log_text().count("never reached the agent") for w in (first, second))
    report["ticks_missing_from_state"] = ticks_missing_from_state(
        bootstrap, f"{first.app_id}-symbol-state-changelog", ticks)
    assert_nothing_lost(report, "rebalance")


def test_static_member_is_back_before_its_session_expires(kafka_broker: object, tiny_models_dir: Path,
                                                          tmp_path: Path, rng: random.Random) -> None:
    """With ``SENTINEL_GROUP_INSTANCE_ID`` a worker killed and restarted gets its partitions back
    at once; without it, the group waits for the dead member's session (30 s here) to expire."""
    ticks = labelled_stream(symbols=50, per_symbol=500, seed=5)  # 25 s of input: kills while it flows
    ref = reference(ticks, tiny_models_dir)
    session_s = 30.0
    worker = WorkerProcess(kafka_broker.bootstrap, tiny_models_dir, tmp_path / "state",  # type: ignore[attr-defined]
                           env={"SENTINEL_GROUP_INSTANCE_ID": "w-{hostname}",
                                "SENTINEL_SESSION_TIMEOUT_S": str(session_s)}).start()
    producer = BackgroundProducer(worker.bootstrap, worker.topic(topics.TICKS), ticks, rate=1000)
    back_in: list[float] = []

    def crash(i: int) -> None:
        ready = worker.log_text().count("[^Worker]: Ready")
        worker.kill()
        killed = time.monotonic()
        worker.start()
        while (worker.log_text().count("[^Worker]: Ready") == ready
               and time.monotonic() - killed < 2 * session_s):
            time.sleep(0.2)
        back_in.append(time.monotonic() - killed)
        print(f"kill -9 {i + 1}: ready again after {back_in[-1]:.1f} s (session {session_s:.0f} s)")

    _, report = survive(worker, producer, ref, rng, 2, (3.0, 6.0), crash)
    report["ticks_missing_from_state"] = ticks_missing_from_state(
        worker.bootstrap, f"{worker.app_id}-symbol-state-changelog", ticks)
    assert_nothing_lost(report, "static_member_kill_9")
    assert max(back_in) < session_s / 2, back_in


def wait_forecasting(worker: WorkerProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metric(scrape(worker.metrics_url), "sentinel_forecasts_total") > 0:
            return
        time.sleep(0.5)
    raise AssertionError("worker never forecast: it got no partitions")


def test_graceful_restarts_hand_over_without_duplicates(kafka_broker: object, tiny_models_dir: Path,
                                                        tmp_path: Path, rng: random.Random) -> None:
    """SIGTERM checkpoints and commits what was acknowledged: nothing lost and nothing repeated."""
    ticks = labelled_stream(symbols=100, per_symbol=150)  # 15,000 ticks
    ref = reference(ticks, tiny_models_dir)
    worker = WorkerProcess(kafka_broker.bootstrap, tiny_models_dir, tmp_path / "state").start()  # type: ignore[attr-defined]
    producer = BackgroundProducer(worker.bootstrap, worker.topic(topics.TICKS), ticks, rate=1000)

    def graceful_stop(i: int) -> None:
        started = time.monotonic()
        worker.stop()
        stopped_in = time.monotonic() - started
        assert worker.proc is not None and worker.proc.returncode == 0, worker.log_text()[-3000:]
        print(f"SIGTERM {i + 1}: exited 0 in {stopped_in:.1f} s")
        worker.start()

    _, report = survive(worker, producer, ref, rng, 3, (2.0, 4.0), graceful_stop)
    report["graceful_stops"] = 3
    report["ticks_missing_from_state"] = ticks_missing_from_state(
        worker.bootstrap, f"{worker.app_id}-symbol-state-changelog", ticks)
    assert_nothing_lost(report, "sigterm_x3")
    assert report["forecast_duplicates"] == 0 and report["anomaly_duplicates"] == 0, report
