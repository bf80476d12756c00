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
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from export.errors import SentinelError

KAFKA_VERSION = "4.1.1"
POM_PATH = Path(__file__).with_name("pom.xml")
PROPERTIES_FILE = "server.properties"
PID_FILE = "broker.pid"
LOG_FILE = "broker.log"
LOG4J2_FILE = "log4j2.properties"
LOG4J1_FILE = "log4j.properties"
MIN_JAVA = 17
BROKER_HEAP = ("-Xms256m", "-Xmx512m")
_JAVA_HINT = "install a JDK 17 (apt-get install openjdk-17-jre-headless)"
_MAVEN_TIMEOUT = 900.0
_LOG_MARKER = "=== stream-sentinel:"

# Kafka 4.x uses log4j2; 3.x (only via kafka_home) uses reload4j. Both log to stdout,
# which start_broker redirects into broker.log, so there is a single writer.
_LOG4J2 = """\
status = warn
# Kafka's own shutdown hook logs until the end; log4j's hook would cut it off.
shutdownHook = disable
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""
_LOG4J1 = """\
log4j.rootLogger=INFO, out
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
"""


class BrokerError(SentinelError):
    """Expected, user-facing failure; the message is one line and says what to do."""


@dataclass(frozen=True)
class BrokerConfig:
    """Where and how to run the dev broker; ``extra_properties`` override generated keys."""

    data_dir: Path
    port: int = 9092
    controller_port: int = 9093
    host: str = "127.0.0.1"
    cache_dir: Path | None = None
    kafka_home: Path | None = None
    extra_properties: Mapping[str, str] = field(default_factory=dict)
    kafka_version: str = KAFKA_VERSION

    def __post_init__(self) -> None:
        # Absolute paths: the pid check matches the data dir against the java cmdline.
        object.__setattr__(self, "data_dir", _abs(self.data_dir))
        for name in ("cache_dir", "kafka_home"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _abs(value))


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
        return _pid_alive(self.pid)

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


def broker_properties(config: BrokerConfig) -> dict[str, str]:
    """server.properties as a dict, so callers (SASL, tests) can override any key."""
    host, port, cport = config.host, config.port, config.controller_port
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        # Static voters work on 3.x and 4.x alike and need no `format --standalone`.
        "controller.quorum.voters": f"1@{_connect_host(host)}:{cport}",
        "controller.listener.names": "CONTROLLER",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}",
        "advertised.listeners": f"PLAINTEXT://{_connect_host(host)}:{port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(config.data_dir / "kraft-logs"),
        "num.partitions": "4",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        # After a crash the controller rejects the restarted broker until the old
        # session expires (default 9 s); shorter keeps crash/restart tests quick.
        "broker.session.timeout.ms": "4000",
        "broker.heartbeat.interval.ms": "1000",
        "auto.create.topics.enable": "true",
        "delete.topic.enable": "true",
        "log.segment.bytes": str(64 * 1024 * 1024),
        # Accept oversized producer records so the worker, not the broker, enforces the
        # payload limit (and dead-letters the message with a reason).
        "message.max.bytes": str(16 * 1024 * 1024),
        "log.retention.hours": "24",
        "log.retention.check.interval.ms": "60000",
    }
    props.update({str(k): str(v) for k, v in config.extra_properties.items()})
    return props


def write_properties(path: Path, props: Mapping[str, str]) -> None:
    """Write a Java .properties file (only backslashes and newlines need escaping here)."""
    lines = ["# Generated by streaming/kafka/broker.py on every start; edits are overwritten."]
    lines += [f"{_escape(k)}={_escape(v)}" for k, v in props.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_properties(path: Path) -> dict[str, str]:
    """Parse the simple .properties files written by :func:`write_properties`."""
    props: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line[0] in "#!" or "=" not in line:
            continue
        key, value = line.split("=", 1)
        props[_unescape(key.strip())] = _unescape(value.strip())
    return props


def bootstrap_from_properties(props: Mapping[str, str]) -> str:
    """host:port clients should use: the PLAINTEXT advertised listener, else the first one."""
    raw = props.get("advertised.listeners") or props.get("listeners", "")
    entries = [e.strip() for e in raw.split(",") if "://" in e]
    if not entries:
        raise BrokerError("server.properties defines no listeners")
    chosen = next((e for e in entries if e.startswith("PLAINTEXT://")), entries[0])
    host, _, port = chosen.split("://", 1)[1].rpartition(":")
    return f"{_connect_host(host)}:{port}"


# --- jars ---------------------------------------------------------------------------


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
    _format_storage(java, classpath, data_dir, props)
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


def free_port() -> int:
    """A TCP port that was free a moment ago (for tests and ad-hoc brokers)."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (sockets are held together so they cannot repeat)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def _format_storage(java: str, classpath: str, data_dir: Path, props: Mapping[str, str]) -> None:
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
    if pid is None or pid <= 0 or not _pid_alive(pid):
        return None
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except FileNotFoundError:
        return pid if not Path("/proc/self").exists() else None  # no procfs: trust file
    except OSError:
        return None
    ours = "kafka.Kafka" in args and str(data_dir / PROPERTIES_FILE) in args
    return pid if ours else None


def _pid_alive(pid: int) -> bool:
    """Reaps our own exited children first, since os.kill(pid, 0) succeeds on zombies."""
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


def _summary_line(output: str) -> str:
    """First [ERROR] line of tool output (the informative one), else the last line."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "ERROR" in ln or "Exception" in ln]
    if errors:
        return errors[0][:400]
    return lines[-1][:400] if lines else "no output"


def _cluster_id() -> str:
    """Kafka's Uuid text form: url-safe base64 of 16 random bytes, never starting '-'."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _connect_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0") else host


def _abs(path: Path | str) -> Path:
    return Path(path).expanduser().resolve()


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _read_int(path: Path) -> int | None:
    text = _read_text(path)
    try:
        return int(text.strip()) if text else None
    except ValueError:
        return None


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text)
