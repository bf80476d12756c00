"""Argument parsers of ``sentinel train|evaluate|export``, added to the one ``sentinel`` CLI.

Only argparse and the standard library are imported here: handlers import
training.commands (and through it TensorFlow, pandas, matplotlib) when they run.
Each handler returns an exit code; expected failures raise SentinelError subclasses.
"""

from __future__ import annotations

import argparse
from typing import Any

FORECAST_ARCHS = ("lstm", "stacked", "bidirectional")  # = training.models.FORECAST_ARCHS
SENTIMENT_ARCHS = ("lstm", "bidirectional")
SENTIMENT_POOLING = ("last", "maxmean")  # = training.models.SENTIMENT_POOLING
DEFAULT_CACHE = ".sentinel/cache/yfinance"


def _lazy(name: str) -> Any:
    """A handler that imports training.commands only when called."""
    def handler(args: argparse.Namespace) -> int:
        from training import commands

        return int(getattr(commands, name)(args))

    handler.__name__ = name
    return handler


def _common_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int, help="maximum epochs (early stopping usually ends sooner)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--patience", type=int, help="early-stopping patience in epochs")
    p.add_argument("--dropout", type=float)
    p.add_argument("--units", type=int, help="LSTM units")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--report", metavar="DIR", help="write PNG plots here")
    p.add_argument("--export-to", metavar="DIR", help="also export ONNX + manifest to DIR/<name>/<version>/")
    p.add_argument("--run-dir", metavar="DIR",
                   help="where to keep the Keras model (default runs/<kind>-<time>)")
    p.add_argument("--tensorboard", metavar="DIR", help="write TensorBoard logs here")


def _text_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--csv", required=True, help="labelled CSV (plain or .gz)")
    p.add_argument("--text-col", action="append", metavar="COL",
                   help="text column(s), repeatable or comma-separated; joined with a space "
                        "(default: Title + Review Text, else review, else text)")
    p.add_argument("--label-col", help="label or rating column (default: label, sentiment, Rating, rating)")
    p.add_argument("--rating-positive", type=float, default=4.0, help="numeric ratings >= this are positive")
    p.add_argument("--rating-negative", type=float, default=2.0,
                   help="numeric ratings <= this are negative; ratings between are dropped")
    p.add_argument("--limit", type=int, help="use a seeded random sample of N labelled rows (quick runs)")


def add_train_parsers(subparsers: Any) -> Any:
    """``sentinel train forecast|sentiment``."""
    train = subparsers.add_parser("train", help="train a model (needs the [train] extra)")
    sub = train.add_subparsers(dest="train_kind", required=True, metavar="forecast|sentiment")
    f = sub.add_parser("forecast", help="price-forecast LSTM on daily closes")
    f.add_argument("--csv-dir", help="directory of price CSVs (Date,Close or datetime,close; .csv/.csv.gz)")
    f.add_argument("--tickers", help="comma list: with --csv-dir a filter, else downloaded with yfinance")
    f.add_argument("--start", help="yfinance start date YYYY-MM-DD (default: 10 years back)")
    f.add_argument("--end", help="yfinance end date YYYY-MM-DD")
    f.add_argument("--cache-dir", default=DEFAULT_CACHE, help="yfinance download cache")
    f.add_argument("--eval-csv-dir", help="extra tickers to evaluate on (all windows; never trained on)")
    f.add_argument("--arch", choices=FORECAST_ARCHS, default="lstm")
    f.add_argument("--window", type=int, default=60, help="window length (the served contract is 60)")
    f.add_argument("--grid", action="store_true",
                   help="run the grid (window x units x learning rate) and write a results table instead")
    _common_train(f)
    f.set_defaults(func=_lazy("train_forecast"), epochs=30, patience=5, dropout=0.0, units=100)
    s = sub.add_parser("sentiment", help="feedback-sentiment LSTM on labelled reviews")
    _text_options(s)
    s.add_argument("--max-len", type=int, default=200, help="tokens per text (left-padded/truncated)")
    s.add_argument("--vocab-size", type=int, default=20000, help="vocabulary cap incl. <pad>, <oov>")
    s.add_argument("--min-count", type=int, default=2, help="minimum training-set count of a word")
    s.add_argument("--embed-dim", type=int, default=100)
    s.add_argument("--arch", choices=SENTIMENT_ARCHS, default="lstm")
    s.add_argument("--embeddings", metavar="PATH", help="pre-trained GloVe-format text file (.txt or .gz)")
    s.add_argument("--target-recall", type=float, default=0.90,
                   help="negative recall the escalation threshold must reach on validation")
    s.add_argument("--recall-confidence", type=float, default=0.0, metavar="P",
                   help="the threshold's recall must reach --target-recall as a one-sided lower bound "
                        "at this confidence (e.g. 0.9), not just as a point estimate (0 = point)")
    s.add_argument("--refit-folds", type=int, default=0, metavar="K",
                   help="cross-fitted release: K fold models over train + validation give out-of-fold "
                        "scores for calibration and threshold, the model is refitted on both for "
                        "--epochs (no early stopping); 0 = one validation part")
    s.add_argument("--folds-only", action="store_true",
                   help="with --refit-folds: stop after the out-of-fold scores (the test part is not scored)")
    s.add_argument("--pooling", choices=SENTIMENT_POOLING, default="last",
                   help="LSTM summary: last hidden state, or max+mean over all hidden states")
    s.add_argument("--ngrams", type=int, default=0, metavar="N",
                   help="wide branch: a linear model on hashed word 1..N-grams beside the LSTM (0 = none)")
    s.add_argument("--ngram-buckets", type=int, default=1 << 18, help="hash buckets of the 2..N-grams")
    s.add_argument("--ngram-window", type=int, default=0,
                   help="n-grams from the last N tokens (default: --max-len; longer texts, e.g. IMDB)")
    s.add_argument("--wide-nb", choices=("auto", "no", "yes"), default="auto",
                   help="warm start of the wide branch with Naive-Bayes-scaled features "
                        "(auto: whichever scores better on validation)")
    s.add_argument("--wide-c", default="1,4,16", metavar="C[,C...]",
                   help="warm-start regularisation candidates, chosen on validation (one = fixed)")
    s.add_argument("--ema", type=float, default=0.0, metavar="M",
                   help="with --aux: end on the exponential moving average of the weights at momentum M "
                        "per step (e.g. 0.99; 0 = the last step's weights)")
    s.add_argument("--wide-l2", type=float, default=0.0, help="L2 penalty on the wide branch's weights")
    s.add_argument("--pretrain", action="append", default=[], metavar="CSV[:COLS]",
                   help="language-model pretraining of the embedding + LSTM on this unlabelled text "
                        "(repeatable; the labelled file's test texts are always left out; cached)")
    s.add_argument("--pretrain-epochs", type=int, default=3)
    s.add_argument("--pretrain-max-texts", type=int, default=0, metavar="N",
                   help="a seeded sample of N texts per --pretrain corpus (0 = all)")
    s.add_argument("--freeze-epochs", type=int, default=1,
                   help="after pretraining: epochs with the embedding + LSTM frozen")
    s.add_argument("--aux", action="store_true",
                   help="auxiliary heads on the cumulative ratings (rating <= v), trained beside the main "
                        "head and dropped from the export; rows between the label cuts join training")
    s.add_argument("--aux-flag-col", metavar="COL",
                   help="with --aux: also a head on COL == 0 (e.g. \"Recommended IND\")")
    s.add_argument("--export-heads", metavar="NAMES", default="",
                   help="with --aux: comma list of aux heads (e.g. \"Rating <= 1,Rating <= 3\") whose logits "
                        "are averaged with the main one in the exported score; the graph is unchanged")
    s.add_argument("--aux-weight", type=float, default=0.5, help="loss weight per aux head (main: 1)")
    s.add_argument("--lm-cache", default=".sentinel/lm", metavar="DIR", help="pretrained weights cache")
    s.add_argument("--metrics-out", metavar="PATH", help="write every figure of the run as one JSON file")
    s.add_argument("--no-calibration", dest="calibrate", action="store_false",
                   help="serve the raw sigmoid (default: temperature + bias fitted on validation)")
    _common_train(s)
    s.set_defaults(func=_lazy("train_sentiment"), epochs=10, patience=2, dropout=0.3, units=64)
    return sub


def add_evaluate_parsers(subparsers: Any) -> Any:
    """``sentinel evaluate forecast|sentiment``; returns the sub-subparsers so others can add kinds."""
    evaluate = subparsers.add_parser("evaluate", help="evaluate a shipped ONNX model on any data")
    sub = evaluate.add_subparsers(dest="evaluate_kind", required=True)
    f = sub.add_parser("forecast", help="per-ticker RMSE/MAE vs persistence")
    f.add_argument("--model", required=True, help="a model version dir, or models/price-forecast (newest)")
    f.add_argument("--csv-dir", required=True, help="directory of price CSVs")
    f.add_argument("--tickers", help="comma list to restrict the CSVs")
    f.add_argument("--part", choices=("all", "train", "val", "test"), default="all",
                   help="windows to score: all, or a part of the model's own chronological split")
    _json_flags(f)
    f.set_defaults(func=_lazy("evaluate_forecast"))
    s = sub.add_parser("sentiment", help="classification metrics at the escalation threshold")
    s.add_argument("--model", required=True,
                   help="a model version dir, or models/feedback-sentiment (newest)")
    _text_options(s)
    s.add_argument("--threshold", type=float, help="override the manifest's escalation threshold")
    s.add_argument("--part", choices=("all", "train", "val", "test"), default="all",
                   help="rows to score: all, or a part of the model's own stratified split "
                        "(same file, label rule and --limit as in training)")
    s.add_argument("--seed", type=int, default=42, help="seed of the --limit sample")
    _json_flags(s)
    s.set_defaults(func=_lazy("evaluate_sentiment"))
    return sub


def _json_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--compact", action="store_true", help="with --json: on one line")


def add_export_parser(subparsers: Any) -> Any:
    """``sentinel export RUN_DIR --to models``: a saved training run -> verified ONNX release."""
    p = subparsers.add_parser("export", help="convert a training run to ONNX + manifest (parity-checked)")
    p.add_argument("run", metavar="RUN_DIR", help="a training run directory (model.keras + run.json)")
    p.add_argument("--to", default="models", metavar="DIR", help="models root (default: models)")
    p.set_defaults(func=_lazy("export_run"))
    return p
