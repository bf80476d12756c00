"""Where a running ``sentinel demo`` can be reached: a small state file beside its data.

The demo takes 127.0.0.1:9092 when it is free and a random port otherwise; either way it
writes ``.sentinel/demo/bootstrap`` (first line ``host:port``, then ``pid=N``), so that
``sentinel alerts tail``, ``produce``, ``report`` and ``broker status`` started in another
terminal of the same directory find its broker without flags. The pid makes a file left
behind by a killed demo harmless: a reader ignores it when that process is gone.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from streaming.kafka.broker import pid_alive

STATE_RELPATH = Path(".sentinel") / "demo" / "bootstrap"


def state_path(base: Path | None = None) -> Path:
    """The state file for demos started in ``base`` (default: the current directory)."""
    return (base or Path.cwd()) / STATE_RELPATH


def write_state(path: Path, bootstrap: str, pid: int | None = None) -> None:
    """Record ``bootstrap`` for the demo process ``pid`` (atomic: readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{bootstrap}\npid={pid if pid is not None else os.getpid()}\n", encoding="utf-8")
    tmp.replace(path)


def read_state(path: Path) -> str | None:
    """The recorded bootstrap, or None when there is no file, it is malformed or its demo is gone."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if not lines or ":" not in lines[0]:
        return None
    pid = next((ln.partition("=")[2] for ln in lines[1:] if ln.startswith("pid=")), "")
    if not pid.isdigit() or not pid_alive(int(pid)):
        return None
    return lines[0].strip()


def remove_state(path: Path, pid: int | None = None) -> None:
    """Delete the file if it is ``pid``'s (default: this process), so a newer demo's file survives."""
    owner = str(pid if pid is not None else os.getpid())
    with contextlib.suppress(OSError):
        if f"pid={owner}" in path.read_text(encoding="utf-8").splitlines():
            path.unlink()
