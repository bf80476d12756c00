"""Child processes (workers, agents, Prometheus) stopped the same way everywhere."""

from __future__ import annotations

import subprocess
from typing import Any


def stop_process(proc: subprocess.Popen[Any] | None, timeout: float = 20.0) -> None:
    """SIGTERM (a Faust worker then commits and leaves its group), SIGKILL after ``timeout``."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
