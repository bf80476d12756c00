from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from streaming.evaluation.harness import find_csvs, read_labels, read_series
from streaming.sources.synthetic import ANOMALY_KINDS, SyntheticConfig, generate, iter_noise, write_suite

CFG = SyntheticConfig(symbols=6, ticks_per_symbol=3000, anomaly_rate=0.01, seed=3)


def _series(cfg: SyntheticConfig = CFG) -> tuple[dict[str, list[float]], dict[str, list[list[object]]]]:
    ticks, labels = generate(cfg)
    prices: dict[str, list[float]] = {}
    for t in ticks:
        prices.setdefault(t.symbol, []).append(t.price)
    return prices, labels.windows


def _index(ts: object, cfg: SyntheticConfig = CFG) -> int:
    return (int(ts) - cfg.start_ts) // cfg.step_ms  # type: ignore[call-overload]


def test_generation_is_deterministic_and_interleaved() -> None:
    a, b = generate(CFG), generate(CFG)
    assert a[0] == b[0] and a[1].windows == b[1].windows
    assert [t.symbol for t in a[0][:6]] == [f"SYN{i:04d}" for i in range(6)]


def test_every_kind_appears_with_windows_apart_and_after_warmup() -> None:
    _, windows = _series()
    kinds = {w[2] for ws in windows.values() for w in ws}
    assert kinds == set(ANOMALY_KINDS)
    for ws in windows.values():
        starts = [_index(w[0]) for w in ws]
        assert starts[0] >= CFG.warmup
        for prev, nxt in zip(ws, ws[1:], strict=False):
            assert _index(nxt[0]) - _index(prev[1]) > CFG.spacing


@pytest.mark.parametrize("kind", ANOMALY_KINDS)
def test_each_kind_has_its_signature(kind: str) -> None:
    prices, windows = _series()
    checked = 0
    for symbol, ws in windows.items():
        p = prices[symbol]
        r = [math.log(p[i] / p[i - 1]) / CFG.sigma for i in range(1, len(p))]  # r[i-1]: return into i
        for start, end, k in ws:
            if k != kind:
                continue
            i0, i1 = _index(start), _index(end)
            checked += 1
            if kind == "spike":
                assert i1 == i0 + 1 and abs(r[i0 - 1]) > 2.5 and r[i0 - 1] * r[i0] < 0
            elif kind == "level_shift":
                assert abs(r[i0 - 1]) > 3.0 and i1 - i0 == 4
            elif kind == "stuck":
                assert len(set(p[i0 - 1:i1])) == 1 and p[i1] != p[i1 - 1]
            elif kind == "volatility_burst":
                inside = sum(x * x for x in r[i0 - 1:i1]) / (i1 - i0 + 1)
                assert inside > 4.0  # variance ~16x inside
            else:
                assert abs(sum(r[i0 - 1:i1])) > 0.25 * CFG.drift_ticks
    assert checked > 0


def test_noise_has_no_events_and_its_own_volatility() -> None:
    ticks = list(iter_noise("N", 2000, CFG))
    r = [math.log(b.price / a.price) for a, b in zip(ticks, ticks[1:], strict=False)]
    assert max(abs(x) for x in r) < 5 * CFG.sigma
    assert 0.9 < (sum(x * x for x in r) / len(r)) ** 0.5 / CFG.sigma < 1.1


def test_suite_is_a_harness_input_tree(tmp_path: Path) -> None:
    labels_path = write_suite(tmp_path, SyntheticConfig(symbols=2, ticks_per_symbol=500), noise_series=1)
    files = [p.relative_to(tmp_path).as_posix() for p in find_csvs(tmp_path)]
    assert files == ["labelled/SYN0000.csv", "labelled/SYN0001.csv", "noise/NOISE0000.csv"]
    labels = read_labels(labels_path)
    assert set(labels) == set(files) and labels["noise/NOISE0000.csv"] == []
    series = read_series(tmp_path / files[0], tmp_path)
    assert series.values.size == 500 and series.rel == files[0]
    assert json.loads(labels_path.read_text())["labelled/SYN0000.csv"] == [
        [int(w.start), int(w.end), w.kind] for w in labels["labelled/SYN0000.csv"]]
