"""The broker's jars: resolved once from Maven Central with ``pom.xml`` (or ``KAFKA_HOME``), cached."""

from __future__ import annotations

import collections
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

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
    # Not -q: Maven's "Downloaded from ..." lines are the progress of a first run (a few
    # minutes, ~100 files); they are counted into one line every few seconds, not echoed.
    cmd = [
        mvn,
        "-B",
        "-Dstyle.color=never",
        "-f",
        str(POM_PATH),
        "dependency:copy-dependencies",
        f"-Dkafka.version={version}",
        f"-Dkafka.cache.dir={root}",
    ]
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    timer = threading.Timer(_MAVEN_TIMEOUT, proc.kill)
    timer.start()
    try:
        output, progress = _follow(proc.stdout, DownloadProgress(version))
        returncode = proc.wait()
    finally:
        timer.cancel()
    progress.finish()
    if returncode == -signal.SIGKILL:
        raise BrokerError(f"resolving Kafka {version} jars with Maven took over {_MAVEN_TIMEOUT:.0f}s")
    if returncode != 0 or not any((root / "libs").glob("kafka_2.13-*.jar")):
        detail = _summary_line(output)
        raise BrokerError(
            f"resolving Kafka {version} jars with Maven failed (exit {returncode}): {detail}"
        )


_DOWNLOADED = re.compile(r"Downloaded from \S+: \S+ \(([\d.]+) (B|kB|KB|MB|GB)")
_UNITS = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9}


class DownloadProgress:
    """Counts Maven's downloaded files and bytes; one stderr line every ``every`` seconds."""

    def __init__(self, version: str, every: float = 3.0, out: TextIO | None = None) -> None:
        self.version, self.every, self.out = version, every, out or sys.stderr
        self.files, self.bytes = 0, 0.0
        self.start = self.last = time.monotonic()

    def line(self, text: str) -> None:
        match = _DOWNLOADED.search(text)
        if match is None:
            return
        self.files += 1
        self.bytes += float(match.group(1)) * _UNITS[match.group(2)]
        if time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            self._print("downloading")

    def finish(self) -> None:
        if self.files:
            self._print("downloaded")

    def _print(self, verb: str) -> None:
        print(f"  maven: {verb} Apache Kafka {self.version} jars from Maven Central: {self.files} files, "
              f"{self.bytes / 1e6:.1f} MB, {time.monotonic() - self.start:.0f}s", file=self.out, flush=True)


def _follow(stream: Iterable[str] | None, progress: DownloadProgress) -> tuple[str, DownloadProgress]:
    """Feed each output line to ``progress``; keep the last lines for the error summary."""
    tail: collections.deque[str] = collections.deque(maxlen=400)
    for text in stream or ():
        tail.append(text)
        progress.line(text)
    return "".join(tail), progress


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield
