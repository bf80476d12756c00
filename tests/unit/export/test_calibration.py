"""Calibration in numpy: fitting on validation, applying at serving time, ECE."""

from __future__ import annotations

import numpy as np
import pytest

from export.calibration import (
    CALIBRATION_ID,
    apply_calibration,
    expected_calibration_error,
    fit_calibration,
    logit,
    reliability_table,
    sigmoid,
)


def _overconfident(n: int = 20000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores whose logits are 3x too large and shifted by +1 relative to the truth."""
    rng = np.random.default_rng(seed)
    true_logit = rng.normal(0.0, 2.0, n)
    y = (rng.random(n) < sigmoid(true_logit)).astype(np.int64)
    return sigmoid(3.0 * true_logit + 1.0), y


def test_fit_recovers_temperature_and_bias() -> None:
    p, y = _overconfident()
    cal = fit_calibration(p, y)
    assert cal["id"] == CALIBRATION_ID and cal["n"] == len(y)
    assert cal["temperature"] == pytest.approx(3.0, rel=0.06)
    assert cal["bias"] == pytest.approx(1.0, abs=0.15)
    assert expected_calibration_error(y, p) > 0.05
    assert expected_calibration_error(y, apply_calibration(p, cal)) < 0.015


def test_temperature_only_has_zero_bias() -> None:
    p, y = _overconfident()
    assert fit_calibration(p, y, with_bias=False)["bias"] == 0.0


def test_apply_is_monotone_and_identity_without_a_block() -> None:
    p = np.array([0.0, 1e-9, 0.2, 0.5, 0.9, 1.0], dtype=np.float32)
    assert apply_calibration(p, {}).dtype == np.float64
    assert np.array_equal(apply_calibration(p, None), p.astype(np.float64))
    out = apply_calibration(p, {"id": CALIBRATION_ID, "temperature": 2.0, "bias": 0.5})
    assert np.all(np.diff(out) >= 0) and np.all((out > 0) & (out < 1))
    assert out[3] == pytest.approx(float(sigmoid((0.0 - 0.5) / 2.0)))
    assert np.allclose(sigmoid(logit([0.1, 0.7])), [0.1, 0.7])


@pytest.mark.parametrize("bad", [{"id": "isotonic_v9", "temperature": 1.0, "bias": 0.0},
                                 {"id": CALIBRATION_ID, "temperature": 0.0, "bias": 0.0},
                                 {"id": CALIBRATION_ID, "temperature": float("nan"), "bias": 0.0}])
def test_unusable_blocks_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        apply_calibration(np.array([0.5]), bad)


def test_scores_that_rank_backwards_are_refused() -> None:
    p, y = _overconfident()
    with pytest.raises(ValueError, match="slope"):
        fit_calibration(1.0 - p, y)


def test_ece_by_hand() -> None:
    y = np.array([1, 0, 1, 1])
    p = np.array([0.1, 0.1, 0.9, 0.9])
    # bin of 0.1: observed 0.5, |0.1 - 0.5| * 2; bin of 0.9: observed 1.0, |0.9 - 1.0| * 2
    assert expected_calibration_error(y, p, 15) == pytest.approx((0.4 * 2 + 0.1 * 2) / 4)
    table = reliability_table(y, p, 15)
    assert len(table) == 15 and sum(r["n"] for r in table) == 4
    assert expected_calibration_error(np.array([0, 1]), np.array([0.0, 1.0])) == 0.0
