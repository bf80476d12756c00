"""The trivial Faust agent ``sentinel bench`` compares the worker with.

No work per event: raw bytes in, ``stream.take(2000, within=...)``, count, nothing
published. It uses the worker's own Faust settings (``streaming.worker.app.faust_config``)
and event loop, so the difference to the worker is our code, not the framework.
Run as its own process: ``python -m streaming.bench.trivial --topic T --expect N ...``;
it writes a JSON result file once it has seen ``expect`` events.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

TAKE = 2000


def build_app(args: argparse.Namespace) -> Any:
    import faust

    from streaming.settings import load_settings
    from streaming.worker.app import faust_config
    from streaming.worker.delivery import use_direct_delivery, without_monitor

    settings = load_settings(kafka_bootstrap=args.bootstrap, app_id=args.app_id, data_dir=args.data_dir)
    app = faust.App(args.app_id, **faust_config(settings))
    if settings.direct_delivery:  # the worker's hand-over too: the difference stays our code
        use_direct_delivery(app)
    topic = app.topic(args.topic, partitions=settings.partitions, key_type=bytes, value_type=bytes,
                      key_serializer="raw", value_serializer="raw")
    seen = {"count": 0, "first_batch": 0, "first": 0.0, "last": 0.0}
    out = Path(args.out)

    @app.agent(topic)
    async def trivial(stream: Any) -> None:
        if not settings.faust_monitor:
            without_monitor(app)
        async for values in stream.take(TAKE, within=settings.batch_within_s):
            now = time.time()
            if not seen["count"]:
                seen["first"], seen["first_batch"] = now, len(values)
            seen["count"] += len(values)
            seen["last"] = now
            if seen["count"] >= args.expect and not out.exists():
                _write(out, seen)

    return app


def _write(out: Path, seen: dict[str, Any]) -> None:
    span = seen["last"] - seen["first"]
    counted = seen["count"] - seen["first_batch"]
    result = {"events": seen["count"], "seconds": span,
              "events_per_s": counted / span if span > 0 else 0.0, "take": TAKE}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args(argv)
    import faust

    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    faust.Worker(build_app(args), loglevel="warning").execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
