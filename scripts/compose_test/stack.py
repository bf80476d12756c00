"""The users' docker-compose.yml run through Compose v2, and host-side views of the running stack.

Compose always gets the users' file plus compose.override.yml (image names only), its own
project name (so a user's real stack and its volumes are never touched), no .env file and only
the variables set here among those the file reads, so a developer's shell cannot change what is
tested.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .common import REPO, RUN_DIR, CheckFailed, run

PROJECT = "stream-sentinel-compose-test"
COMPOSE_FILE = REPO / "docker-compose.yml"
OVERRIDE = Path(__file__).with_name("compose.override.yml")
IMAGE_TAG = "compose-test"
PROJECT_IMAGE = f"stream-sentinel:{IMAGE_TAG}"
# Grafana has no Debian package to build a stand-in from: the test starts every other service.
CORE = ("kafka", "topic-init", "worker", "prometheus")
REPLAY = ("producer-prices", "producer-feedback", "alerts")


def free_port() -> int:
    """A port free on every interface (Docker publishes on 0.0.0.0)."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


class Compose:
    """``docker compose`` for the test project."""

    def __init__(self, command: list[str], docker: str, variables: Mapping[str, str]) -> None:
        self.docker = docker
        self.base = [*command, "--project-name", PROJECT, "--project-directory", str(REPO),
                     "--env-file", os.devnull, "-f", str(COMPOSE_FILE), "-f", str(OVERRIDE)]
        read = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", COMPOSE_FILE.read_text(encoding="utf-8")))
        read |= set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", OVERRIDE.read_text(encoding="utf-8")))
        env = {k: v for k, v in os.environ.items() if k not in read and not k.startswith("COMPOSE_")}
        self.env = {**env, **variables}
        self.variables = dict(variables)

    def __call__(self, *args: str, profiles: tuple[str, ...] = (), timeout: float = 600.0, check: bool = True,
                 log_name: str | None = "compose.log") -> subprocess.CompletedProcess[str]:
        cmd = [*self.base, *(f"--profile={p}" for p in profiles), *args]
        log_file = RUN_DIR / log_name if log_name else None
        return subprocess_run(cmd, self.env, timeout, check, log_file)

    def config(self, *files: Path) -> dict[str, Any]:
        """The resolved model (``config --format json``) of the given compose files, all profiles."""
        cmd = [self.base[0], *self.base[1:self.base.index("-f")]]
        cmd += [arg for f in files for arg in ("-f", str(f))]
        res = subprocess_run([*cmd, "--profile=*", "config", "--format", "json"], self.env, 120, True, None)
        return dict(json.loads(res.stdout))

    def containers(self, service: str, include_stopped: bool = False) -> list[str]:
        args = ["ps", "-q", *(["-a"] if include_stopped else []), service]
        res = self(*args, profiles=("replay",), log_name=None)
        return [line for line in res.stdout.split() if line]

    def inspect(self, container: str) -> dict[str, Any]:
        res = run([self.docker, "inspect", container], timeout=60)
        return dict(json.loads(res.stdout)[0])

    def state(self, container: str) -> tuple[str, str, int]:
        """(status, health or '', exit code) of a container."""
        state = self.inspect(container)["State"]
        return state["Status"], (state.get("Health") or {}).get("Status", ""), int(state.get("ExitCode", 0))

    def exec(self, service: str, *cmd: str, timeout: float = 120.0) -> str:
        res = self("exec", "-T", service, *cmd, timeout=timeout, log_name=None)
        return res.stdout

    def labelled(self, kind: str) -> list[str]:
        """Containers, networks or volumes that still carry this project's label."""
        flag = "-aq" if kind == "container" else "-q"
        res = run([self.docker, kind, "ls", flag, "--filter", f"label=com.docker.compose.project={PROJECT}"],
                  timeout=60, check=False)
        return res.stdout.split()


def subprocess_run(cmd: list[str], env: Mapping[str, str], timeout: float, check: bool,
                   log_file: Path | None) -> subprocess.CompletedProcess[str]:
    if log_file is None:
        try:
            res = subprocess.run(cmd, env=dict(env), timeout=timeout, capture_output=True, text=True,
                                 check=False)
        except subprocess.TimeoutExpired:
            raise CheckFailed(f"`compose {' '.join(cmd[cmd.index(str(OVERRIDE)) + 1:])}` took over "
                              f"{timeout:.0f}s") from None
        if check and res.returncode != 0:
            raise CheckFailed(f"`compose ... {' '.join(cmd[-4:])}` exited {res.returncode}: "
                              f"{' | '.join((res.stderr or res.stdout).strip().splitlines()[-8:])}")
        return res
    return _logged(cmd, env, timeout, check, log_file)


def _logged(cmd: list[str], env: Mapping[str, str], timeout: float, check: bool,
            log_file: Path) -> subprocess.CompletedProcess[str]:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "a", encoding="utf-8") as fh:
        fh.write(f"$ compose {' '.join(cmd[cmd.index(str(OVERRIDE)) + 1:])}\n")
        fh.flush()
        try:
            proc = subprocess.run(cmd, env=dict(env), timeout=timeout, stdout=fh, stderr=subprocess.STDOUT,
                                  text=True, check=False)
        except subprocess.TimeoutExpired:
            raise CheckFailed(f"`compose {' '.join(cmd[-4:])}` took over {timeout:.0f}s "
                              f"(log: {log_file})") from None
    if check and proc.returncode != 0:
        last = log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-10:]
        raise CheckFailed(f"`compose {' '.join(cmd[-4:])}` exited {proc.returncode} (log: {log_file}): "
                          f"{' | '.join(last)}")
    return subprocess.CompletedProcess(cmd, proc.returncode, "", "")


class Prometheus:
    """The HTTP API of the stack's Prometheus on its published port."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as resp:
                body = json.load(resp)
        except (OSError, ValueError) as exc:
            raise CheckFailed(f"Prometheus /api/v1/{path}: {exc}") from None
        if body.get("status") != "success":
            raise CheckFailed(f"Prometheus /api/v1/{path}: {body}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr} | ({"time": f"{at:.3f}"} if at is not None else {})
        return list(self.api("query", **params)["result"])

    def scalar(self, expr: str, at: float | None = None) -> float | None:
        """Value of a one-series query, None when it returns no series."""
        result = self.query(expr, at)
        return float(result[0]["value"][1]) if result else None


def end_offsets(bootstrap: str, topics: list[str]) -> dict[str, dict[int, int]]:
    """Each topic's partitions and their end offsets, read through the published Kafka port."""
    return asyncio.run(_end_offsets(bootstrap, topics))


async def _end_offsets(bootstrap: str, topics: list[str]) -> dict[str, dict[int, int]]:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    missing = sorted(d["topic"] for d in described if d["error_code"] != 0)
    if missing:
        raise CheckFailed(f"topics missing on the broker: {', '.join(missing)}")
    tps = [TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    out: dict[str, dict[int, int]] = {t: {} for t in topics}
    for tp, offset in ends.items():
        out[tp.topic][tp.partition] = int(offset)
    return out


def committed_offsets(bootstrap: str, group: str) -> dict[str, int]:
    """The group's committed offsets as ``topic:partition`` -> offset."""
    return asyncio.run(_committed(bootstrap, group))


async def _committed(bootstrap: str, group: str) -> dict[str, int]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {f"{tp.topic}:{tp.partition}": int(meta.offset) for tp, meta in offsets.items()}
