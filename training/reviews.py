"""Labelled review texts for the sentiment model: CSV reading, label rules, stratified split.

Label convention everywhere in training: ``1`` = negative (what the worker escalates),
``0`` = positive, so the model's single output is ``p_negative``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from training.errors import DataError

logger = logging.getLogger(__name__)

NEGATIVE, POSITIVE = 1, 0
_TEXT_DEFAULTS = (("Title", "Review Text"), ("review",), ("text",))
_LABEL_DEFAULTS = ("label", "sentiment", "Rating", "rating")
_POSITIVE_WORDS = {"pos", "positive", "1", "1.0", "true"}
_NEGATIVE_WORDS = {"neg", "negative", "0", "0.0", "false"}


@dataclass(frozen=True)
class LabelRule:
    """How a rating maps to a label: ``>= positive`` positive, ``<= negative`` negative, else dropped."""

    positive: float = 4.0
    negative: float = 2.0

    def describe(self, column: str) -> str:
        return (f"{column} >= {self.positive:g} positive, <= {self.negative:g} negative, "
                "ratings between dropped")


@dataclass(frozen=True)
class LabelledTexts:
    texts: list[str]
    labels: npt.NDArray[np.int64]
    description: dict[str, Any]

    def take(self, idx: npt.NDArray[np.int64]) -> LabelledTexts:
        return LabelledTexts([self.texts[i] for i in idx], self.labels[idx], self.description)


def split_columns(values: Sequence[str] | None) -> list[str]:
    """``--text-col`` may repeat and/or hold comma lists: ``Title,Review Text``."""
    return [c.strip() for v in values or [] for c in v.split(",") if c.strip()]


def _resolve(columns: list[str], text_cols: list[str], label_col: str | None,
             path: Path) -> tuple[list[str], str]:
    if not text_cols:
        text_cols = next((list(c) for c in _TEXT_DEFAULTS if all(x in columns for x in c)), [])
    label_col = label_col or next((c for c in _LABEL_DEFAULTS if c in columns), None)
    missing = [c for c in [*text_cols, label_col] if c is None or c not in columns]
    if missing or not text_cols:
        raise DataError(f"{path}: columns {missing or ['--text-col']} not found "
                        f"(have {', '.join(columns)}); set --text-col/--label-col")
    return text_cols, label_col  # type: ignore[return-value]


def labels_from(values: Any, rule: LabelRule) -> npt.NDArray[np.float64]:
    """Labels (1 negative, 0 positive, NaN dropped) from pos/neg words, 1/0 flags or ratings."""
    import pandas as pd

    numeric = pd.to_numeric(values, errors="coerce")
    seen = set(numeric.dropna().unique())
    if seen and not seen <= {0, 1}:
        out = np.full(len(values), np.nan)
        out[(numeric >= rule.positive).to_numpy()] = POSITIVE
        out[(numeric <= rule.negative).to_numpy()] = NEGATIVE
        return out
    words = values.astype(str).str.strip().str.lower()
    out = np.full(len(values), np.nan)
    out[words.isin(_POSITIVE_WORDS).to_numpy()] = POSITIVE
    out[words.isin(_NEGATIVE_WORDS).to_numpy()] = NEGATIVE
    return out


def _labelled_frame(path: Path, text_cols: Sequence[str] | None, label_col: str | None, rule: LabelRule,
                    limit: int | None, seed: int) -> tuple[Any, list[str], str, Any, npt.NDArray[np.float64],
                                                           npt.NDArray[np.bool_]]:
    """The CSV, its resolved columns, joined texts, labels and the mask of rows used."""
    import pandas as pd

    if not path.is_file():
        raise DataError(f"no such file: {path}")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    cols, label = _resolve(list(frame.columns), split_columns(text_cols), label_col, path)
    texts = frame[cols].agg(" ".join, axis=1).str.strip()
    labels = labels_from(frame[label], rule)
    keep = (texts != "").to_numpy() & ~np.isnan(labels)
    if limit and keep.sum() > limit:
        chosen = np.random.default_rng(seed).choice(np.flatnonzero(keep), size=limit, replace=False)
        keep = np.zeros_like(keep)
        keep[np.sort(chosen)] = True
    return frame, cols, label, texts, labels, keep


def read_reviews(path: Path, text_cols: Sequence[str] | None = None, label_col: str | None = None,
                 rule: LabelRule = LabelRule(), limit: int | None = None, seed: int = 0) -> LabelledTexts:
    """Texts (columns joined with a space) and labels; empty texts and neutral ratings dropped."""
    frame, cols, label, texts, labels, keep = _labelled_frame(path, text_cols, label_col, rule, limit, seed)
    y = labels[keep].astype(np.int64)
    if len(np.unique(y)) < 2:
        raise DataError(f"{path}: need both negative and positive rows after labelling, got {len(y)} rows")
    desc = {"file": path.name, "text_columns": cols, "label_column": label,
            "label_rule": rule.describe(label), "rows": int(len(frame)), "used": int(keep.sum()),
            "negative": int(y.sum()), "positive": int(len(y) - y.sum()), "limit": limit}
    logger.info("reviews file=%s used=%d negative=%d", path.name, desc["used"], desc["negative"])
    return LabelledTexts(texts[keep].tolist(), y, desc)


@dataclass(frozen=True)
class AuxTargets:
    """Finer targets than the binary label, for auxiliary heads trained beside the main one.

    ``labelled[i]`` belongs to row ``i`` of :func:`read_reviews`' result (same file, same
    arguments); ``between`` are the rows the label rule drops (rating 3), which carry aux
    targets only and are used for training only. 1 = the negative side, NaN = unknown.
    """

    names: tuple[str, ...]
    labelled: npt.NDArray[np.float32]
    between_texts: list[str]
    between: npt.NDArray[np.float32]


def read_aux_targets(path: Path, text_cols: Sequence[str] | None = None, label_col: str | None = None,
                     rule: LabelRule = LabelRule(), flag_col: str | None = None, limit: int | None = None,
                     seed: int = 0) -> AuxTargets:
    """Cumulative rating targets ``rating <= v`` (every rating value but the label cut and the top)
    and, with ``flag_col``, ``flag == 0`` (e.g. "not recommended")."""
    import pandas as pd

    frame, _, label, texts, labels, keep = _labelled_frame(path, text_cols, label_col, rule, limit, seed)
    rating = pd.to_numeric(frame[label], errors="coerce").to_numpy(np.float64)
    values = np.unique(rating[~np.isnan(rating)])
    if len(values) <= 2:
        raise DataError(f"{path}: auxiliary targets need a rating column, {label!r} has {len(values)} values")
    between = (texts != "").to_numpy() & np.isnan(labels) & ~np.isnan(rating)
    names: list[str] = []
    columns: list[npt.NDArray[np.float64]] = []
    for v in values[:-1]:
        if v != rule.negative:
            names.append(f"{label} <= {v:g}")
            columns.append((rating <= v).astype(np.float64))
    if flag_col:
        if flag_col not in frame.columns:
            raise DataError(f"{path}: column {flag_col!r} not found")
        flag = pd.to_numeric(frame[flag_col], errors="coerce").to_numpy(np.float64)
        names.append(f"{flag_col} == 0")
        columns.append(np.where(np.isnan(flag), np.nan, (flag == 0).astype(np.float64)))
    table = np.stack(columns, axis=1).astype(np.float32)
    table[np.isnan(rating)] = np.nan
    return AuxTargets(tuple(names), table[keep], texts[between].tolist(), table[between])


def stratified_split(labels: npt.NDArray[np.int64], fractions: Sequence[float] = (0.70, 0.15, 0.15),
                     seed: int = 0) -> dict[str, npt.NDArray[np.int64]]:
    """Disjoint train/val/test indices with the class ratio of ``labels`` in each part."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    total = float(sum(fractions))
    test = fractions[2] / total
    val = fractions[1] / total / (1.0 - test)
    rest, test_idx = train_test_split(idx, test_size=test, stratify=labels, random_state=seed)
    train_idx, val_idx = train_test_split(rest, test_size=val, stratify=labels[rest], random_state=seed)
    return {"train": np.sort(train_idx), "val": np.sort(val_idx), "test": np.sort(test_idx)}
