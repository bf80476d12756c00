"""Fast tests for streaming.kafka.broker that need neither Java nor Maven."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from streaming.kafka import broker
from streaming.kafka.broker import (
    BrokerConfig,
    BrokerError,
    bootstrap_from_properties,
    broker_properties,
    broker_status,
    ensure_kafka_classpath,
    read_properties,
    start_broker,
    stop_broker,
    write_properties,
)
from streaming.tools.processes import free_port, free_ports


@pytest.fixture
def no_tools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """PATH with nothing on it (no java, no mvn) and no KAFKA_HOME / JAVA_HOME."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.delenv("KAFKA_HOME", raising=False)
    return empty


def _config(tmp_path: Path, **kw: object) -> BrokerConfig:
    port, cport = free_ports(2)
    return BrokerConfig(data_dir=tmp_path / "data", port=port, controller_port=cport, **kw)


def test_default_properties_are_single_node_kraft(tmp_path: Path) -> None:
    cfg = BrokerConfig(data_dir=tmp_path / "d", port=19092, controller_port=19093)
    props = broker_properties(cfg)
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert Path(props["log.dirs"]).parent == cfg.data_dir
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
    ):
        assert props[key] == "1"
    assert props["num.partitions"] == "4"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["auto.create.topics.enable"] == "true"


def test_extra_properties_override_and_extend(tmp_path: Path) -> None:
    extras = {
        "listeners": "SASL_PLAINTEXT://127.0.0.1:1,PLAINTEXT://127.0.0.1:2,CONTROLLER://h:3",
        "sasl.enabled.mechanisms": "PLAIN",
        "num.partitions": "8",
    }
    props = broker_properties(BrokerConfig(data_dir=tmp_path, extra_properties=extras))
    assert props["listeners"] == extras["listeners"]
    assert props["sasl.enabled.mechanisms"] == "PLAIN"
    assert props["num.partitions"] == "8"


def test_wildcard_host_is_advertised_as_loopback(tmp_path: Path) -> None:
    props = broker_properties(BrokerConfig(data_dir=tmp_path, host="0.0.0.0", port=9999))
    assert props["listeners"].startswith("PLAINTEXT://0.0.0.0:9999,")
    assert bootstrap_from_properties(props) == "127.0.0.1:9999"


def test_bootstrap_prefers_plaintext_listener() -> None:
    props = {"advertised.listeners": "SASL_PLAINTEXT://a:1,PLAINTEXT://b:2"}
    assert bootstrap_from_properties(props) == "b:2"
    assert bootstrap_from_properties({"listeners": "SSL://c:3"}) == "c:3"
    with pytest.raises(BrokerError):
        bootstrap_from_properties({})


def test_properties_round_trip(tmp_path: Path) -> None:
    props = {"a.b": "x=y:z", "path": "C:\\dir\\file", "multi": "one\ntwo"}
    path = tmp_path / "server.properties"
    write_properties(path, props)
    assert read_properties(path) == props


def test_config_paths_are_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = BrokerConfig(data_dir=Path("rel"), cache_dir=Path("c"))
    assert cfg.data_dir == tmp_path.resolve() / "rel"
    assert cfg.cache_dir == tmp_path.resolve() / "c"


def test_free_ports_are_distinct() -> None:
    ports = free_ports(4)
    assert len(set(ports)) == 4
    assert 0 < free_port() < 65536


# --- pid file handling ----------------------------------------------------------------


@pytest.fixture
def fake_broker(tmp_path: Path) -> Iterator[tuple[BrokerConfig, subprocess.Popen[bytes]]]:
    """A sleeping process whose command line looks like our broker's."""
    cfg = _config(tmp_path)
    cfg.data_dir.mkdir()
    props_file = cfg.data_dir / broker.PROPERTIES_FILE
    write_properties(props_file, broker_properties(cfg))
    code = "import time; time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code, "kafka.Kafka", str(props_file)])
    (cfg.data_dir / broker.PID_FILE).write_text(f"{proc.pid}\n")
    yield cfg, proc
    proc.kill()
    proc.wait()


def test_status_and_stop_of_running_broker(fake_broker: tuple) -> None:
    cfg, proc = fake_broker
    assert broker_status(cfg.data_dir) == f"127.0.0.1:{cfg.port}"
    assert stop_broker(cfg.data_dir, timeout=5) is True
    assert proc.wait(timeout=5) is not None
    assert not (cfg.data_dir / broker.PID_FILE).exists()
    assert broker_status(cfg.data_dir) is None
    assert stop_broker(cfg.data_dir) is False


def test_start_refuses_when_already_running(fake_broker: tuple) -> None:
    cfg, _ = fake_broker
    with pytest.raises(BrokerError, match="already running"):
        start_broker(cfg)


def test_stale_pid_file_is_ignored_and_removed(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    (tmp_path / broker.PID_FILE).write_text(f"{proc.pid}\n")
    assert broker_status(tmp_path) is None
    assert stop_broker(tmp_path) is False
    assert not (tmp_path / broker.PID_FILE).exists()


def test_pid_of_unrelated_process_is_not_a_broker(tmp_path: Path) -> None:
    write_properties(tmp_path / broker.PROPERTIES_FILE, broker_properties(BrokerConfig(tmp_path)))
    (tmp_path / broker.PID_FILE).write_text(f"{os.getpid()}\n")
    assert broker_status(tmp_path) is None
    (tmp_path / broker.PID_FILE).write_text("garbage\n")
    assert broker_status(tmp_path) is None


# --- preconditions --------------------------------------------------------------------


def test_missing_java_is_a_clear_error(tmp_path: Path, no_tools: Path) -> None:
    with pytest.raises(BrokerError, match=r"java not found on PATH: install a JDK 17"):
        start_broker(_config(tmp_path))


def test_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        cfg = BrokerConfig(data_dir=tmp_path, port=sock.getsockname()[1], controller_port=free_port())
        with pytest.raises(BrokerError, match="busy"):
            start_broker(cfg)


def test_missing_maven_is_a_clear_error(tmp_path: Path, no_tools: Path) -> None:
    with pytest.raises(BrokerError, match=r"mvn not found on PATH.*apt-get install maven"):
        ensure_kafka_classpath(BrokerConfig(tmp_path, cache_dir=tmp_path / "cache"))


def _fake_mvn(bin_dir: Path, body: str) -> Path:
    """A Python stand-in for mvn on the empty PATH; records each invocation."""
    calls = bin_dir / "calls"
    script = bin_dir / "mvn"
    script.write_text(
        f"#!{sys.executable}\nimport sys, pathlib\n"
        f"with open({str(calls)!r}, 'a') as f: f.write('run\\n')\n{body}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return calls


_MAKE_JAR = """\
root = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("-Dkafka.cache.dir="))
libs = pathlib.Path(root) / "libs"
libs.mkdir(parents=True)
(libs / "kafka_2.13-0.jar").touch()"""


def test_classpath_is_resolved_once_then_cached(tmp_path: Path, no_tools: Path) -> None:
    calls = _fake_mvn(no_tools, _MAKE_JAR)
    cfg = BrokerConfig(tmp_path, cache_dir=tmp_path / "cache")
    first = ensure_kafka_classpath(cfg)
    second = ensure_kafka_classpath(cfg)
    libs = tmp_path / "cache" / f"kafka-{broker.KAFKA_VERSION}" / "libs"
    assert first == second == f"{libs}/*"
    assert calls.read_text().count("run") == 1


def test_maven_failure_reports_error_line(tmp_path: Path, no_tools: Path) -> None:
    _fake_mvn(no_tools, 'print("[ERROR] Failed to execute goal: no network"); sys.exit(1)')
    cfg = BrokerConfig(tmp_path, cache_dir=tmp_path / "cache")
    with pytest.raises(BrokerError, match=r"exit 1\): \[ERROR\] Failed to execute goal"):
        ensure_kafka_classpath(cfg)


def test_kafka_home_is_used_without_maven(tmp_path: Path, no_tools: Path) -> None:
    home = tmp_path / "kafka"
    (home / "libs").mkdir(parents=True)
    with pytest.raises(BrokerError, match="no kafka_"):
        ensure_kafka_classpath(BrokerConfig(tmp_path, kafka_home=home))
    (home / "libs" / "kafka_2.13-3.9.0.jar").touch()
    assert ensure_kafka_classpath(BrokerConfig(tmp_path, kafka_home=home)) == f"{home}/libs/*"


def test_kafka_home_env_var(tmp_path: Path, no_tools: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "libs").mkdir()
    (tmp_path / "libs" / "kafka_2.13-4.1.1.jar").touch()
    monkeypatch.setenv("KAFKA_HOME", str(tmp_path))
    assert ensure_kafka_classpath(BrokerConfig(tmp_path / "d")) == f"{tmp_path}/libs/*"


def test_first_download_shows_progress(tmp_path: Path, no_tools: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    lines = ["[INFO] Downloading from central: https://repo/x.pom",
             "[INFO] Downloaded from central: https://repo/x.pom (2.5 kB at 10 kB/s)",
             "[INFO] Downloaded from central: https://repo/kafka.jar (6.5 MB at 3.1 MB/s)",
             "[INFO] Downloaded from central: https://repo/y.jar (512 B at 1 kB/s)"]
    _fake_mvn(no_tools, "".join(f"print({ln!r})\n" for ln in lines) + _MAKE_JAR)
    ensure_kafka_classpath(BrokerConfig(tmp_path, cache_dir=tmp_path / "cache"))
    err = capsys.readouterr().err
    assert "maven: downloaded Apache Kafka" in err and "3 files, 6.5 MB" in err
