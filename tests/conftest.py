"""Shared fixtures: tiny real ONNX models, and (for integration tests) the real broker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.model_factory import write_tiny_models

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One real Apache Kafka for the session, on free ports in a temp directory.

    With CI=true a broker that cannot start fails the test; it never skips.
    """
    from streaming.kafka.broker import BrokerConfig, BrokerError, start_broker
    from streaming.tools.processes import free_port

    config = BrokerConfig(data_dir=tmp_path_factory.mktemp("kafka"), port=free_port(),
                          controller_port=free_port())
    try:
        handle = start_broker(config)
    except BrokerError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the Kafka broker could not start: {exc}")
        pytest.skip(f"no Kafka broker here: {exc}")
    yield handle
    handle.stop()
