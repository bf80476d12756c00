"""Expected training failures; the CLI prints each as one line and exits non-zero."""

from __future__ import annotations

from export.errors import ModelError, SentinelError

__all__ = ["DataError", "ModelError", "SentinelError"]


class DataError(SentinelError):
    """Input data that cannot be used: missing file, bad CSV, no network for a download."""
