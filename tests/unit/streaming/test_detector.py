from __future__ import annotations

import random

from streaming.detector import DetectorConfig, DetectorState, ResidualDetector


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
    assert flags <= 2  # 6σ on 20k normal draws: expected ~0.04


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


def test_outlier_does_not_inflate_scale() -> None:
    det, state = ResidualDetector(DetectorConfig(cooldown=0)), DetectorState()
    _warm(det, state)
    sigma_before = det.sigma(state)
    det.score_one(state, 0.5)
    assert det.sigma(state) == sigma_before
    assert det.score_one(state, 0.1).is_anomaly


def test_state_round_trip() -> None:
    det, state = ResidualDetector(), DetectorState()
    _warm(det, state, n=50)
    copy = DetectorState.from_list(state.to_list())
    assert copy == state
    assert det.score_one(copy, 0.03) == det.score_one(state, 0.03)


def test_severity_bands() -> None:
    det = ResidualDetector(DetectorConfig(threshold=6.0))
    assert [det.severity(s) for s in (6, 8, 10, 15)] == ["low", "medium", "high", "critical"]
