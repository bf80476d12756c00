"""Validators and the shipped JSON Schemas must agree on the same examples."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import orjson
import pytest

from streaming.core.schemas import decode_feedback, decode_json, decode_ticks, parse_feedback, parse_ticks
from streaming.errors import InvalidMessage

SCHEMAS = Path(__file__).resolve().parents[4] / "docs" / "schemas"
MAX = 1_048_576

VALID_TICKS = [
    {"symbol": "AAPL", "ts": 1, "price": 1.5},
    {"symbol": "BRK.B", "ts": 1700000000000, "price": 412.3, "volume": 0},
    {"symbol": "^GSPC", "ts": 5, "price": 1e-6, "volume": 10.5},
    {"symbol": "EURUSD=X", "ts": 5.0, "price": 1.08},
    {"symbol": "A", "ticks": [{"ts": 1, "price": 2.0}, {"ts": 2, "price": 2.1, "volume": 3}]},
]
INVALID_TICKS = [
    ({"symbol": "aapl", "ts": 1, "price": 1.0}, "invalid_value"),
    ({"symbol": "TOOLONGSYMBOL12345", "ts": 1, "price": 1.0}, "invalid_value"),
    ({"symbol": "AAPL", "ts": 1, "price": 0}, "invalid_value"),
    ({"symbol": "AAPL", "ts": 1, "price": -3}, "invalid_value"),
    ({"symbol": "AAPL", "ts": 1, "price": "1.0"}, "invalid_type"),
    ({"symbol": "AAPL", "ts": 1, "price": True}, "invalid_type"),
    ({"symbol": "AAPL", "ts": -1, "price": 1.0}, "invalid_value"),
    ({"symbol": "AAPL", "ts": 1.5, "price": 1.0}, "invalid_type"),
    ({"symbol": "AAPL", "price": 1.0}, "missing_field"),
    ({"symbol": "AAPL", "ts": 1, "price": 1.0, "extra": 1}, "unknown_field"),
    ({"symbol": "AAPL", "ts": 1, "price": 1.0, "volume": -1}, "invalid_value"),
    ({"symbol": 7, "ts": 1, "price": 1.0}, "invalid_type"),
    ({"symbol": "A", "ticks": []}, "invalid_value"),
    ({"symbol": "A", "ticks": [{"ts": 1}]}, "missing_field"),
    ({"symbol": "A", "ticks": [{"ts": 1, "price": 1, "x": 1}]}, "unknown_field"),
    ({"symbol": "A", "ticks": [{"ts": 1, "price": 1}] * 1001}, "invalid_value"),
    ({"symbol": "A", "ticks": "nope"}, "invalid_type"),
]
VALID_FEEDBACK = [
    {"id": "1", "ts": 1, "text": "ok"},
    {"id": "x" * 128, "ts": 2, "text": "é" * 20000, "channel": "email", "customer_id": None},
]
INVALID_FEEDBACK = [
    ({"id": "", "ts": 1, "text": "a"}, "invalid_value"),
    ({"id": "x" * 129, "ts": 1, "text": "a"}, "invalid_value"),
    ({"id": "1", "ts": 1, "text": ""}, "invalid_value"),
    ({"id": "1", "ts": 1, "text": "a" * 20001}, "invalid_value"),
    ({"id": "1", "ts": 1}, "missing_field"),
    ({"id": 1, "ts": 1, "text": "a"}, "invalid_type"),
    ({"id": "1", "ts": 1, "text": "a", "channel": 5}, "invalid_type"),
    ({"id": "1", "ts": 1, "text": "a", "rating": 5}, "unknown_field"),
]


def _validator(name: str) -> jsonschema.Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.mark.parametrize("example", VALID_TICKS)
def test_valid_ticks_pass_both(example: dict) -> None:
    assert parse_ticks(example)
    assert _validator("prices.ticks.json").is_valid(example)


@pytest.mark.parametrize(("example", "reason"), INVALID_TICKS)
def test_invalid_ticks_fail_both(example: dict, reason: str) -> None:
    with pytest.raises(InvalidMessage) as err:
        parse_ticks(example)
    assert err.value.reason == reason
    assert not _validator("prices.ticks.json").is_valid(example)


@pytest.mark.parametrize("example", VALID_FEEDBACK)
def test_valid_feedback_pass_both(example: dict) -> None:
    assert parse_feedback(example).id == example["id"]
    assert _validator("feedback.messages.json").is_valid(example)


@pytest.mark.parametrize(("example", "reason"), INVALID_FEEDBACK)
def test_invalid_feedback_fail_both(example: dict, reason: str) -> None:
    with pytest.raises(InvalidMessage) as err:
        parse_feedback(example)
    assert err.value.reason == reason
    assert not _validator("feedback.messages.json").is_valid(example)


def test_bundle_order_is_checked_by_the_validator_only() -> None:
    """Strictly increasing ts is not expressible in JSON Schema: documented in the schema."""
    bundle = {"symbol": "A", "ticks": [{"ts": 2, "price": 1.0}, {"ts": 2, "price": 1.1}]}
    with pytest.raises(InvalidMessage, match="strictly increasing"):
        parse_ticks(bundle)
    assert "strictly increasing" in (SCHEMAS / "prices.ticks.json").read_text()


@pytest.mark.parametrize(("raw", "reason"), [
    (b"\xff\xfe", "invalid_utf8"), (b"{not json", "invalid_json"), (b"[1, 2]", "not_an_object"),
    (b'{"symbol": "A", "ts": 1, "price": NaN}', "invalid_json"), (b"x" * 11, "too_large"),
])
def test_byte_level_errors(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidMessage) as err:
        decode_json(raw, 10 if reason == "too_large" else MAX)
    assert err.value.reason == reason


def test_decode_round_trip() -> None:
    ticks = decode_ticks(orjson.dumps(VALID_TICKS[4]), MAX)
    assert [t.ts for t in ticks] == [1, 2] and ticks[1].volume == 3.0
    assert decode_feedback(orjson.dumps(VALID_FEEDBACK[0]), MAX).text == "ok"


@pytest.mark.parametrize("name", sorted(p.name for p in SCHEMAS.glob("*.json")))
def test_every_schema_is_valid_json_schema(name: str) -> None:
    _validator(name)
