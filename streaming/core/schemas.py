"""Validation of input messages against the contracts of DESIGN.md.

Every rule here is mirrored by a JSON Schema under ``docs/schemas/``; a unit test
runs both on the same examples so they cannot drift. Invalid input raises
:class:`InvalidMessage` with a short ``reason`` (a metric label) and a human detail.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import orjson

from streaming.errors import InvalidMessage

SYMBOL_RE = re.compile(r"[A-Z0-9.^=\-]{1,16}")
MAX_TS = 2**53 - 1
MAX_BUNDLE = 1000
MAX_ID = 128
MAX_TEXT = 20_000
MAX_TAG = 128
TICK_FIELDS = frozenset({"symbol", "ts", "price", "volume"})
BUNDLE_FIELDS = frozenset({"symbol", "ticks"})
BUNDLE_TICK_FIELDS = frozenset({"ts", "price", "volume"})
FEEDBACK_FIELDS = frozenset({"id", "ts", "text", "channel", "customer_id"})
# Every InvalidMessage.reason this module raises (metric label values, primed at zero).
REASONS = ("too_large", "invalid_utf8", "invalid_json", "not_an_object", "missing_field",
           "unknown_field", "invalid_type", "invalid_value", "tombstone", "empty", "missing_key",
           "invalid_key", "key_mismatch", "unexpected_header", "too_many_symbols", "processing_error")
# Headers a producer may set without the record being refused (tracing, content type).
DEFAULT_ALLOWED_HEADERS = frozenset({"traceparent", "tracestate", "content-type"})


@dataclass(frozen=True, slots=True)
class Tick:
    symbol: str
    ts: int
    price: float
    volume: float | None = None


@dataclass(frozen=True, slots=True)
class Feedback:
    id: str
    ts: int
    text: str
    channel: str | None = None
    customer_id: str | None = None


def check_envelope(value: Any, key: Any, headers: Any,
                   allowed_headers: frozenset[str] = DEFAULT_ALLOWED_HEADERS) -> str:
    """The record around the payload: a value, a UTF-8 key, no unknown headers. Returns the key.

    A tombstone (null value) is what compaction tools and ``kafka-console-producer
    --property null.marker`` write; it must be refused like any bad payload, not crash
    the decoder. Every input is keyed (ticks by symbol, so one partition owns a symbol).
    """
    if value is None:
        raise InvalidMessage("tombstone", "null value (a tombstone); the input topics are not compacted")
    if not isinstance(value, bytes | bytearray):
        raise InvalidMessage("invalid_type", f"value is {type(value).__name__}, expected bytes")
    if len(value) == 0:
        raise InvalidMessage("empty", "empty value")
    if key is None or len(key) == 0:
        raise InvalidMessage("missing_key", "records must be keyed (ticks by symbol, feedback by id)")
    try:
        text = bytes(key).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMessage("invalid_key", f"key is not UTF-8 at byte {exc.start}") from None
    for name, _ in headers or ():
        if name.lower() not in allowed_headers:
            raise InvalidMessage("unexpected_header", f"header {str(name)[:64]!r} is not accepted")
    return text


def check_tick_key(key: str, symbol: str) -> None:
    """A tick keyed by another symbol would land in a partition that does not own its state."""
    if key != symbol and key.strip('"') != symbol:
        raise InvalidMessage("key_mismatch", f"key {key[:32]!r} is not the symbol {symbol!r}")


def decode_json(raw: bytes, max_bytes: int) -> dict[str, Any]:
    """Bytes to a JSON object; the size limit is enforced before any parsing."""
    if not isinstance(raw, bytes | bytearray):
        raise InvalidMessage("tombstone" if raw is None else "invalid_type", "the value is not bytes")
    if len(raw) > max_bytes:
        raise InvalidMessage("too_large", f"message is {len(raw)} bytes, limit {max_bytes}")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMessage("invalid_utf8", f"not UTF-8 at byte {exc.start}") from None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidMessage("invalid_json", f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidMessage("not_an_object", f"expected a JSON object, got {type(value).__name__}")
    return value


def _check_keys(obj: dict[str, Any], allowed: frozenset[str], required: tuple[str, ...],
                where: str = "") -> None:
    missing = [k for k in required if k not in obj]
    if missing:
        raise InvalidMessage("missing_field", f"{where}missing {', '.join(missing)}")
    extra = sorted(set(obj) - allowed)
    if extra:
        raise InvalidMessage("unknown_field", f"{where}unknown field(s) {', '.join(extra[:5])}")


def _ts(value: Any, where: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidMessage("invalid_type", f"{where}ts must be an integer (epoch ms)")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise InvalidMessage("invalid_type", f"{where}ts must be an integer (epoch ms), got {value!r}")
    if not 0 <= value <= MAX_TS:
        raise InvalidMessage("invalid_value", f"{where}ts {value} is out of range")
    return int(value)


def _number(value: Any, name: str, *, positive: bool, where: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidMessage("invalid_type", f"{where}{name} must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidMessage("invalid_value", f"{where}{name} must be finite")
    if (positive and number <= 0) or number < 0:
        bound = "> 0" if positive else ">= 0"
        raise InvalidMessage("invalid_value", f"{where}{name} must be {bound}, got {value!r}")
    return number


def _string(value: Any, name: str, max_len: int, min_len: int = 1) -> str:
    if not isinstance(value, str):
        raise InvalidMessage("invalid_type", f"{name} must be a string")
    if not min_len <= len(value) <= max_len:
        raise InvalidMessage("invalid_value", f"{name} must be {min_len}-{max_len} characters, "
                             f"got {len(value)}")
    return value


def _symbol(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidMessage("invalid_type", "symbol must be a string")
    if not SYMBOL_RE.fullmatch(value):
        raise InvalidMessage("invalid_value", f"symbol {value[:32]!r} must be 1-16 of A-Z0-9.^=-")
    return value


def _tick_fields(obj: dict[str, Any], symbol: str, where: str = "") -> Tick:
    volume = obj.get("volume")
    return Tick(symbol=symbol, ts=_ts(obj["ts"], where),
                price=_number(obj["price"], "price", positive=True, where=where),
                volume=None if volume is None else _number(volume, "volume", positive=False,
                                                           where=where))


def parse_ticks(obj: dict[str, Any]) -> list[Tick]:
    """A single tick or a bundle, as the list of ticks it stands for."""
    if "ticks" in obj:
        return _parse_bundle(obj)
    _check_keys(obj, TICK_FIELDS, ("symbol", "ts", "price"))
    return [_tick_fields(obj, _symbol(obj["symbol"]))]


def _parse_bundle(obj: dict[str, Any]) -> list[Tick]:
    _check_keys(obj, BUNDLE_FIELDS, ("symbol", "ticks"))
    symbol = _symbol(obj["symbol"])
    items = obj["ticks"]
    if not isinstance(items, list):
        raise InvalidMessage("invalid_type", "ticks must be a list")
    if not 1 <= len(items) <= MAX_BUNDLE:
        raise InvalidMessage("invalid_value", f"ticks must hold 1-{MAX_BUNDLE} items, got {len(items)}")
    ticks: list[Tick] = []
    for i, item in enumerate(items):
        where = f"ticks[{i}]: "
        if not isinstance(item, dict):
            raise InvalidMessage("invalid_type", f"{where}must be an object")
        _check_keys(item, BUNDLE_TICK_FIELDS, ("ts", "price"), where)
        tick = _tick_fields(item, symbol, where)
        if ticks and tick.ts <= ticks[-1].ts:
            raise InvalidMessage("invalid_value", f"{where}ts must be strictly increasing")
        ticks.append(tick)
    return ticks


def _optional_tag(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    return None if value is None else _string(value, name, MAX_TAG)


def parse_feedback(obj: dict[str, Any]) -> Feedback:
    _check_keys(obj, FEEDBACK_FIELDS, ("id", "ts", "text"))
    return Feedback(id=_string(obj["id"], "id", MAX_ID), ts=_ts(obj["ts"]),
                    text=_string(obj["text"], "text", MAX_TEXT),
                    channel=_optional_tag(obj, "channel"),
                    customer_id=_optional_tag(obj, "customer_id"))


def decode_ticks(raw: bytes, max_bytes: int) -> list[Tick]:
    return parse_ticks(decode_json(raw, max_bytes))


def decode_feedback(raw: bytes, max_bytes: int) -> Feedback:
    return parse_feedback(decode_json(raw, max_bytes))
