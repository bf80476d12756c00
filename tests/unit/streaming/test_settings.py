"""Settings from SENTINEL_* variables: typed, validated, misspellings and unsafe modes refused."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from streaming.errors import ConfigError
from streaming.kafka.admin import ssl_context
from streaming.settings import header_allowlist, load_settings
from streaming.worker.app import faust_config

REPO = Path(__file__).resolve().parents[3]


def test_typed_values_and_defaults() -> None:
    s = load_settings({"SENTINEL_MAX_SYMBOLS": "5", "SENTINEL_SSL_CHECK_HOSTNAME": "false",
                       "SENTINEL_REPLICATION_FACTOR": "3", "SENTINEL_MIN_INSYNC_REPLICAS": "2"})
    got = (s.max_symbols, s.ssl_check_hostname, s.replication_factor, s.min_insync_replicas)
    assert got == (5, False, 3, 2)
    assert header_allowlist(load_settings({})) == {"traceparent", "tracestate", "content-type"}


def test_static_membership_is_opt_in_and_reaches_the_consumer() -> None:
    assert faust_config(load_settings({}))["consumer_group_instance_id"] is None
    named = load_settings({"SENTINEL_GROUP_INSTANCE_ID": "worker-{hostname}"})
    assert faust_config(named)["consumer_group_instance_id"] == f"worker-{socket.gethostname()}"


@pytest.mark.parametrize(("env", "message"), [
    ({"SENTINEL_KAFKA_BOOTSRAP": "x:1"}, "did you mean SENTINEL_KAFKA_BOOTSTRAP"),
    ({"SENTINEL_PROCESSING_GUARANTEE": "exactly_once"}, "exactly_once is refused"),
    ({"SENTINEL_REPLICATION_FACTOR": "1", "SENTINEL_MIN_INSYNC_REPLICAS": "2"}, "exceeds"),
    ({"SENTINEL_MAX_SYMBOLS": "0"}, "MAX_SYMBOLS must be >= 1"),
    ({"SENTINEL_SSL_CERTFILE": "/c.pem"}, "go together"),
    ({"SENTINEL_SSL_CHECK_HOSTNAME": "maybe"}, "not a valid bool"),
    ({"SENTINEL_EVENT_LOOP": "trio"}, "asyncio or uvloop"),
])
def test_invalid_settings_are_one_line_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        load_settings(env)
    assert "\n" not in str(err.value)


def test_exactly_once_only_as_an_explicit_experiment() -> None:
    s = load_settings({"SENTINEL_PROCESSING_GUARANTEE": "exactly_once",
                       "SENTINEL_EXPERIMENTAL_EXACTLY_ONCE": "1"})
    assert s.processing_guarantee == "exactly_once"


def test_compose_interpolation_variables_are_not_misspellings() -> None:
    assert load_settings({"SENTINEL_IMAGE_TAG": "local", "SENTINEL_REPLAY_SPEED": "10"}).app_id


def test_tls_uses_the_system_trust_store_without_a_ca_file() -> None:
    assert ssl_context(load_settings({})) is None
    context = ssl_context(load_settings({"SENTINEL_SECURITY_PROTOCOL": "SASL_SSL"}))
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0  # the system's CAs are loaded
    with pytest.raises(ConfigError, match="TLS settings cannot be used"):
        ssl_context(load_settings({"SENTINEL_SECURITY_PROTOCOL": "SSL", "SENTINEL_SSL_CAFILE": "/nope.pem"}))


def test_the_worker_refuses_a_misspelt_variable_in_one_line() -> None:
    env = {"PATH": "/usr/bin:/bin", "SENTINEL_MODELS_DIRR": "x"}
    out = subprocess.run([sys.executable, "-m", "sentinel", "worker"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        "sentinel: error: unknown variable(s): SENTINEL_MODELS_DIRR (did you mean SENTINEL_MODELS_DIR?)"]
