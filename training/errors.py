"""Expected training failures; the CLI prints each as one line and exits non-zero."""

from __future__ import annotations

from export.errors import DataError, ModelError, SentinelError

__all__ = ["DataError", "ModelError", "SentinelError"]

