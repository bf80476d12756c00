"""``sentinel``: the one console script, composed above the packages it wires.

``streaming`` (serving) and ``training`` never import each other; this module is the
only place that sees both. It adds ``train``, ``evaluate`` and ``export`` (training's
light argparse builders, whose handlers import TensorFlow only when they run) and the
anomaly harness to the serving commands of ``streaming.cli``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from streaming import cli as serving_cli
from streaming.evaluation.cli import add_anomalies_parser
from training import cli as training_cli


def build_parser() -> argparse.ArgumentParser:
    parser, sub = serving_cli.build_serving_parser()
    training_cli.add_train_parsers(sub)
    evaluate = training_cli.add_evaluate_parsers(sub)
    add_anomalies_parser(evaluate)
    training_cli.add_export_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return serving_cli.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
