"""Property-based tests: no input makes a validator do anything but accept or raise InvalidMessage."""

from __future__ import annotations

import contextlib
import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.core.schemas import SYMBOL_RE, decode_feedback, decode_ticks, parse_feedback, parse_ticks
from streaming.errors import InvalidMessage

MAX = 1_048_576
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                       max_size=4),
    max_leaves=12)
tick_like = st.fixed_dictionaries(
    {"symbol": st.text(max_size=20) | st.sampled_from(["AAPL", "BRK.B", "^VIX"]),
     "ts": st.integers(-5, 2**60) | st.floats(allow_nan=False) | st.text(max_size=3),
     "price": st.floats() | st.integers(-10, 10) | st.text(max_size=3)},
    optional={"volume": st.floats() | st.none(), "extra": json_values})


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    for decode in (decode_ticks, decode_feedback):
        try:
            decode(raw, MAX)
        except InvalidMessage as exc:
            assert exc.reason and exc.detail


@settings(max_examples=500, deadline=None)
@given(tick_like)
def test_accepted_ticks_satisfy_the_contract(obj: dict) -> None:
    try:
        ticks = parse_ticks(obj)
    except InvalidMessage:
        return
    (tick,) = ticks
    assert SYMBOL_RE.fullmatch(tick.symbol)
    assert math.isfinite(tick.price) and tick.price > 0 and 0 <= tick.ts < 2**53
    assert tick.volume is None or (math.isfinite(tick.volume) and tick.volume >= 0)
    assert set(obj) <= {"symbol", "ts", "price", "volume"}


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_value_is_accepted_or_rejected_cleanly(value: object) -> None:
    raw = json.dumps(value).encode()  # stdlib: hypothesis ints may exceed 64 bits
    for decode in (decode_ticks, decode_feedback):
        with contextlib.suppress(InvalidMessage):
            decode(raw, MAX)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({"id": st.text(max_size=140), "ts": st.integers(-1, 2**54),
                              "text": st.text(max_size=50)},
                             optional={"channel": st.none() | st.text(max_size=5) | st.integers()}))
def test_accepted_feedback_satisfies_the_contract(obj: dict) -> None:
    try:
        msg = parse_feedback(obj)
    except InvalidMessage:
        return
    assert 1 <= len(msg.id) <= 128 and 1 <= len(msg.text) <= 20_000 and 0 <= msg.ts < 2**53
