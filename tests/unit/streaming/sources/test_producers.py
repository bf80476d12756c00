"""Producer message building and replay readers (no broker)."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from streaming.core.schemas import Tick, decode_ticks
from streaming.errors import ConfigError
from streaming.sources.producers import Pacer, Rebaser, tick_messages
from streaming.sources.replay import merged_ticks, price_files, read_feedback, symbol_from_path

DATA = Path(__file__).resolve().parents[5] / "shared" / "data"


def test_bundles_equal_the_same_ticks_one_by_one() -> None:
    ticks = [Tick("A", i, 1.0 + i, None) for i in range(1, 8)] + [Tick("B", 3, 2.0, 5.0)]
    singles = [t for _, _, build in tick_messages(ticks, 1) for t in decode_ticks(build(), 10**6)]
    bundled = [t for _, _, build in tick_messages(ticks, 3) for t in decode_ticks(build(), 10**6)]
    assert sorted(singles, key=lambda t: (t.symbol, t.ts)) == sorted(bundled, key=lambda t: (t.symbol, t.ts))
    assert max(len(orjson.loads(b())["ticks"]) for _, _, b in tick_messages(ticks, 3)) == 3


def test_rebaser_keeps_per_symbol_ts_strictly_increasing() -> None:
    rebase = Rebaser()
    stamped = [rebase.stamp([Tick("A", 5, 1.0)])[0].ts for _ in range(50)]
    assert all(b > a for a, b in zip(stamped, stamped[1:], strict=False))
    assert Rebaser(keep=True).stamp([Tick("A", 5, 1.0)])[0].ts == 5


def test_price_csvs_daily_and_intraday(tmp_path: Path) -> None:
    (tmp_path / "AAA.csv").write_text("Date,Close,High,Low,Open,Volume\n2020-03-02,10,11,9,10,100\n"
                                      "2020-03-03,11,12,10,10,200\n")
    with gzip.open(tmp_path / "BBB_1min.csv.gz", "wt") as fh:
        fh.write("datetime,open,high,low,close,volume\n2020-03-02 09:31:00,5,5,5,5.5,10\n")
    files = price_files(tmp_path)
    assert [symbol_from_path(p) for p in files] == ["AAA", "BBB"]
    ticks = list(merged_ticks(files))
    assert [t.symbol for t in ticks] == ["AAA", "BBB", "AAA"]  # merged by time (midnight UTC < 09:31 ET)
    assert ticks[1].price == 5.5 and ticks[0].volume == 100.0


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        price_files(tmp_path / "nope")
    with pytest.raises(ConfigError, match="no price CSV"):
        price_files(tmp_path)


@pytest.mark.skipif(not DATA.is_dir(), reason="shared data not beside the checkout")
def test_real_review_file_reads_title_and_body() -> None:
    first = next(read_feedback(DATA / "reviews" / "womens_clothing_ecommerce_reviews.csv.gz", 1))
    assert first.text and first.id.startswith("womens_clothing")


def test_rate_pacing_turns_a_session_gap_into_a_pause() -> None:
    pacer = Pacer(rate=100.0, keep_gaps=True)  # 10 ms per message, 3 symbols per bar
    bar, night = 300_000, 17 * 3_600_000
    day = [t for i in range(20) for t in [i * bar] * 3]
    pauses = [pacer.gap_pause(ts) for ts in day]
    assert pauses == [0.0] * len(day)  # ordinary steps: no pause
    opening = [pacer.gap_pause(ts) for ts in [day[-1] + night] * 3]
    # The open waits 15 usual per-symbol steps (3 messages x 10 ms each), once, not per symbol.
    assert opening[0] == pytest.approx(15 * 3 * 0.01) and opening[1:] == [0.0, 0.0]
    assert pacer.gaps == 1
    # The next ordinary step is not a gap: the night did not become the usual step.
    assert pacer.gap_pause(day[-1] + night + bar) == 0.0


def test_a_session_gap_pauses_even_when_sending_runs_behind() -> None:
    """On a busy machine the sender falls behind its schedule; the backlog must not swallow the
    close's pause, or the re-stamped open looks like any other tick and every symbol alerts."""
    import asyncio
    import time

    pacer = Pacer(rate=1000.0, keep_gaps=True)  # 1 ms per message, one symbol
    bar, night = 300_000, 17 * 3_600_000

    async def send(ts_list: list[int]) -> None:
        for ts in ts_list:
            await pacer.wait(ts)

    asyncio.run(send([i * bar for i in range(50)]))
    pacer.next_at -= 5.0  # five seconds behind schedule
    start = time.monotonic()
    asyncio.run(send([49 * bar + night]))
    assert pacer.gaps == 1 and time.monotonic() - start >= 0.9 * Pacer.GAP_PAUSE_STEPS * 0.001
