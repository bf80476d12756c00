"""The training CLI: light to import, parsers wire handlers, expected failures are one line."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from export.errors import SentinelError
from training.cli import add_evaluate_parsers, add_export_parser, add_train_parsers


def _parser() -> tuple[argparse.ArgumentParser, object]:
    parser = argparse.ArgumentParser(prog="sentinel")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_parsers(sub)
    evaluate = add_evaluate_parsers(sub)
    add_export_parser(sub)
    return parser, evaluate


def test_importing_the_cli_pulls_in_no_heavy_packages() -> None:
    code = ("import sys, training.cli; heavy = [m for m in ('tensorflow', 'keras', 'pandas', 'matplotlib', "
            "'sklearn', 'tf2onnx') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[3])
    assert out.stdout.strip() == ""


def test_flags_parse_into_handlers() -> None:
    parser, evaluate = _parser()
    args = parser.parse_args(["train", "sentiment", "--csv", "x.csv", "--text-col", "Title",
                              "--text-col", "Review Text", "--arch", "bidirectional", "--limit", "10"])
    assert args.text_col == ["Title", "Review Text"] and args.epochs == 10 and callable(args.func)
    args = parser.parse_args(["train", "forecast", "--csv-dir", "d", "--arch", "stacked", "--dropout", "0.2"])
    assert args.arch == "stacked" and args.dropout == 0.2 and args.units == 100 and args.window == 60
    args = parser.parse_args(["export", "runs/x", "--to", "models"])
    assert args.run == "runs/x" and callable(args.func)
    evaluate.add_parser("anomalies")  # type: ignore[attr-defined]  # the lead adds this kind
    assert parser.parse_args(["evaluate", "anomalies"]).evaluate_kind == "anomalies"


def test_expected_failures_raise_sentinel_errors(tmp_path: Path) -> None:
    parser, _ = _parser()
    cases = [["evaluate", "forecast", "--model", str(tmp_path), "--csv-dir", str(tmp_path)],
             ["evaluate", "sentiment", "--model", str(tmp_path), "--csv", str(tmp_path / "none.csv")],
             ["train", "forecast", "--csv-dir", str(tmp_path / "missing")],
             ["export", str(tmp_path)]]
    for argv in cases:
        args = parser.parse_args(argv)
        with pytest.raises(SentinelError) as err:
            args.func(args)
        assert "\n" not in str(err.value)
