"""The served detector: record-ratio score in [0, 1), flags, cooldown, state round trip."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from streaming.core.detector import DetectorConfig, DetectorState, ResidualDetector
from streaming.core.series_detector import COMPONENTS, SeriesConfig, SeriesDetector, SeriesState, nn_distance


def _noise(n: int, seed: int = 0, sigma: float = 1.0) -> list[float]:
    rng = random.Random(seed)
    return [10.0 + rng.gauss(0, sigma) for _ in range(n)]


def _feed(det: ResidualDetector, state: DetectorState, values: list[float]) -> list[float]:
    return [det.score_one(state, 0.0, value=v).score for v in values]


def test_no_score_during_warmup_even_for_huge_values() -> None:
    det, state = ResidualDetector(), DetectorState()
    scores = _feed(det, state, _noise(20) + [1e6])
    assert scores == [0.0] * 21


def test_scores_are_in_unit_interval_and_noise_rarely_flags() -> None:
    det, state = ResidualDetector(), DetectorState()
    values = _noise(20_000, seed=1)
    flags = 0
    for v in values:
        r = det.score_one(state, 0.0, value=v)
        assert 0.0 <= r.score < 1.0
        flags += r.is_anomaly
    # Records of Gaussian noise 1.5 times the recent record are rare: ~0.05 % of ticks at most.
    assert flags <= 10


def test_scale_free_the_same_series_in_other_units_scores_the_same() -> None:
    values = _noise(3000, seed=2)
    values[2500] += 8.0
    a = _feed(ResidualDetector(), DetectorState(), values)
    b = _feed(ResidualDetector(), DetectorState(), [1000.0 * v - 7.0 for v in values])
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    assert a[2500] == max(a) and a[2500] >= 0.7


def test_spike_flags_with_severity_then_cools_down() -> None:
    det, state = ResidualDetector(DetectorConfig(cooldown=3)), DetectorState()
    _feed(det, state, _noise(3000, seed=3))
    spike = det.score_one(state, 0.0, value=40.0)
    assert spike.is_anomaly and spike.severity in ("high", "critical") and spike.ratio > 10
    after = [det.score_one(state, 0.0, value=10.0) for _ in range(3)]
    assert not any(r.is_anomaly for r in after)  # the reversion is the same event (cooldown)


def test_a_second_anomaly_is_not_hidden_by_the_first() -> None:
    """A record raises the reference by at most ``grow``: the next spike still scores high."""
    det, state = ResidualDetector(DetectorConfig(cooldown=0)), DetectorState()
    values = _noise(4000, seed=4)
    values[3000] += 50.0
    values[3500] += 12.0
    scores = _feed(det, state, values)
    assert scores[3000] >= 0.7 and scores[3500] >= 0.6


def test_level_shift_and_variance_change_are_caught() -> None:
    base = _noise(4000, seed=5)
    shifted = base[:3000] + [v + 6.0 for v in base[3000:]]
    noisy = base[:3000] + [10.0 + 5.0 * (v - 10.0) for v in base[3000:]]
    for series in (shifted, noisy):
        scores = _feed(ResidualDetector(), DetectorState(), series)
        assert max(scores[3000:3050]) >= 0.6 > max(scores[500:2990])


def test_shape_anomaly_in_a_periodic_signal() -> None:
    """A distorted cycle with normal values and steps: only the subsequence neighbour sees it."""
    t = np.arange(12_000)
    x = np.sin(2 * np.pi * t / 100.0) + 0.01 * np.random.default_rng(6).normal(size=t.size)
    x[9000:9100] = np.sin(2 * np.pi * np.arange(100) / 50.0)  # one cycle at double frequency
    det = SeriesDetector(SeriesConfig(components=("shape",)))
    state = SeriesState()
    scores = np.array([det.update(state, float(v)) for v in x])
    assert 8990 <= int(np.argmax(scores[1000:])) + 1000 <= 9200


def test_one_distorted_stretch_fires_the_shape_component_less_often() -> None:
    """The discord persists while the stretch is inside the subsequence: held, it re-fires
    only while the discord grows (9 flags without the hold, 3 with it when written)."""
    t = np.arange(12_000)
    x = np.sin(2 * np.pi * t / 100.0) + 0.01 * np.random.default_rng(6).normal(size=t.size)
    x[9000:9100] = np.sin(2 * np.pi * np.arange(100) / 50.0)

    def flags(shape_refractory: float) -> int:
        det = SeriesDetector(SeriesConfig(components=("shape",), shape_refractory=shape_refractory))
        state = SeriesState()
        scores = np.array([det.update(state, float(v)) for v in x])
        return int((scores[8990:9300] >= 0.6).sum())

    held, unheld = flags(8.0), flags(0.0)
    assert 1 <= held <= unheld // 2


def test_constant_series_scores_zero_and_a_first_change_is_a_record() -> None:
    det, state = ResidualDetector(), DetectorState()
    scores = _feed(det, state, [5.0] * 500 + [6.0] + [5.0] * 100 + [15.0])
    assert max(scores[:500]) == 0.0 and scores[500] == 0.5  # a record of unknown size
    assert scores[-1] > 0.8  # ten times the first change


def test_nn_distance_finds_an_exact_repeat() -> None:
    seq = np.tile(np.array([0.0, 1.0, 3.0, 1.0]), 20)
    assert nn_distance(seq, 8) == pytest.approx(0.0, abs=1e-9)
    seq[-3] = 10.0
    assert nn_distance(seq, 8) > 5.0


def test_components_can_be_switched_off() -> None:
    det = SeriesDetector(SeriesConfig(components=("level",)))
    state = SeriesState()
    for v in _noise(200):
        ratios = det.ratios(state, v)
    assert len(ratios) == len(COMPONENTS) and all(r == 0.0 for r in ratios[1:])


def test_state_round_trip_through_json() -> None:
    det = ResidualDetector()
    a, values = DetectorState(), _noise(3000, seed=7)
    _feed(det, a, values[:2000])
    b = DetectorState.from_list(json.loads(json.dumps(a.to_list())))
    assert _feed(det, a, values[2000:]) == _feed(det, b, values[2000:])


def test_state_of_the_old_design_restarts() -> None:
    state = DetectorState.from_list([120, 0.001, 1e-4, 0])
    assert state.n == 0 and state.cooldown == 0


def test_residual_only_callers_score_the_residual_series() -> None:
    det, state = ResidualDetector(), DetectorState()
    rng = random.Random(8)
    for _ in range(2000):
        det.score_one(state, rng.gauss(0, 0.01))
    assert det.score_one(state, 0.3).is_anomaly


def test_severity_bands() -> None:
    det = ResidualDetector(DetectorConfig(threshold=0.5, bands=(2.0, 3.0, 5.0)))
    ratio = [1.0, 2.01, 3.01, 5.01]
    assert [det.severity(r / (1 + r)) for r in ratio] == ["low", "medium", "high", "critical"]


def test_forecast_residual_catches_repeated_spikes_of_the_same_size() -> None:
    """With a residual (the worker's LSTM), every 6σ price spike counts, not only the first."""
    det, state = ResidualDetector(), DetectorState()
    rng = random.Random(9)
    price, flagged = 100.0, []
    for i in range(3000):
        ret = rng.gauss(0, 0.001)
        spike = i % 500 == 250 and i > 500
        value = price * math.exp(ret + (0.006 if spike else 0.0))
        r = det.score_one(state, math.log(value / price), value=value)
        if r.is_anomaly:
            flagged.append(i)
        if not spike:
            price = value
    spikes = [i for i in range(3000) if i % 500 == 250 and i > 500]
    assert all(any(i <= f <= i + 1 for f in flagged) for i in spikes), (flagged, spikes)
    assert len(flagged) <= len(spikes) + 2


def _sessions(n_sessions: int, seed: int = 11, spike_at: tuple[int, int] | None = None
              ) -> list[tuple[float, float, float, int]]:
    """5-minute bars, 78 a session, the first 6 of each three times as volatile as midday:
    (ts in seconds, price, log residual of a naive forecast, slot since the open)."""
    rng = random.Random(seed)
    price, ts, rows = 100.0, 0.0, []
    for d in range(n_sessions):
        ts += 17.5 * 3600
        for j in range(78):
            ts += 300.0
            ret = rng.gauss(0, 0.003 if 1 <= j <= 6 else 0.001)
            if spike_at == (d, j):
                ret += 0.03  # 10σ of the open's scale
            new = price * math.exp(ret)
            rows.append((ts, new, math.log(new / price), j))
            price = new
    return rows


def _flags(config: DetectorConfig, rows: list[tuple[float, float, float, int]]) -> list[tuple[int, int]]:
    det, state = ResidualDetector(config), DetectorState()
    out = []
    for i, (ts, price, resid, j) in enumerate(rows):
        if det.score_one(state, resid, ts=ts, value=price).is_anomaly:
            out.append((i // 78, j))
    return out


def test_the_open_is_scored_against_its_own_volatility() -> None:
    """A volatile open is ordinary: without per-slot scales it carries the alerts."""
    rows = _sessions(60)
    at_open = [f for f in _flags(DetectorConfig(), rows) if 1 <= f[1] <= 6 and f[0] >= 10]
    unscaled = [f for f in _flags(DetectorConfig(open_slots=0), rows) if 1 <= f[1] <= 6 and f[0] >= 10]
    assert len(unscaled) >= 10 and len(at_open) <= len(unscaled) // 5, (len(at_open), len(unscaled))


def test_a_spike_at_the_open_still_flags() -> None:
    flags = _flags(DetectorConfig(), _sessions(40, spike_at=(30, 3)))
    assert (30, 3) in flags or (30, 4) in flags


def test_session_state_round_trip_through_json() -> None:
    det, rows = ResidualDetector(), _sessions(30)
    a = DetectorState()
    for ts, price, resid, _ in rows[:1500]:
        det.score_one(a, resid, ts=ts, value=price)
    b = DetectorState.from_list(json.loads(json.dumps(a.to_list())))
    assert b.sessions == a.sessions > 5 and b.slot_abs == a.slot_abs
    for ts, price, resid, _ in rows[1500:]:
        assert det.score_one(a, resid, ts=ts, value=price) == det.score_one(b, resid, ts=ts, value=price)


def test_a_state_copy_is_equal_and_independent() -> None:
    """The batch's undo point: every field copied, nothing shared that scoring mutates."""
    from streaming.core.windows import SymbolState

    det = ResidualDetector()
    rng = random.Random(3)
    state, price = SymbolState(), 100.0

    def advance(n: int, start: int) -> None:
        nonlocal price
        for i in range(start, start + n):
            price *= math.exp(rng.gauss(0, 0.002))
            state.push(price, i * 60_000)
            det.score_one(state.detector, rng.gauss(0, 0.002), ts=i * 60_000, value=price)
            vol = state.volume = state.volume or DetectorState()
            det.score_one(vol, math.nan, ts=i * 60_000, value=rng.uniform(5, 9))

    advance(600, 0)
    state.detector.slot_abs.extend([0.1, 0.2])  # the open-slot scales are copied too
    saved = state.to_bytes()
    copy = state.copy()
    assert copy == state and copy.to_bytes() == saved
    advance(50, 600)
    state.detector.slot_abs[0] = 9.0
    assert copy.to_bytes() == saved and copy != state


def test_a_series_copy_keeps_its_full_histories_while_the_original_moves_on() -> None:
    """Copies share the history arrays, so no append may change one in place, at the cap too."""
    cfg = SeriesConfig(components=(*SeriesConfig().components, "fine"), shape_hist=64, shape_len=8,
                       fine_hist=32, fine_len=4)
    det, state, rng = SeriesDetector(cfg), SeriesState(), random.Random(5)
    for _ in range(2_000):  # far past both caps: 80 decimated points, 40 raw ones
        det.update(state, rng.gauss(0, 1))
    assert len(state.shape_buf) == 80 and len(state.fine_buf) == 40
    copy, saved = state.copy(), state.to_list()
    det.update(state, 5.0)
    for _ in range(7):
        det.update(state, rng.gauss(0, 1))
    assert copy.to_list() == saved and state.to_list() != saved
    assert len(state.shape_buf) == 80 and len(state.fine_buf) == 40
    assert state.fine_buf[-8] == 5.0  # the newest point lands at the end, the oldest left
