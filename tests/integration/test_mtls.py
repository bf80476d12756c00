"""Mutual TLS on a real broker: the worker with a client certificate works end to end; a client
without one is refused with a clear one-line error.

Certificates come from ``openssl`` at test time (a throwaway CA, a server certificate for
127.0.0.1 and a client certificate); the broker reads them as PEM stores.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from streaming.errors import ConfigError
from streaming.kafka.admin import ensure_topics
from streaming.kafka.broker import BrokerConfig, start_broker
from streaming.settings import load_settings
from streaming.tools.processes import free_port
from tests.integration.kafka_io import WorkerProcess
from tests.integration.test_security import _roundtrip


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(d: Path) -> dict[str, Path]:
    """CA, server (SAN 127.0.0.1) and client key pairs, keys unencrypted PKCS#8."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", cwd=d)
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=d)
    server_store = d / "server-store.pem"  # what Kafka's PEM keystore reads: key, then certificate
    server_store.write_text((d / "server.key").read_text() + (d / "server.pem").read_text())
    return {"ca": d / "ca.pem", "server_store": server_store, "client_cert": d / "client.pem",
            "client_key": d / "client.key"}


@pytest.fixture(scope="module")
def mtls_broker(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificates")
    certs = make_certs(tmp_path_factory.mktemp("certs"))
    port, ssl_port, cport = free_port(), free_port(), free_port()
    extra = {
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport},SSL://127.0.0.1:{ssl_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:{ssl_port}",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL",
        "listener.name.ssl.ssl.client.auth": "required",
        "listener.name.ssl.ssl.keystore.type": "PEM",
        "listener.name.ssl.ssl.keystore.location": str(certs["server_store"]),
        "listener.name.ssl.ssl.truststore.type": "PEM",
        "listener.name.ssl.ssl.truststore.location": str(certs["ca"]),
    }
    handle = start_broker(BrokerConfig(data_dir=tmp_path_factory.mktemp("mtls-kafka"), port=port,
                                       controller_port=cport, extra_properties=extra))
    yield f"127.0.0.1:{ssl_port}", certs
    handle.stop()


def tls_env(bootstrap: str, certs: dict[str, Path], with_client_cert: bool = True) -> dict[str, str]:
    env = {"SENTINEL_KAFKA_BOOTSTRAP": bootstrap, "SENTINEL_SECURITY_PROTOCOL": "SSL",
           "SENTINEL_SSL_CAFILE": str(certs["ca"])}
    if with_client_cert:
        env |= {"SENTINEL_SSL_CERTFILE": str(certs["client_cert"]),
                "SENTINEL_SSL_KEYFILE": str(certs["client_key"])}
    return env


def test_a_client_without_a_certificate_is_refused_in_one_line(mtls_broker) -> None:  # type: ignore[no-untyped-def]
    bootstrap, certs = mtls_broker
    settings = load_settings(tls_env(bootstrap, certs, with_client_cert=False))
    with pytest.raises(ConfigError, match="cannot reach Kafka") as err:
        asyncio.run(ensure_topics(settings, timeout=15))
    assert "\n" not in str(err.value)


def test_the_worker_with_a_client_certificate_works_end_to_end(  # type: ignore[no-untyped-def]
        mtls_broker, tiny_models_dir: Path, tmp_path: Path) -> None:
    bootstrap, certs = mtls_broker
    env = tls_env(bootstrap, certs)
    worker = WorkerProcess(bootstrap, tiny_models_dir, tmp_path / "state", env=env)
    settings = load_settings(env).with_overrides(topic_prefix=worker.prefix)
    worker.start()
    try:
        received = asyncio.run(_roundtrip(settings))
    finally:
        worker.stop()
    assert len(received) == 41
