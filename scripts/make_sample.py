"""Regenerate ``data/samples/`` from ``../shared/data``, so the shipped sample's provenance is reproducible.

The sample is what a fresh clone replays without the shared data: a few days of real
5-minute bars (a big-tech earnings week with large real gaps) and a few hundred real reviews
of mixed sentiment. Rows are copied unchanged, with the source's columns, so the same readers work.

    python scripts/make_sample.py [--shared ../shared/data] [--out data/samples]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import random
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SYMBOLS = ("AAPL", "AMZN", "GOOG", "JPM", "META", "MSFT", "NVDA", "QQQ", "SPY", "TSLA")
# 2025-10-20 .. 2025-10-31: warm-up days, then TSLA (Oct 23), NVDA (Oct 29), META/GOOG (Oct 30)
# and AMZN (Oct 31) open on earnings gaps of 4-12 %.
FIRST_DAY, LAST_DAY = "2025-10-20", "2025-10-31"
REVIEWS = "womens_clothing_ecommerce_reviews.csv.gz"
# Stars -> how many reviews to keep (a seeded random draw among those with text, then put back
# in the source's order so ratings interleave): one in five negative (the source: one in nine),
# so the demo escalates some feedback without drowning the price alerts.
PER_RATING = {1: 25, 2: 35, 3: 40, 4: 80, 5: 120}
SEED = 15


def copy_bars(shared: Path, out: Path) -> int:
    """Bars of the chosen days, unchanged; returns the number of rows written."""
    src_dir, dst_dir, rows = shared / "prices" / "intraday" / "recent_5min", out / "prices", 0
    dst_dir.mkdir(parents=True, exist_ok=True)
    for sym in SYMBOLS:
        with (src_dir / f"{sym}_5min.csv").open(newline="") as src, \
                (dst_dir / f"{sym}_5min.csv").open("w", newline="") as dst:
            lines = src.readlines()
            kept = [ln for ln in lines[1:] if FIRST_DAY <= ln[:10] <= LAST_DAY]
            dst.writelines([lines[0], *kept])
            rows += len(kept)
    return rows


def copy_reviews(shared: Path, out: Path) -> int:
    """A seeded random draw of reviews with text per star rating, in source order, same columns, gzip."""
    with gzip.open(shared / "reviews" / REVIEWS, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = list(reader)
    rating, text = header.index("Rating"), header.index("Review Text")
    rng, picked = random.Random(SEED), []
    for stars, count in PER_RATING.items():
        pool = [i for i, row in enumerate(rows) if int(row[rating]) == stars and row[text].strip()]
        picked += rng.sample(pool, count)
    kept = [rows[i] for i in sorted(picked)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(kept)
    (out / "reviews").mkdir(parents=True, exist_ok=True)
    # mtime=0: the same input gives byte-identical output (a clean git diff on regeneration)
    with (out / "reviews" / REVIEWS).open("wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
        gz.write(buf.getvalue().encode("utf-8"))
    return len(kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "data" / "samples")
    args = parser.parse_args()
    bars = copy_bars(args.shared, args.out)
    reviews = copy_reviews(args.shared, args.out)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"wrote {bars} bars ({len(SYMBOLS)} symbols, {FIRST_DAY} .. {LAST_DAY}) and {reviews} reviews "
          f"to {args.out} ({size / 1024:.0f} KiB in all)")


if __name__ == "__main__":
    main()
