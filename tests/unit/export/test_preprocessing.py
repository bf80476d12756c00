"""The shared window normalisation: round trip, level independence, windowing."""

from __future__ import annotations

import numpy as np
import pytest

from export.preprocessing import denormalise_forecasts, normalise_targets, normalise_windows, sliding_windows


def test_round_trip_recovers_the_next_price() -> None:
    rng = np.random.default_rng(0)
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 200)))
    x, y = sliding_windows(prices, 60)
    z = normalise_targets(x[:, -1], y)
    np.testing.assert_allclose(denormalise_forecasts(x[:, -1], z), y, rtol=1e-6)


def test_normalisation_ignores_price_level_and_symbol() -> None:
    window = np.linspace(50.0, 55.0, 60)
    a = normalise_windows(window)
    b = normalise_windows(window * 123.4)
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert a.shape == (1, 60, 1) and a.dtype == np.float32 and a[0, -1, 0] == 0.0


def test_sliding_windows_pairs_each_window_with_the_next_value() -> None:
    x, y = sliding_windows(np.arange(10.0), 3)
    assert x.shape == (7, 3) and y.tolist() == [3, 4, 5, 6, 7, 8, 9]
    assert x[0].tolist() == [0, 1, 2] and x[-1].tolist() == [6, 7, 8]
    assert sliding_windows(np.arange(3.0), 3)[0].shape == (0, 3)


def test_bad_prices_are_refused() -> None:
    with pytest.raises(ValueError):
        normalise_windows([[1.0, 0.0, 2.0]])
