"""Handlers of ``sentinel train|evaluate|export``: load, run, print, exit code.

Imported only when one of those commands runs (training.cli imports it lazily), so
the serving CLI never pays for TensorFlow, pandas or matplotlib.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from export.manifest import FORECAST_MODEL, SENTIMENT_MODEL
from training.data import PriceSeries, load_csv_dir, load_yfinance
from training.errors import DataError
from training.progress import console
from training.reviews import LabelRule, read_aux_targets, read_reviews

logger = logging.getLogger(__name__)


def _quiet_tensorflow() -> None:
    # TensorFlow's C++ start-up chatter would bury the one-line results; must be set before import.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _run_dir(args: argparse.Namespace, kind: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(args.run_dir) if args.run_dir else Path("runs") / f"{kind}-{stamp}"


def _say(text: str) -> None:
    console.print(text, highlight=False, markup=False)


def load_prices(args: argparse.Namespace) -> tuple[list[PriceSeries], str]:
    """--csv-dir wins; otherwise --tickers through yfinance with the on-disk cache."""
    tickers = [t.strip().upper() for t in (args.tickers or "").split(",") if t.strip()]
    if args.csv_dir:
        return load_csv_dir(Path(args.csv_dir), tickers or None), f"csv:{args.csv_dir}"
    if not tickers:
        raise DataError("give --csv-dir DIR (offline) or --tickers A,B,... (yfinance download)")
    series = load_yfinance(tickers, args.start, args.end, Path(args.cache_dir))
    return series, f"yfinance:{args.start or '10y'}..{args.end or 'today'}"


def train_forecast(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from training import forecast
    from training.release import export_release, save_run
    from training.tables import forecast_table

    series, source = load_prices(args)
    cfg = forecast.ForecastConfig(arch=args.arch, window=args.window, units=args.units, dropout=args.dropout,
                                  learning_rate=args.learning_rate, epochs=args.epochs,
                                  batch_size=args.batch_size, patience=args.patience, seed=args.seed)
    if args.grid:
        return _grid(cfg, series, Path(args.report or _run_dir(args, "forecast-grid")))
    eval_series = load_csv_dir(Path(args.eval_csv_dir)) if args.eval_csv_dir else []
    fitted, metrics, counts = forecast.train_and_score(cfg, series, eval_series,
                                                       Path(args.tensorboard) if args.tensorboard else None)
    spec = forecast.release_spec(cfg, fitted, series, source, metrics, counts)
    batch = forecast.parity_batch(fitted.extra["parts"]["test"], cfg.scale, seed=cfg.seed)
    run_dir = save_run(_run_dir(args, "forecast"), fitted.model, spec, batch)
    print(f"## Test part ({counts['test']} windows): LSTM vs persistence\n")
    print(forecast_table(metrics["test"]["tickers"]))
    if eval_series:
        print("\n## Extra tickers (all windows, never trained on)\n")
        print(forecast_table(metrics["extra_tickers"]["tickers"]))
    print(f"\nresidual_log_std (train) = {metrics['residual_log_std']:.5f}; "
          f"epochs {len(fitted.history['loss'])} (best {fitted.best_epoch}); "
          f"training {fitted.seconds:.0f} s; run dir {run_dir}")
    if args.report:
        paths = forecast.write_reports(fitted, metrics, Path(args.report), cfg.scale)
        _say(f"report: {', '.join(str(p) for p in paths)}")
    if args.export_to:
        _print_export(*export_release(fitted.model, spec, batch, Path(args.export_to)))
    return 0


def _grid(cfg: Any, series: list[PriceSeries], out_dir: Path) -> int:
    from training.grid import run_grid

    path, table = run_grid(cfg, series, out_dir)
    print(table)
    _say(f"grid results: {path} (validation part only; ratio < 1 beats persistence)")
    return 0


def _print_export(target: Path, manifest: Any) -> None:
    size = (target / "model.onnx").stat().st_size
    print(f"exported {manifest.ref} -> {target} ({size / 1024:.0f} KiB, parity max_abs_diff "
          f"{manifest.parity['max_abs_diff']:.2e} on {manifest.parity['n']})")


_WIDE_NB = {"auto": (False, True), "no": (False,), "yes": (True,)}


def train_sentiment(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from training import sentiment
    from training.release import export_release, save_run
    from training.tables import sentiment_table

    t0 = time.perf_counter()
    data = read_reviews(Path(args.csv), args.text_col, args.label_col,
                        LabelRule(args.rating_positive, args.rating_negative), args.limit, args.seed)
    cfg = sentiment.SentimentConfig(arch=args.arch, max_len=args.max_len, vocab_size=args.vocab_size,
                                    min_count=args.min_count, embed_dim=args.embed_dim, units=args.units,
                                    dropout=args.dropout, learning_rate=args.learning_rate,
                                    epochs=args.epochs, batch_size=args.batch_size, patience=args.patience,
                                    seed=args.seed,
                                    target_recall=args.target_recall, embeddings=args.embeddings,
                                    pooling=args.pooling, ngrams=args.ngrams,
                                    ngram_buckets=args.ngram_buckets, ngram_window=args.ngram_window,
                                    wide_l2=args.wide_l2, calibrate=args.calibrate,
                                    wide_nb=_WIDE_NB[args.wide_nb],
                                    pretrain=tuple(args.pretrain), pretrain_epochs=args.pretrain_epochs,
                                    pretrain_max_texts=args.pretrain_max_texts,
                                    freeze_epochs=args.freeze_epochs, aux=args.aux,
                                    aux_flag_col=args.aux_flag_col, aux_weight=args.aux_weight,
                                    export_heads=tuple(h.strip() for h in args.export_heads.split(",")
                                                       if h.strip()),
                                    refit_folds=args.refit_folds, recall_confidence=args.recall_confidence,
                                    wide_c=tuple(float(c) for c in args.wide_c.split(",")), ema=args.ema)
    aux = (read_aux_targets(Path(args.csv), args.text_col, args.label_col,
                            LabelRule(args.rating_positive, args.rating_negative), args.aux_flag_col,
                            args.limit, args.seed) if args.aux else None)
    if cfg.refit_folds:
        if cfg.patience or cfg.pretrain:
            raise SystemExit("--refit-folds trains a fixed --epochs: give --patience 0, and no --pretrain")
        crossed = sentiment.cross_fit(data, cfg, aux, _embeddings, args.folds_only)
        prep, fitted, coverage = crossed.prep, crossed.fitted, crossed.coverage
        oof_base, base_predict, base_info = sentiment.tfidf_cross_fit(data, cfg, prep.tokenizer.tokens,
                                                                      cfg.seed)
        if args.folds_only:
            return _print_folds(crossed, oof_base, cfg, args.metrics_out, data.description, base_info)
        probs, results = _score_sentiment(fitted, prep, cfg, crossed.oof, (oof_base, base_predict, base_info))
    else:
        prep = sentiment.prepare(data, cfg, aux)
        cfg, matrix, coverage = _embeddings(cfg, prep)
        fitted = sentiment.fit(cfg, prep, matrix, Path(args.tensorboard) if args.tensorboard else None,
                               Path(args.lm_cache))
        probs, results = _score_sentiment(fitted, prep, cfg)
    spec = sentiment.release_spec(cfg, prep, fitted, results, data.description, coverage,
                                  results.get("calibration_params"))
    batch = prep.encoded["test"][:256]
    vocab = {sentiment.VOCAB_FILE: sentiment.vocab_bytes(prep.tokenizer)}
    run_dir = save_run(_run_dir(args, "sentiment"), fitted.model, spec, batch, vocab)
    print(f"## Test part of {data.description['file']}: LSTM ({cfg.arch}) vs TF-IDF + LR, "
          f"thresholds for validation negative recall >= {cfg.target_recall}\n")
    print(sentiment_table({f"LSTM ({cfg.arch})": results["lstm"], "TF-IDF + LR": results["baseline"]}))
    cal = results.get("calibration", {})
    if cal:
        print(f"\nECE (15 bins) on test: raw {cal['ece_test_raw']:.4f} -> "
              f"calibrated {cal['ece_test_calibrated']:.4f}"
              f" (validation {cal['ece_val_raw']:.4f} -> {cal['ece_val_calibrated']:.4f}); "
              f"temperature {results['calibration_params']['temperature']:.3f}, "
              f"bias {results['calibration_params']['bias']:.3f}")
    print(f"\nepochs {len(fitted.history['loss'])} (best {fitted.best_epoch}); "
          f"LSTM training {fitted.seconds:.0f} s; baseline {results['baseline_info']['seconds']} s; "
          f"total {time.perf_counter() - t0:.0f} s; vocab {len(prep.tokenizer.vocab)}; run dir {run_dir}")
    if args.metrics_out:
        from training.release import _jsonable

        out = {"command": "sentinel train sentiment", "config": asdict(cfg), "data": data.description,
               "counts": spec.training["counts"], "epochs_trained": len(fitted.history["loss"]),
               "best_epoch": fitted.best_epoch, "train_seconds": round(fitted.seconds, 1),
               "total_seconds": round(time.perf_counter() - t0, 1), "fit": fitted.extra, **results}
        Path(args.metrics_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.metrics_out).write_text(json.dumps(_jsonable(out), indent=1) + "\n", encoding="utf-8")
        _say(f"metrics: {args.metrics_out}")
    if args.report:
        paths = sentiment.write_reports(fitted, prep, probs, results, Path(args.report))
        _say(f"report: {', '.join(str(p) for p in paths)}")
    if args.export_to:
        _print_export(*export_release(fitted.model, spec, batch, Path(args.export_to), vocab))
    return 0


def _embeddings(cfg: Any, prep: Any) -> tuple[Any, Any, float | None]:
    """GloVe vectors for the training vocabulary; the embedding width follows the file."""
    if not cfg.embeddings:
        return cfg, None, None
    from training.embeddings import load_glove

    matrix, coverage = load_glove(Path(cfg.embeddings), prep.tokenizer.vocab, cfg.seed)
    _say(f"embeddings: {coverage:.1%} of the vocabulary found in {cfg.embeddings} (dim {matrix.shape[1]})")
    return replace(cfg, embed_dim=int(matrix.shape[1])), matrix, coverage


def _score_sentiment(fitted: Any, prep: Any, cfg: Any, oof: Any = None,
                     base_oof: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """LSTM and baseline on one split: thresholds on validation, metrics on test.

    A cross-fitted run passes the out-of-fold scores, which stand in for the "val" part's.
    """
    from sklearn.metrics import roc_auc_score

    from training import sentiment

    raw = sentiment.lstm_probabilities(fitted.model, prep, skip_val=oof is not None)
    if oof is not None:
        raw["val"] = oof
    fitted_on = "out-of-fold scores over train + validation" if oof is not None else "validation"
    lstm, cal = sentiment.calibrated(raw, prep, cfg.calibrate, fitted_on)
    if base_oof is None:
        base_predict, info = sentiment.tfidf_baseline(prep, cfg.seed)
        base_raw = {k: base_predict(prep.parts[k].texts) for k in ("val", "test")}
    else:
        base_val, base_predict, info = base_oof
        base_raw = {"val": base_val, "test": base_predict(prep.parts["test"].texts)}
    # The baseline gets the same treatment (its own calibration fitted on validation), so
    # ECE and the 0.5-threshold metrics compare like with like.
    base, base_cal = sentiment.calibrated(base_raw, prep, cfg.calibrate, fitted_on)
    info = {**info, "calibration": base_cal}
    conf = cfg.recall_confidence
    results = {"lstm": sentiment.score(lstm["val"], lstm["test"], prep, cfg.target_recall, conf),
               "baseline": sentiment.score(base["val"], base["test"], prep, cfg.target_recall, conf),
               "baseline_info": info, "validation": {
                   "part": fitted_on,
                   "lstm_roc_auc": roc_auc_score(prep.parts["val"].labels, lstm["val"]),
                   "baseline_roc_auc": roc_auc_score(prep.parts["val"].labels, base["val"])},
               "calibration": sentiment.calibration_report(raw, lstm, prep) if cal else {},
               "calibration_params": cal}
    probs = {"lstm": lstm["test"], "baseline": base["test"], **({"raw": raw["test"]} if cal else {})}
    return probs, results


def _print_folds(crossed: Any, oof_base: Any, cfg: Any, metrics_out: str | None,
                 data_desc: dict[str, Any], base_info: dict[str, Any]) -> int:
    """Out-of-fold figures of the model and the baseline (calibrated the same way on the
    same scores, so ECE here is in-sample); nothing scores the test part."""
    from export.calibration import apply_calibration, fit_calibration
    from training.metrics import classification_metrics, threshold_for_recall
    from training.release import _jsonable
    from training.tables import sentiment_table

    y = crossed.prep.parts["val"].labels
    out: dict[str, Any] = {"command": "sentinel train sentiment --folds-only", "config": asdict(cfg),
                           "data": data_desc, "folds": crossed.folds, "baseline_info": base_info}
    rows = {}
    for name, raw in (("lstm", crossed.oof), ("baseline", oof_base)):
        cal = fit_calibration(raw, y) if cfg.calibrate else None
        p = apply_calibration(raw, cal) if cal else raw
        at = {f"{r:.3f}": classification_metrics(y, p, threshold_for_recall(y, p, r))
              for r in (0.90, 0.905, 0.91, 0.915, 0.92, 0.95)}
        t = threshold_for_recall(y, p, cfg.target_recall, cfg.recall_confidence)
        rule = classification_metrics(y, p, t)
        out[name] = {"rule": rule, "at_recall": at, "calibration": cal}
        rows[f"{name} (out of fold, rule)"] = rule
    print(sentiment_table(rows))
    for name in ("lstm", "baseline"):
        neg = {r: m["per_class"]["negative"] for r, m in out[name]["at_recall"].items()}
        print(name, "recall target -> (recall, precision):",
              {r: (round(m["recall"], 4), round(m["precision"], 4)) for r, m in neg.items()})
    if metrics_out:
        Path(metrics_out).parent.mkdir(parents=True, exist_ok=True)
        Path(metrics_out).write_text(json.dumps(_jsonable(out), indent=1) + "\n", encoding="utf-8")
        _say(f"metrics: {metrics_out}")
    return 0


def evaluate_forecast(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate_forecast as run
    from training.evaluate import resolve_model_dir
    from training.tables import forecast_table

    model_dir = resolve_model_dir(Path(args.model), FORECAST_MODEL)
    tickers = [t.strip() for t in (args.tickers or "").split(",") if t.strip()] or None
    result = run(model_dir, load_csv_dir(Path(args.csv_dir), tickers), args.part)
    if args.json:
        print(json.dumps(result, indent=None if args.compact else 2))
        return 0
    print(f"## {result['model']} on {args.csv_dir} ({args.part} windows) vs persistence\n")
    print(forecast_table(result["tickers"]))
    print("\nmean over tickers: " + ", ".join(f"{k}={v:.4g}" for k, v in result["mean"].items()))
    return 0


def evaluate_sentiment(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate_sentiment as run
    from training.evaluate import resolve_model_dir
    from training.tables import sentiment_table

    model_dir = resolve_model_dir(Path(args.model), SENTIMENT_MODEL)
    data = read_reviews(Path(args.csv), args.text_col, args.label_col,
                        LabelRule(args.rating_positive, args.rating_negative), args.limit, args.seed)
    if args.part != "all":
        data = _model_part(model_dir, data, args.part)
    result = run(model_dir, data.texts, data.labels, args.threshold)
    if args.json:
        print(json.dumps({**result, "data": data.description}, indent=None if args.compact else 2))
        return 0
    print(f"## {result['model']} on {args.csv} ({data.description['label_rule']})\n")
    print(sentiment_table({result["model"]: result}))
    return 0


def _model_part(model_dir: Path, data: Any, part: str) -> Any:
    """Re-create the model's stratified split (it is seeded) and keep one part."""
    from export.manifest import read_manifest
    from training.reviews import stratified_split

    training = read_manifest(model_dir).training
    if "split" not in training or "seed" not in training:
        raise DataError(f"manifest of {model_dir} records no split; use --part all")
    if training.get("refit_folds") and part != "test":
        raise DataError(f"{model_dir} was refitted on train + validation: only --part test is held out")
    return data.take(stratified_split(data.labels, training["split"], training["seed"])[part])


def export_run(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from training.release import export_run_dir

    _print_export(*export_run_dir(Path(args.run), Path(args.to)))
    return 0
