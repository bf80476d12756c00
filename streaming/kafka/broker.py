"""Single-node Apache Kafka (KRaft) for development and tests.

Why a real broker: the service relies on real Kafka semantics (consumer groups,
committed offsets, restarts), so instead of a fake we run the official broker jars,
resolved once from Maven Central with ``streaming/kafka/pom.xml`` (or taken from an
unpacked distribution via ``kafka_home`` / ``$KAFKA_HOME``), in a data directory.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from streaming.kafka.broker_config import (
    _LOG4J1,
    _LOG4J2,
    KAFKA_VERSION,
    LOG4J1_FILE,
    LOG4J2_FILE,
    BrokerConfig,
    BrokerError,
    _abs,
    _read_int,
    _read_text,
    _summary_line,
    bootstrap_from_properties,
    broker_properties,
    read_properties,
    write_properties,
)
from streaming.kafka.maven import _kafka_home, ensure_kafka_classpath, kafka_cache_dir

__all__ = ["KAFKA_VERSION", "BrokerConfig", "BrokerError", "BrokerHandle", "bootstrap_from_properties",
           "broker_properties", "broker_status", "ensure_kafka_classpath", "kafka_cache_dir",
           "read_properties", "running_broker", "start_broker", "stop_broker", "write_properties"]

PROPERTIES_FILE = "server.properties"
PID_FILE = "broker.pid"
LOG_FILE = "broker.log"
MIN_JAVA = 17
BROKER_HEAP = ("-Xms256m", "-Xmx512m")
_JAVA_HINT = "install a JDK 17 (apt-get install openjdk-17-jre-headless)"
_LOG_MARKER = "=== stream-sentinel:"


@dataclass
class BrokerHandle:
    """A broker process started by (or found from the pid file of) this module."""

    bootstrap: str
    pid: int
    config: BrokerConfig
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def is_alive(self) -> bool:
        """True while the process runs (zombies count as dead, and get reaped)."""
        if self._proc is not None:
            return self._proc.poll() is None
        return pid_alive(self.pid)

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM for a clean shutdown, SIGKILL if it takes longer than ``timeout``."""
        if not self.is_alive():
            self._forget_pid()
            return False
        self._signal(signal.SIGTERM)
        if not self._wait_dead(timeout):
            self._signal(signal.SIGKILL)
            self._wait_dead(10.0)
        self._forget_pid()
        return True

    def kill(self) -> None:
        """SIGKILL without cleanup, to simulate a crash (the stale pid file stays)."""
        if self.is_alive():
            self._signal(signal.SIGKILL)
            self._wait_dead(10.0)

    def __enter__(self) -> BrokerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def _wait_dead(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.is_alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    def _forget_pid(self) -> None:
        pid_file = self.config.data_dir / PID_FILE
        if _read_int(pid_file) == self.pid:
            pid_file.unlink(missing_ok=True)


# --- configuration ------------------------------------------------------------------


# --- jars ---------------------------------------------------------------------------


# --- start / stop -------------------------------------------------------------------


def start_broker(config: BrokerConfig, timeout: float = 90.0) -> BrokerHandle:
    """Start the broker detached and return once it answers a Kafka metadata request.

    ``timeout`` covers the wait for readiness, not the one-off jar download. The log
    directory is formatted only once, so a restart on the same data_dir keeps its data.
    """
    data_dir = config.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    running = _read_pid(data_dir)
    if running is not None:
        raise BrokerError(f"a broker is already running from {data_dir} (pid {running})")
    for port in (config.port, config.controller_port):
        _check_port_free(config.host, port)
    java = _find_java(MIN_JAVA if _kafka_home(config) is None else None)
    _require_aiokafka()
    classpath = ensure_kafka_classpath(config)
    props = broker_properties(config)
    write_properties(data_dir / PROPERTIES_FILE, props)
    (data_dir / LOG4J2_FILE).write_text(_LOG4J2)
    (data_dir / LOG4J1_FILE).write_text(_LOG4J1)
    _format_storage(java, classpath, data_dir, props, config.scram_users)
    proc = _launch(java, classpath, data_dir)
    handle = BrokerHandle(bootstrap_from_properties(props), proc.pid, config, proc)
    try:
        _wait_ready(handle, timeout)
    except BaseException:
        handle.kill()
        handle._forget_pid()
        raise
    return handle


def running_broker(data_dir: Path) -> BrokerHandle | None:
    """Handle for the broker recorded in ``data_dir``'s pid file, if it still runs."""
    data_dir = _abs(data_dir)
    pid = _read_pid(data_dir)
    if pid is None:
        return None
    bootstrap = bootstrap_from_properties(read_properties(data_dir / PROPERTIES_FILE))
    port = int(bootstrap.rpartition(":")[2])
    return BrokerHandle(bootstrap, pid, BrokerConfig(data_dir=data_dir, port=port))


def stop_broker(data_dir: Path, timeout: float = 30.0) -> bool:
    """Stop the broker of ``data_dir``; False if none was running (stale pid file removed)."""
    handle = running_broker(data_dir)
    if handle is None:
        (_abs(data_dir) / PID_FILE).unlink(missing_ok=True)
        return False
    return handle.stop(timeout)


def broker_status(data_dir: Path) -> str | None:
    """Bootstrap address of the broker running from ``data_dir``, else None."""
    handle = running_broker(data_dir)
    return handle.bootstrap if handle else None


def _format_storage(java: str, classpath: str, data_dir: Path, props: Mapping[str, str],
                    scram_users: Mapping[str, str] | None = None) -> None:
    """Format the KRaft log dirs unless already formatted (a restart must keep data)."""
    log_dirs = [Path(d) for d in props["log.dirs"].split(",") if d.strip()]
    if all((d / "meta.properties").exists() for d in log_dirs):
        return
    cmd = [
        java,
        "-Xmx256m",
        *_jvm_log_opts(data_dir),
        "-cp",
        classpath,
        "kafka.tools.StorageTool",
        "format",
        "--ignore-formatted",
        "-t",
        _cluster_id(),
        "-c",
        str(data_dir / PROPERTIES_FILE),
    ]
    for user, password in (scram_users or {}).items():
        for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            cmd += ["--add-scram", f"{mechanism}=[name={user},password={password}]"]
    res = subprocess.run(cmd, cwd=data_dir, capture_output=True, text=True, timeout=120, check=False)
    if res.returncode != 0:
        detail = _summary_line(res.stdout + "\n" + res.stderr)
        raise BrokerError(f"formatting Kafka storage in {log_dirs[0]} failed: {detail}")


def _launch(java: str, classpath: str, data_dir: Path) -> subprocess.Popen[bytes]:
    cmd = [
        java,
        *BROKER_HEAP,
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        *_jvm_log_opts(data_dir),
        "-cp",
        classpath,
        "kafka.Kafka",
        str(data_dir / PROPERTIES_FILE),
    ]
    with open(data_dir / LOG_FILE, "ab") as log:
        log.write(f"{_LOG_MARKER} starting broker {time.ctime()} ===\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            cwd=data_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (data_dir / PID_FILE).write_text(f"{proc.pid}\n")
    return proc


def _jvm_log_opts(data_dir: Path) -> list[str]:
    return [
        f"-Dlog4j2.configurationFile={data_dir / LOG4J2_FILE}",
        f"-Dlog4j.configuration=file:{data_dir / LOG4J1_FILE}",
    ]


def _wait_ready(handle: BrokerHandle, timeout: float) -> None:
    """Poll until a real Kafka request succeeds; TCP accept alone comes too early."""
    deadline = time.monotonic() + timeout
    host, _, port = handle.bootstrap.rpartition(":")
    log_dir = handle.config.data_dir
    while time.monotonic() < deadline:
        if not handle.is_alive():
            code = handle._proc.returncode if handle._proc is not None else "?"
            raise BrokerError(f"broker exited with code {code} during startup; {_log_tail(log_dir)}")
        remaining = deadline - time.monotonic()
        if _tcp_open(host, int(port)) and _kafka_answers(handle.bootstrap, min(10.0, remaining)):
            return
        time.sleep(0.25)
    raise BrokerError(
        f"broker did not answer on {handle.bootstrap} within {timeout:g}s; {_log_tail(log_dir)}"
    )


def _kafka_answers(bootstrap: str, timeout: float) -> bool:
    """Run the async probe in a worker thread, so callers may have a running loop."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        try:
            return pool.submit(asyncio.run, _probe(bootstrap, max(timeout, 1.0))).result()
        except Exception:
            return False


async def _probe(bootstrap: str, timeout: float) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout)
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    return bool(cluster.get("brokers")) and cluster.get("controller_id", -1) >= 0


# --- helpers ------------------------------------------------------------------------


def _find_java(min_major: int | None) -> str:
    """JAVA_HOME's java if set (like Kafka's scripts), else java from PATH."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    java = str(candidate) if candidate and candidate.is_file() else shutil.which("java")
    if java is None:
        raise BrokerError(f"java not found on PATH: {_JAVA_HINT}")
    major = _java_major(java) if min_major else None
    if min_major and major is not None and major < min_major:
        raise BrokerError(f"java {major} found but Kafka needs Java {min_major}+: {_JAVA_HINT}")
    return java


def _java_major(java: str) -> int | None:
    try:
        res = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', res.stderr + res.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _require_aiokafka() -> None:
    try:
        import aiokafka  # noqa: F401
    except ImportError:
        raise BrokerError("aiokafka is needed to check broker readiness: pip install aiokafka") from None


def _check_port_free(host: str, port: int) -> None:
    """SO_REUSEADDR like Kafka, so TIME_WAIT leftovers of a stopped broker do not count."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise BrokerError(
                f"port {host}:{port} is busy ({exc.strerror}): stop what holds it or choose another port"
            ) from None


def _tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _read_pid(data_dir: Path) -> int | None:
    """Pid from the pid file, only if that process is still this data_dir's broker."""
    pid = _read_int(data_dir / PID_FILE)
    if pid is None or pid <= 0 or not pid_alive(pid):
        return None
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except FileNotFoundError:
        return pid if not Path("/proc/self").exists() else None  # no procfs: trust file
    except OSError:
        return None
    ours = "kafka.Kafka" in args and str(data_dir / PROPERTIES_FILE) in args
    return pid if ours else None


def pid_alive(pid: int) -> bool:
    """Reaps our own exited children first, since os.kill(pid, 0) succeeds on zombies."""
    if pid <= 0:
        return False
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = _read_text(Path(f"/proc/{pid}/stat"))
    return not (stat and stat.rpartition(")")[2].split()[:1] == ["Z"])


def _log_tail(data_dir: Path, lines: int = 6) -> str:
    """Last meaningful broker.log lines on one line (stack frames skipped)."""
    path = data_dir / LOG_FILE
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 32_768))
            text = fh.read().decode(errors="replace")
    except OSError:
        return f"no log at {path}"
    this_run = text.rpartition(_LOG_MARKER)[2].splitlines()[1:]  # drop the marker line
    kept = [ln.strip()[:240] for ln in this_run if ln.strip() and not ln.lstrip().startswith(("at ", "..."))]
    return f"see {path}; last lines: " + " | ".join(kept[-lines:])


def _cluster_id() -> str:
    """Kafka's Uuid text form: url-safe base64 of 16 random bytes, never starting '-'."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


