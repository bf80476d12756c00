"""Child processes (workers, agents, Prometheus) stopped the same way everywhere; free ports."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from collections.abc import Iterable
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


def free_port() -> int:
    """A TCP port that was free a moment ago (for tests and ad-hoc brokers)."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (sockets are held together so they cannot repeat)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def pin(pid: int, cpus: Iterable[int] | None) -> None:
    """Every thread of ``pid`` onto ``cpus`` (Linux), as ``taskset -a -p`` does; threads it starts
    later inherit it. A thread that ends meanwhile is skipped."""
    if cpus is None:
        return
    wanted = set(cpus)
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(tid), wanted)


def parse_cpus(text: str) -> frozenset[int]:
    """``"0"``, ``"0,2"`` or ``"1-3"``: a CPU list as taskset takes it."""
    cpus: set[int] = set()
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return frozenset(cpus)
