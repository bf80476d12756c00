"""The Docker engine and Compose v2 for the compose test: installed and started where missing.

Found on this project's machines (Debian bookworm in a VM, no systemd, root): Debian's
``docker.io`` (Engine 20.10) runs with its defaults - overlay2 storage, bridge networking with
iptables (nft) - so dockerd is started without extra flags. Compose v2: bookworm's
``docker-compose`` package is the v1 Python tool (it rejects the file's top-level ``name:``),
bookworm has no compose plugin and GitHub's releases cannot be reached; Debian trixie's
``docker-compose`` package *is* Compose v2 (built by Debian from source, signed archive), so
apt-get fetches it from Debian's mirror into the cache and its static binary runs standalone,
without touching the system's apt sources. A ``docker compose`` v2 that is already installed
(Docker Desktop, docker-compose-plugin) is used as it is.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .common import CACHE, EngineUnavailable, log, run, tail_lines

DEBIAN_MIRROR = os.environ.get("COMPOSE_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
# Which tool each package brings; installed only when the tool is missing.
PACKAGES = {"dockerd": "docker.io", "debootstrap": "debootstrap", "mvn": "maven"}


@dataclass
class Engine:
    """A reachable Docker engine; ``process`` is set when this test started dockerd."""

    docker: str
    server_version: str
    process: subprocess.Popen[bytes] | None = None

    def stop(self) -> None:
        """Stop the dockerd this test started (a pre-existing engine is left alone)."""
        if self.process is None or self.process.poll() is not None:
            return
        if os.environ.get("COMPOSE_TEST_KEEP_ENGINE") == "1":
            log(f"leaving dockerd (pid {self.process.pid}) running: COMPOSE_TEST_KEEP_ENGINE=1")
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        log(f"stopped dockerd (pid {self.process.pid}), which this test had started")


def ensure_packages() -> list[str]:
    """apt-get install whatever of docker.io, debootstrap and maven is missing; returns what it installed."""
    missing = sorted({pkg for tool, pkg in PACKAGES.items() if shutil.which(tool) is None})
    if not missing:
        return []
    if os.geteuid() != 0:
        raise EngineUnavailable(f"{', '.join(missing)} missing and not root: install them "
                                f"(apt-get install {' '.join(missing)}) or run as root")
    if shutil.which("apt-get") is None:
        raise EngineUnavailable(f"{', '.join(missing)} missing and no apt-get here to install them")
    log(f"installing {' '.join(missing)} with apt-get")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    try:
        run(["apt-get", "update", "-qq"], env=env, timeout=300)
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env, timeout=900)
    except Exception as exc:
        raise EngineUnavailable(f"apt-get could not install {' '.join(missing)}: {exc}") from None
    return missing


def ensure_engine(log_dir: Path) -> Engine:
    """The running engine, else dockerd started in the background (root only)."""
    docker = shutil.which("docker")
    if docker is None:
        raise EngineUnavailable("no docker client on PATH (the docker.io package brings one)")
    version = _server_version(docker)
    if version:
        return Engine(docker, version)
    dockerd = shutil.which("dockerd")
    if dockerd is None or os.geteuid() != 0:
        raise EngineUnavailable("no Docker engine answers and this process cannot start dockerd "
                                "(needs root and the docker.io package)")
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / "dockerd.log"
    with open(log_file, "ab") as out:
        proc = subprocess.Popen([dockerd], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EngineUnavailable(f"dockerd exited with code {proc.returncode}; "
                                    f"{tail_lines(log_file, 8)!r} (log: {log_file})")
        version = _server_version(docker)
        if version:
            log(f"started dockerd {version} (pid {proc.pid}, log {log_file})")
            return Engine(docker, version, proc)
        time.sleep(1)
    proc.terminate()
    raise EngineUnavailable(f"dockerd did not answer within 90s; see {log_file}")


def _server_version(docker: str) -> str:
    res = subprocess.run([docker, "version", "--format", "{{.Server.Version}}"], capture_output=True,
                         text=True, timeout=30, check=False)
    return res.stdout.strip() if res.returncode == 0 else ""


def compose_command(docker: str) -> list[str]:
    """``docker compose`` when a v2 plugin is installed, else Debian trixie's Compose v2 binary."""
    for cmd in ([docker, "compose"], ["docker-compose"]):
        if shutil.which(cmd[0]) is None:
            continue
        res = subprocess.run([*cmd, "version", "--short"], capture_output=True, text=True, timeout=30,
                             check=False)
        if res.returncode == 0 and res.stdout.strip().lstrip("v").startswith("2."):
            return cmd
    return [str(_debian_compose())]


def _debian_compose() -> Path:
    """Debian trixie's ``docker-compose`` (v2) binary, fetched once with apt-get into the cache."""
    dest = CACHE / "compose" / "docker-compose"
    if dest.is_file():
        return dest
    if not KEYRING.is_file() or shutil.which("apt-get") is None:
        raise EngineUnavailable("no Compose v2 here and no Debian apt to fetch Debian's docker-compose "
                                "package: install the docker compose plugin")
    root = CACHE / "compose" / "apt"
    for sub in ("lists/partial", "cache/archives/partial", "deb"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    sources = root / "sources.list"
    sources.write_text(f"deb [signed-by={KEYRING}] {DEBIAN_MIRROR} trixie main\n", encoding="utf-8")
    # A private source list, package lists and cache: the system's apt configuration is not touched.
    opts = ["-o", f"Dir::Etc::SourceList={sources}", "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", f"Dir::State::Lists={root / 'lists'}", "-o", f"Dir::Cache={root / 'cache'}",
            "-o", "APT::Sandbox::User=root", "-qq"]
    log("fetching Compose v2 (Debian trixie's docker-compose package) with apt-get")
    try:
        run(["apt-get", *opts, "update"], timeout=300)
        run(["apt-get", *opts, "download", "docker-compose"], cwd=root / "deb", timeout=300)
        (deb,) = sorted((root / "deb").glob("docker-compose_*.deb"))
        run(["dpkg-deb", "-x", str(deb), str(root / "x")], timeout=120)
    except Exception as exc:
        raise EngineUnavailable(f"could not fetch Debian's docker-compose package: {exc}") from None
    binary = root / "x" / "usr" / "libexec" / "docker" / "cli-plugins" / "docker-compose"
    tmp = dest.with_suffix(".tmp")
    shutil.copy2(binary, tmp)
    tmp.replace(dest)
    shutil.rmtree(root, ignore_errors=True)
    return dest
