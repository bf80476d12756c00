"""The ``meta`` block of a script's JSON report: the command, commit, date and machine."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def run_meta(script: str, argv: list[str]) -> dict[str, Any]:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=REPO).stdout.strip()
    return {"command": " ".join([script, *argv]), "commit": commit,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count()}}


def emit(report: dict[str, Any], path: Path | None) -> None:
    """Print the report, and write it to ``path`` when given."""
    text = json.dumps(report, indent=1)
    print(text)
    if path:
        path.write_text(text + "\n")
