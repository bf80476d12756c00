"""Subprocesses for ``sentinel bench``: real workers, the trivial agent, resource sampling.

Each worker is a real ``python -m streaming.cli worker`` with ``SENTINEL_*`` variables,
exactly as deployed; a sampler thread reads its CPU time and RSS with psutil. With a
profile directory, ``py-spy record`` attaches to the worker for the measured window.
"""

from __future__ import annotations

import bisect
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from streaming.settings import REPO_ROOT
from streaming.tools.processes import free_port, pin, stop_process
from streaming.tools.scrape import scrape

REPO = REPO_ROOT
_STARTED: list[subprocess.Popen[bytes]] = []  # every child, so a failed run leaves none behind


def stop_all(timeout: float = 10.0) -> None:
    """Terminate (then kill) every subprocess this module started that still runs."""
    for proc in _STARTED:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + timeout
    for proc in _STARTED:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
    _STARTED.clear()


class ResourceMonitor:
    """Samples a process's RSS every ``interval`` s; CPU seconds are read on demand."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.peak_rss = 0
        self.cpu_trace: list[tuple[float, float]] = []  # (wall clock s, CPU s) per sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        try:
            with self.proc.oneshot():
                self.peak_rss = max(self.peak_rss, self.proc.memory_info().rss)
                t = self.proc.cpu_times()
            self.cpu_trace.append((time.time(), t.user + t.system))
        except psutil.Error:
            self._stop.set()

    def cpu_between(self, start: float, end: float) -> float:
        """CPU seconds used between two wall-clock times (from the nearest samples)."""
        times = [t for t, _ in self.cpu_trace]
        if not times:
            return float("nan")
        i = min(bisect.bisect_left(times, start), len(times) - 1)
        j = min(bisect.bisect_left(times, end), len(times) - 1)
        return self.cpu_trace[j][1] - self.cpu_trace[i][1]

    def cpu_seconds(self) -> float:
        try:
            t = self.proc.cpu_times()
            return float(t.user + t.system)
        except psutil.Error:
            return float("nan")

    def stop(self) -> None:
        self.sample()
        self._stop.set()
        self._thread.join(timeout=2)


@dataclass
class Profiler:
    """``py-spy record`` attached to a running pid; SIGINT makes it write its output."""

    pid: int
    out: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> bool:
        exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(exe).exists():
            return False
        self.out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [exe, "record", "--pid", str(self.pid), "--rate", "100", "--threads", "--format", "raw",
               "--output", str(self.out)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _STARTED.append(self.proc)
        time.sleep(0.5)  # let it attach before the measured window starts
        return True

    def stop(self) -> Path | None:
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        return self.out if self.out.is_file() else None


def _scrape_models(url: str) -> int:
    return sum(1 for s in scrape(url, timeout=2) if s.name == "sentinel_model_info")


STAT_FAMILIES = ("sentinel_batch_processing_seconds", "sentinel_batch_size", "sentinel_inference_seconds",
                 "sentinel_inference_batch_size", "sentinel_checkpoint_seconds",
                 "sentinel_checkpoint_symbols", "sentinel_gc_pause_seconds")


def batch_stats(url: str) -> dict[str, dict[str, float]]:
    """Mean and count of the worker's batch/inference histograms, per agent or model label."""
    samples = scrape(url)
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for family in STAT_FAMILIES:
        for suffix, into in (("_sum", sums), ("_count", counts)):
            for s in samples:
                if s.name == family + suffix:
                    label = next(iter(s.labels.values()), "")
                    into[f"{family}/{label}"] = s.value
    return {k: {"mean": sums[k] / counts[k] if counts.get(k) else 0.0, "count": counts.get(k, 0.0)}
            for k in sums}


@dataclass
class BenchWorker:
    """One ``sentinel worker`` subprocess with its own metrics port and state directory."""

    bootstrap: str
    models_dir: Path
    prefix: str
    app_id: str
    work_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    metrics_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    monitor: ResourceMonitor | None = None
    name: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    started_at: float = 0.0
    ready_cpu_s: float = 0.0
    cpus: frozenset[int] | None = None  # pinned there (``sentinel bench --pin``)

    @property
    def log_path(self) -> Path:
        return self.work_dir / f"worker-{self.app_id}-{self.name}.log"

    def start(self) -> BenchWorker:
        state = self.work_dir / f"state-{self.app_id}-{self.name}"
        state.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(REPO), "SENTINEL_KAFKA_BOOTSTRAP": self.bootstrap,
               "SENTINEL_MODELS_DIR": str(self.models_dir), "SENTINEL_TOPIC_PREFIX": self.prefix,
               "SENTINEL_APP_ID": self.app_id, "SENTINEL_METRICS_PORT": str(self.metrics_port),
               "SENTINEL_DATA_DIR": str(state), **self.env}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "streaming.cli", "worker"], env=env,
                                         stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        _STARTED.append(self.proc)
        pin(self.proc.pid, self.cpus)  # before it starts threads: they inherit it
        self.started_at = time.monotonic()
        self.monitor = ResourceMonitor(self.proc.pid)
        return self

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Seconds from start until /metrics shows both models loaded."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"worker exited during start-up: see {self.log_path}")
            try:
                if _scrape_models(url) >= 2:
                    pin(self.proc.pid, self.cpus)  # again, in case a thread started before the first
                    self.ready_cpu_s = self.monitor.cpu_seconds() if self.monitor else 0.0
                    return time.monotonic() - self.started_at
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"worker metrics did not come up within {timeout:.0f}s: see {self.log_path}")

    def batch_stats(self) -> dict[str, dict[str, float]]:
        try:
            return batch_stats(f"http://127.0.0.1:{self.metrics_port}/metrics")
        except OSError:
            return {}

    def cpu_between(self, start: float, end: float) -> float:
        return self.monitor.cpu_between(start, end) if self.monitor else float("nan")

    def usage(self) -> dict[str, float]:
        """CPU seconds since ready and in total, and peak RSS so far (MB)."""
        assert self.monitor is not None
        total = self.monitor.cpu_seconds()
        self.monitor.sample()
        return {"cpu_s": total - self.ready_cpu_s, "cpu_s_total": total,
                "peak_rss_mb": self.monitor.peak_rss / 2**20}

    def stop(self, timeout: float = 20.0) -> None:
        if self.monitor is not None:
            self.monitor.stop()
        stop_process(self.proc, timeout)


def run_trivial_agent(bootstrap: str, topic: str, expect: int, work_dir: Path,
                      timeout: float = 300.0, env: dict[str, str] | None = None,
                      cpus: frozenset[int] | None = None) -> dict[str, Any]:
    """Run ``streaming.bench.trivial`` on ``topic`` until it has seen ``expect`` events."""
    app_id = f"bench-trivial-{uuid.uuid4().hex[:8]}"
    out = work_dir / f"{app_id}.json"
    cmd = [sys.executable, "-m", "streaming.bench.trivial", "--bootstrap", bootstrap, "--topic", topic,
           "--expect", str(expect), "--app-id", app_id, "--out", str(out),
           "--data-dir", str(work_dir / app_id)]
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    with (work_dir / f"{app_id}.log").open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=full_env)
    _STARTED.append(proc)
    pin(proc.pid, cpus)
    monitor = ResourceMonitor(proc.pid)
    deadline = time.monotonic() + timeout
    try:
        while not out.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        cpu = monitor.cpu_seconds()
    finally:
        monitor.stop()
        stop_process(proc)
    if not out.is_file():
        raise RuntimeError(f"trivial agent did not finish: see {work_dir / (app_id + '.log')}")
    result: dict[str, Any] = json.loads(out.read_text())
    result.update(cpu_s_total=cpu, peak_rss_mb=monitor.peak_rss / 2**20)
    return result
