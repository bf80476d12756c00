"""Shared pieces of the compose test: paths, progress lines, commands, waiting, the report."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[2]
# Caches (debootstrap tarball, saved stand-in images, the compose binary) survive runs; the run
# directory holds this run's logs. Both under .sentinel/ (gitignored).
STATE = REPO / ".sentinel" / "compose-test"
CACHE = STATE / "cache"
RUN_DIR = STATE / "run"

T = TypeVar("T")
_START = time.monotonic()


class CheckFailed(Exception):
    """A step or check of the compose test failed; the message says what and why."""


class EngineUnavailable(Exception):
    """No Docker engine can be installed or started here (the pytest wrapper may skip on this)."""


def log(message: str) -> None:
    """One progress line with the time since the test started."""
    print(f"[{time.monotonic() - _START:7.1f}s] {message}", flush=True)


def run(cmd: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 600.0, check: bool = True, stdin: str | None = None,
        log_file: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command; with ``check``, a non-zero exit raises CheckFailed with its last lines.

    ``log_file`` receives the full output (long builds), which then is not kept in memory.
    """
    full_env = {**os.environ, **env} if env is not None else None
    try:
        if log_file is not None:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            with open(log_file, "a", encoding="utf-8") as fh:
                fh.write(f"$ {' '.join(cmd)}\n")
                fh.flush()
                proc = subprocess.run(cmd, env=full_env, cwd=cwd, timeout=timeout, text=True,
                                      input=stdin, stdout=fh, stderr=subprocess.STDOUT, check=False)
            output = tail_lines(log_file, 25)
            result = subprocess.CompletedProcess(proc.args, proc.returncode, output, "")
        else:
            result = subprocess.run(cmd, env=full_env, cwd=cwd, timeout=timeout, text=True, input=stdin,
                                    capture_output=True, check=False)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"`{' '.join(cmd[:4])} ...` took over {timeout:.0f}s") from None
    if check and result.returncode != 0:
        detail = (result.stdout or "") + (result.stderr or "")
        last = " | ".join(line.strip() for line in detail.strip().splitlines()[-12:])
        where = f" (full output: {log_file})" if log_file else ""
        raise CheckFailed(f"`{' '.join(cmd[:5])} ...` exited {result.returncode}{where}: {last}")
    return result


def tail_lines(path: Path, count: int) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-count:])
    except OSError:
        return ""


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 2.0) -> T:
    """Poll ``probe`` until it returns something other than None/False; CheckFailed on timeout.

    A probe may raise CheckFailed to say why it is not there yet; the last reason is reported.
    """
    deadline = time.monotonic() + timeout
    reason = "no answer yet"
    while True:
        try:
            value = probe()
            if value is not None and value is not False:
                return value
        except CheckFailed as exc:
            reason = str(exc)
        if time.monotonic() >= deadline:
            raise CheckFailed(f"{what}: not within {timeout:.0f}s ({reason})")
        time.sleep(interval)


@dataclass
class Step:
    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass
class Report:
    """What ran, how long each step took and what it found; written as JSON for the pytest test."""

    steps: list[Step] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    outcome: str = "running"  # passed, failed, unavailable
    error: str = ""

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[list[str]]:
        """Time a step; the body appends detail strings to the yielded list."""
        log(f"-- {name}")
        details: list[str] = []
        start = time.monotonic()
        try:
            yield details
        except BaseException as exc:
            details.append(f"{type(exc).__name__}: {exc}")
            self.steps.append(Step(name, False, round(time.monotonic() - start, 1), "; ".join(details)))
            log(f"FAILED {name}: {exc}")
            raise
        self.steps.append(Step(name, True, round(time.monotonic() - start, 1), "; ".join(details)))
        log(f"ok {name} ({time.monotonic() - start:.1f}s){': ' + '; '.join(details) if details else ''}")

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"outcome": self.outcome, "error": self.error, "facts": self.facts,
                "seconds": round(time.monotonic() - _START, 1), "steps": [asdict(s) for s in self.steps]}
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def python() -> str:
    """The interpreter running the test (the project's venv): host-side Kafka clients and the CLI."""
    return sys.executable
