"""Expected failures are one clear line and a non-zero exit, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from streaming.settings import Secret, load_settings
from streaming.tools.processes import free_port

REPO = Path(__file__).resolve().parents[3]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sentinel", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=env)


def test_produce_without_source_explains_the_options() -> None:
    out = run("produce", "prices")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "--csv-dir" in out.stderr.strip().splitlines()[-1]


def test_no_broker_is_one_line() -> None:
    out = run("produce", "synthetic", "--bootstrap", f"127.0.0.1:{free_port()}", "--ticks", "5")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "cannot reach Kafka" in out.stderr and "sentinel broker start" in out.stderr


def test_missing_models_is_one_line(tmp_path: Path) -> None:
    out = run("worker", "--models-dir", str(tmp_path))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "no price-forecast model" in out.stderr


def test_settings_from_env_and_flags_with_secret_redacted() -> None:
    env = {"SENTINEL_METRICS_PORT": "9200", "SENTINEL_SASL_PASSWORD": "hunter2",
           "SENTINEL_TOPIC_PREFIX": "env-"}
    settings = load_settings(env, topic_prefix="flag-")
    assert settings.metrics_port == 9200 and settings.topic("prices.ticks") == "flag-prices.ticks"
    assert isinstance(settings.sasl_password, Secret) and "hunter2" not in repr(settings)
