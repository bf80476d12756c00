from __future__ import annotations

import json
import random

from streaming.core.detector import DetectorConfig, DetectorState, ResidualDetector


def _warm(detector: ResidualDetector, state: DetectorState, n: int = 200, sigma: float = 0.01,
          seed: int = 0) -> random.Random:
    rng = random.Random(seed)
    for _ in range(n):
        detector.score_one(state, rng.gauss(0, sigma))
    return rng


def test_no_flag_during_warmup_even_for_huge_residuals() -> None:
    det, state = ResidualDetector(DetectorConfig(warmup=30)), DetectorState()
    _warm(det, state, n=10)
    assert not det.score_one(state, 1.0).is_anomaly


def test_no_flag_on_gaussian_noise() -> None:
    det, state = ResidualDetector(), DetectorState()
    rng = _warm(det, state)
    flags = sum(det.score_one(state, rng.gauss(0, 0.01)).is_anomaly for _ in range(20_000))
    # 6σ point/pair statistics: ~0.1 expected; the drift CUSUM adds ~0.3 per 1,000 ticks.
    assert flags <= 15


def test_flags_a_spike_with_severity_from_score() -> None:
    det, state = ResidualDetector(), DetectorState()
    _warm(det, state)
    result = det.score_one(state, 0.2)  # ~20σ
    assert result.is_anomaly and result.severity == "critical" and result.score > 15


def test_cooldown_rearms_after_n_ticks() -> None:
    det, state = ResidualDetector(DetectorConfig(cooldown=3)), DetectorState()
    rng = _warm(det, state)
    assert det.score_one(state, 0.2).is_anomaly
    assert not det.score_one(state, -0.2).is_anomaly  # the reversal is the same event
    for _ in range(2):
        det.score_one(state, rng.gauss(0, 0.01))
    assert det.score_one(state, 0.2).is_anomaly


def test_one_alert_per_event_until_the_score_falls() -> None:
    """Hysteresis: a sustained excursion fires once, not once per cooldown period."""
    det, state = ResidualDetector(DetectorConfig(cooldown=2, drift_h=0)), DetectorState()
    rng = _warm(det, state)
    flags = [det.score_one(state, 0.1 * (1 if i % 2 else -1)).is_anomaly for i in range(20)]
    assert sum(flags) == 1
    det.score_one(state, rng.gauss(0, 0.001))  # quiet: re-arms (the cooldown is over)
    # 20 excursions in a row were taken as a new regime (``rebase``), so sigma grew: 1.0 is still far out.
    assert det.score_one(state, 1.0).is_anomaly


def test_outlier_does_not_inflate_scale() -> None:
    det, state = ResidualDetector(DetectorConfig(cooldown=0)), DetectorState()
    _warm(det, state)
    sigma_before = det.sigma(state)
    det.score_one(state, 0.5)
    assert det.sigma(state) == sigma_before
    det.score_one(state, 0.0)  # one quiet tick re-arms (hysteresis), see the test above
    assert det.score_one(state, 0.1).is_anomaly


def test_near_miss_is_not_learned_either() -> None:
    det, state = ResidualDetector(), DetectorState()
    _warm(det, state)
    sigma_before = det.sigma(state)
    assert not det.score_one(state, 5 * sigma_before + state.mean).is_anomaly
    assert det.sigma(state) == sigma_before


def test_spike_and_revert_is_caught_on_the_reverting_tick() -> None:
    """A 6σ spike the noise pulled to 5σ: the pair statistic sees (5 + 4.5) / √2 ≈ 6.7σ."""
    det, state = ResidualDetector(), DetectorState()
    _warm(det, state)
    sigma, mean = det.sigma(state), state.mean
    first = det.score_one(state, mean + 5.0 * sigma)
    second = det.score_one(state, mean - 4.5 * sigma)
    assert not first.is_anomaly and second.is_anomaly and 6.5 < second.score < 7.0


def test_stuck_feed_flags_once_after_a_run() -> None:
    det, state = ResidualDetector(), DetectorState()
    rng = random.Random(1)
    price = 100.0
    for _ in range(200):
        price *= 1 + rng.gauss(0, 0.001)
        det.score_one(state, rng.gauss(0, 0.001), value=price)
    flags = [det.score_one(state, 0.0, value=price).is_anomaly for _ in range(30)]
    assert sum(flags) == 1 and flags.index(True) < 10


def test_slow_drift_is_caught_by_the_cusum() -> None:
    det, state = ResidualDetector(), DetectorState()
    rng = _warm(det, state, sigma=0.001)
    flags = [det.score_one(state, 0.001 * (0.6 + rng.gauss(0, 1))).is_anomaly for _ in range(80)]
    assert any(flags) and not any(flags[:10])
    assert not ResidualDetector(DetectorConfig(drift_h=0)).config.drift_h


def _gapped(det: ResidualDetector, state: DetectorState, days: int, gap_size: float,
            rng: random.Random) -> list[bool]:
    """``days`` sessions of 78 five-minute bars; the first bar of each jumps by ``gap_size``."""
    flags, ts = [], 0
    for day in range(days):
        ts = day * 86_400_000
        for bar in range(78):
            r = rng.gauss(0, 0.001) + (gap_size * rng.choice((-1, 1)) if bar == 0 else 0.0)
            flags.append(det.score_one(state, r, ts=ts + bar * 300_000).is_anomaly)
    return flags


def test_session_gaps_are_scored_against_gap_statistics() -> None:
    rng = random.Random(3)
    plain = ResidualDetector(DetectorConfig(gap_factor=0))
    assert sum(_gapped(plain, DetectorState(), 20, 0.01, rng)) >= 10  # every open fires
    det, state = ResidualDetector(), DetectorState()
    assert sum(_gapped(det, state, 20, 0.01, rng)) == 0
    assert state.gap_n == 19 and state.gap_mean + state.gap_var ** 0.5 > 1e-3
    flags = _gapped(det, state, 1, 0.2, rng)  # an opening gap 20x the usual one
    assert flags[0] and sum(flags) == 1


def test_state_round_trip() -> None:
    det, state = ResidualDetector(), DetectorState()
    _warm(det, state, n=50)
    det.score_one(state, 0.001, ts=1_000, value=101.0)
    copy = DetectorState.from_list(json.loads(json.dumps(state.to_list())))
    assert copy == state and len(state.to_list()) <= 20
    assert det.score_one(copy, 0.03, ts=2_000, value=99.0) == det.score_one(state, 0.03, ts=2_000,
                                                                            value=99.0)


def test_old_four_element_state_still_loads() -> None:
    state = DetectorState.from_list([40, 0.001, 1e-6, 2])
    assert (state.n, state.mean, state.var, state.cooldown) == (40, 0.001, 1e-6, 2)
    assert ResidualDetector().score_one(state, 0.0).score < 2


def test_severity_bands() -> None:
    det = ResidualDetector(DetectorConfig(threshold=6.0))
    assert [det.severity(s) for s in (6, 8, 10, 15)] == ["low", "medium", "high", "critical"]
