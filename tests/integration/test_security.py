"""SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) on a real broker: right credentials work end to
end, wrong ones fail clearly, and the secret never reaches logs or metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from streaming import topics
from streaming.errors import ConfigError
from streaming.kafka.admin import client_kwargs, ensure_topics
from streaming.kafka.broker import BrokerConfig, start_broker
from streaming.settings import load_settings
from streaming.tools.processes import free_port
from tests.integration.kafka_io import WorkerProcess

PASSWORD = "s3cr3t-Pa55word-xyz"
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    port, sasl_port, cport = free_port(), free_port(), free_port()
    jaas = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'user_alice="{PASSWORD}";')
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    extra = {
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport},"
                     f"SASL_PLAINTEXT://127.0.0.1:{sasl_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{sasl_port}",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
                                          "SASL_PLAINTEXT:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": ",".join(MECHANISMS),
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas,
        "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config": scram,
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": scram,
    }
    handle = start_broker(BrokerConfig(data_dir=tmp_path_factory.mktemp("sasl-kafka"), port=port,
                                       controller_port=cport, extra_properties=extra,
                                       scram_users={"alice": PASSWORD}))
    yield handle, f"127.0.0.1:{sasl_port}"
    handle.stop()


def sasl_env(bootstrap: str, password: str, mechanism: str = "PLAIN") -> dict[str, str]:
    return {"SENTINEL_KAFKA_BOOTSTRAP": bootstrap, "SENTINEL_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "SENTINEL_SASL_MECHANISM": mechanism, "SENTINEL_SASL_USERNAME": "alice",
            "SENTINEL_SASL_PASSWORD": password}


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_wrong_credentials_fail_with_a_clear_error(sasl_broker, mechanism: str) -> None:  # type: ignore[no-untyped-def]
    _, bootstrap = sasl_broker
    settings = load_settings(sasl_env(bootstrap, "wrong-password", mechanism))
    with pytest.raises(ConfigError, match="cannot reach Kafka") as err:
        asyncio.run(ensure_topics(settings, timeout=15))
    assert "wrong-password" not in str(err.value) and "wrong-password" not in repr(settings)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_right_credentials_work_end_to_end(sasl_broker, tiny_models_dir: Path,  # type: ignore[no-untyped-def]
                                           tmp_path: Path, mechanism: str) -> None:
    _, bootstrap = sasl_broker
    env = sasl_env(bootstrap, PASSWORD, mechanism)
    settings = load_settings(env)
    worker = WorkerProcess(bootstrap, tiny_models_dir, tmp_path / "state", env=env)
    settings = settings.with_overrides(topic_prefix=worker.prefix)
    worker.start()
    try:
        received = asyncio.run(_roundtrip(settings))
        log = worker.log_text()
    finally:
        worker.stop()
    assert len(received) == 41
    assert PASSWORD not in log
    assert PASSWORD not in repr(settings)


async def _roundtrip(settings) -> list[dict]:  # type: ignore[no-untyped-def]
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    producer = AIOKafkaProducer(**client_kwargs(settings))
    await producer.start()
    try:
        for i in range(100):
            await producer.send(settings.topic(topics.TICKS), key=b"SEC",
                                value=orjson.dumps({"symbol": "SEC", "ts": i + 1, "price": 100 + i % 3}))
        await producer.flush()
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(settings.topic(topics.FORECASTS), **client_kwargs(settings),
                                auto_offset_reset="earliest", group_id="sec-test")
    await consumer.start()
    out: list[dict] = []
    try:
        for _ in range(240):
            batch = await consumer.getmany(timeout_ms=250)
            out += [orjson.loads(m.value) for msgs in batch.values() for m in msgs]
            if len(out) >= 41:
                break
    finally:
        await consumer.stop()
    return out
