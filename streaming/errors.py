"""Serving-side errors; the policy is: invalid input -> dead letter + counter, bugs crash loudly."""

from __future__ import annotations

from export.errors import ModelError, SentinelError

__all__ = ["ConfigError", "InvalidMessage", "ModelError", "SentinelError", "one_line"]


class ConfigError(SentinelError):
    """A setting or CLI flag that cannot work (bad port, missing directory...)."""


class InvalidMessage(SentinelError):
    """Input that fails its contract. ``reason`` is a short metric label, the text is for humans."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message``, short enough for a dead letter and a log line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__
