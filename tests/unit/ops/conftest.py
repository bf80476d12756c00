"""Fixtures for the ops checks: the real promtool from Debian's prometheus package."""

from __future__ import annotations

import os
import shutil

import pytest


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool; with CI=true a missing promtool fails the test, it never skips."""
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is not installed (scripts/install_prometheus.sh installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
