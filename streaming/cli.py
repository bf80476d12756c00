"""Serving commands of ``sentinel`` (composed with training's in ``sentinel.cli``).

Heavy imports happen inside each command.

Expected failures print one line and exit non-zero; bugs still show a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from export.errors import SentinelError
from streaming.settings import Settings, load_settings, set_in_environment

logger = logging.getLogger("sentinel")


def configure_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")


def _settings(args: argparse.Namespace, follow_demo: bool = False) -> Settings:
    """Settings from the environment and flags; ``follow_demo``: with no bootstrap given, a
    demo running from this directory is the broker (its state file says where)."""
    settings = load_settings(kafka_bootstrap=args.bootstrap, topic_prefix=args.topic_prefix,
                             models_dir=args.models_dir, metrics_port=getattr(args, "metrics_port", None),
                             metrics_host=getattr(args, "metrics_host", None),
                             data_dir=getattr(args, "state_dir", None), log_level=args.log_level)
    if follow_demo and not args.bootstrap and not set_in_environment("kafka_bootstrap"):
        from streaming.tools import demo_state

        found = demo_state.read_state(demo_state.state_path())
        if found:
            print(f"using the running demo's broker {found} (from {demo_state.STATE_RELPATH})",
                  file=sys.stderr, flush=True)
            settings = settings.with_overrides(kafka_bootstrap=found)
    return settings


def cmd_broker(args: argparse.Namespace) -> int:
    from streaming.kafka import broker

    data_dir = Path(args.data_dir)
    if args.action == "start":
        cfg = broker.BrokerConfig(data_dir=data_dir, port=args.port, controller_port=args.controller_port)
        running = broker.broker_status(data_dir)
        if running:
            print(f"broker already running at {running}")
            return 0
        handle = broker.start_broker(cfg)
        print(f"broker ready at {handle.bootstrap} (pid {handle.pid}, data {data_dir})")
    elif args.action == "stop":
        print("broker stopped" if broker.stop_broker(data_dir) else "no broker running")
    else:
        from streaming.tools import demo_state

        status = broker.broker_status(data_dir)
        demo = demo_state.read_state(demo_state.state_path())
        print(f"running at {status}" if status else "not running")
        if demo:
            print(f"demo broker running at {demo} (from {demo_state.STATE_RELPATH})")
        return 0 if status or demo else 3
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from streaming.worker.run import run_worker

    return run_worker(_settings(args))


def _progress(total: int | None, label: str):  # type: ignore[no-untyped-def]
    from rich.progress import Progress

    progress = Progress(transient=True)
    task = progress.add_task(label, total=total)
    return progress, lambda n: progress.update(task, completed=n)


def cmd_produce(args: argparse.Namespace) -> int:
    from streaming.sources import producers_cli

    return producers_cli.run(args, _settings(args, follow_demo=True))


def cmd_alerts(args: argparse.Namespace) -> int:
    import orjson

    from streaming.tools.alerts import format_alert, tail

    def emit(alert: dict[str, object]) -> None:
        print(orjson.dumps(alert).decode() if args.json else format_alert(alert), flush=True)

    names = [args.topic] if args.topic else None
    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # group-join chatter is not alerts
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(tail(_settings(args, follow_demo=True), emit, topic_names=names,
                         min_severity=args.min_severity, min_priority=args.min_priority,
                         from_beginning=args.from_beginning))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from streaming.serving import model_registry as reg
    from streaming.serving.inference import sorted_versions

    models_dir = _settings(args).models_dir
    if args.action == "list":
        for name in reg.LOADERS:
            wanted = reg.wanted_dir(models_dir, name).name
            for path in sorted_versions(models_dir, name):
                print(f"{name} {path.name}{'  <- served' if path.name == wanted else ''}")
    elif args.action == "rollback":
        print(f"{args.name} pinned to {reg.rollback(models_dir, args.name)}; workers swap within "
              "the reload interval")
    else:
        reg.pin(models_dir, args.name, args.version if args.action == "pin" else None)
        print(f"{args.name}: {'pinned to ' + args.version if args.action == 'pin' else 'follows newest'}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from streaming.tools.report import run_report

    files = [Path(f) for f in args.from_file or []]
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    return run_report(_settings(args, follow_demo=not files), Path(args.out), files, args.timeout,
                      args.max_symbols)


def cmd_demo(args: argparse.Namespace) -> int:
    from streaming.tools.demo import run_demo

    return run_demo(args, _settings(args))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bootstrap", help="Kafka bootstrap host:port (SENTINEL_KAFKA_BOOTSTRAP)")
    p.add_argument("--topic-prefix", help="prefix for every topic (SENTINEL_TOPIC_PREFIX)")
    p.add_argument("--models-dir", help="released models directory (SENTINEL_MODELS_DIR)")
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING")


def build_serving_parser() -> tuple[argparse.ArgumentParser, Any]:
    """The serving commands, and their sub-parser set for the composition root to extend."""
    parser = argparse.ArgumentParser(
        prog="sentinel", description="stream-sentinel: price anomalies and feedback escalations on Kafka")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("broker", help="dev Apache Kafka (KRaft) from Maven Central jars")
    b.add_argument("action", choices=["start", "stop", "status"])
    b.add_argument("--data-dir", default=".sentinel/broker")
    b.add_argument("--port", type=int, default=9092)
    b.add_argument("--controller-port", type=int, default=9093)
    b.set_defaults(func=cmd_broker)
    w = sub.add_parser("worker", help="run the Faust worker")
    _common(w)
    w.add_argument("--metrics-port", type=int)
    w.add_argument("--metrics-host")
    w.add_argument("--state-dir", help="worker state directory (SENTINEL_DATA_DIR)")
    w.set_defaults(func=cmd_worker)
    from streaming.sources.producers_cli import add_produce_parser

    _common(add_produce_parser(sub, cmd_produce))
    a = sub.add_parser("alerts", help="alert consumer")
    a.add_argument("action", choices=["tail"])
    _common(a)
    a.add_argument("--topic", help="one topic instead of both alert topics")
    a.add_argument("--min-severity", default="low", choices=["low", "medium", "high", "critical"])
    a.add_argument("--min-priority", default="P3", choices=["P3", "P2", "P1"])
    a.add_argument("--from-beginning", action="store_true")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_alerts)
    m = sub.add_parser("models", help="list, pin, unpin or roll back served model versions")
    m.add_argument("action", choices=["list", "pin", "unpin", "rollback"])
    m.add_argument("name", nargs="?", choices=["price-forecast", "feedback-sentiment"])
    m.add_argument("version", nargs="?")
    _common(m)
    m.set_defaults(func=cmd_models)
    r = sub.add_parser("report", help="static HTML page: prices, forecasts, alerts, escalations")
    _common(r)
    r.add_argument("--out", default="reports/sentinel-report.html", help="HTML file to write")
    r.add_argument("--from-file", action="append", metavar="JSONL",
                   help="read records from JSON lines (e.g. `alerts tail --json` output) instead of Kafka")
    r.add_argument("--timeout", type=float, default=30.0, help="seconds to spend reading the topics")
    r.add_argument("--max-symbols", type=int, default=12, help="charts for this many symbols at most")
    r.set_defaults(func=cmd_report)
    d = sub.add_parser("demo", help="broker + worker + producers + alerts + metrics, offline")
    _common(d)
    d.add_argument("--metrics-port", type=int)
    d.add_argument("--data-root", help="shared data directory (default ../shared/data; "
                   "the shipped data/samples when absent)")
    d.add_argument("--duration", type=float, default=0.0, help="stop after N seconds (0 = Ctrl-C)")
    d.add_argument("--rate", type=float, default=0.0,
                   help="price ticks per second (default: 400 for the shared data, 150 for the sample)")
    d.set_defaults(func=cmd_demo)
    from streaming.bench.cli import add_bench_parser

    add_bench_parser(sub)
    return parser, sub


def build_parser() -> argparse.ArgumentParser:
    """Serving commands only (``python -m streaming.cli``); ``sentinel`` adds training's."""
    return build_serving_parser()[0]


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    args = parser.parse_args(argv)
    configure_logging(getattr(args, "log_level", None) or "INFO")
    try:
        return int(args.func(args))
    except SentinelError as exc:
        print(f"sentinel: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
