"""Probe: faust-streaming's exactly_once under worker crashes (see docs/reliability.md).

Runs the kill -9 crash test with SENTINEL_PROCESSING_GUARANTEE=exactly_once against a
fresh dev broker and prints the loss/duplicate report seen by a read_committed consumer.
Usage: .venv/bin/python scripts/eos_probe.py [crashes]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streaming import topics  # noqa: E402
from streaming.kafka.broker import BrokerConfig, start_broker  # noqa: E402
from streaming.tools.processes import free_port  # noqa: E402
from tests.integration.kafka_io import WorkerProcess  # noqa: E402
from tests.integration.reliability_support import (  # noqa: E402
    BackgroundProducer,
    labelled_stream,
    reference,
)
from tests.integration.test_faults import collect  # noqa: E402
from tests.model_factory import write_tiny_models  # noqa: E402


def main(crashes: int = 2) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="eos-probe-"))
    models = write_tiny_models(tmp / "models")
    broker = start_broker(BrokerConfig(data_dir=tmp / "kafka", port=free_port(),
                                       controller_port=free_port()))
    ticks = labelled_stream(50, 200)
    ref = reference(ticks, models)
    env = {"SENTINEL_PROCESSING_GUARANTEE": "exactly_once", "SENTINEL_EXPERIMENTAL_EXACTLY_ONCE": "1"}
    worker = WorkerProcess(broker.bootstrap, models, tmp / "state", env=env).start()
    producer = BackgroundProducer(broker.bootstrap, worker.topic(topics.TICKS), ticks, rate=1000)
    producer.start()
    try:
        for _ in range(crashes):
            time.sleep(4)
            worker.kill()
            worker.start()
        producer.join(120)
        print({"crashes": crashes, **collect(worker, ref, timeout=90).check(ref)})
    finally:
        worker.stop()
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
