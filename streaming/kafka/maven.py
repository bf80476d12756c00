"""The broker's jars: resolved once from Maven Central with ``pom.xml`` (or ``KAFKA_HOME``), cached."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from streaming.kafka.broker_config import BrokerConfig, BrokerError, _abs, _read_text, _summary_line

POM_PATH = Path(__file__).with_name("pom.xml")


_MAVEN_TIMEOUT = 900.0


def ensure_kafka_classpath(config: BrokerConfig) -> str:
    """Java classpath for the broker; resolves jars with Maven once, then uses the cache."""
    home = _kafka_home(config)
    if home is not None:
        libs = home / "libs"
        if not any(libs.glob("kafka_*.jar")):
            raise BrokerError(
                f"{libs} has no kafka_*.jar: point kafka_home/KAFKA_HOME at an unpacked Kafka distribution"
            )
        return f"{libs}/*"
    root = kafka_cache_dir(config)
    marker, stamp = root / ".resolved", _pom_stamp(config.kafka_version)
    if _read_text(marker) != stamp:
        root.mkdir(parents=True, exist_ok=True)
        with _file_lock(root / ".lock"):
            if _read_text(marker) != stamp:  # another process may have finished meanwhile
                shutil.rmtree(root / "libs", ignore_errors=True)
                _run_maven(config.kafka_version, root)
                marker.write_text(stamp)
    return f"{root / 'libs'}/*"


def kafka_cache_dir(config: BrokerConfig) -> Path:
    """``<cache>/kafka-<version>``; jars go to its ``libs`` subdirectory."""
    base = config.cache_dir
    if base is None:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "stream-sentinel"
    return base / f"kafka-{config.kafka_version}"


def _kafka_home(config: BrokerConfig) -> Path | None:
    if config.kafka_home is not None:
        return config.kafka_home
    env = os.environ.get("KAFKA_HOME")
    return _abs(Path(env)) if env else None


def _pom_stamp(version: str) -> str:
    """Marker content: re-resolve when the version or the pom itself changes."""
    digest = hashlib.sha256(POM_PATH.read_bytes()).hexdigest()[:16]
    return f"{version} {digest}\n"


def _run_maven(version: str, root: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "mvn not found on PATH: install Maven (apt-get install maven) "
            "or set KAFKA_HOME to a Kafka distribution"
        )
    cmd = [
        mvn,
        "-q",
        "-B",
        "-Dstyle.color=never",
        "-f",
        str(POM_PATH),
        "dependency:copy-dependencies",
        f"-Dkafka.version={version}",
        f"-Dkafka.cache.dir={root}",
    ]
    try:
        res = subprocess.run(
            cmd, cwd=root, capture_output=True, text=True, timeout=_MAVEN_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise BrokerError(
            f"resolving Kafka {version} jars with Maven took over {_MAVEN_TIMEOUT:.0f}s"
        ) from None
    if res.returncode != 0 or not any((root / "libs").glob("kafka_2.13-*.jar")):
        detail = _summary_line(res.stdout + "\n" + res.stderr)
        raise BrokerError(
            f"resolving Kafka {version} jars with Maven failed (exit {res.returncode}): {detail}"
        )


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield
