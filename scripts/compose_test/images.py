"""Local stand-ins for the official base images, built from Debian's packages.

python:3.11-slim, apache/kafka and prom/prometheus cannot be pulled here (no container registry
is reachable), so each gets a stand-in on a Debian bookworm minbase made by debootstrap:
Debian's Python 3.11, OpenJDK 17 with the Kafka jars the dev broker resolves from Maven Central
(streaming/kafka/pom.xml), and Debian's prometheus package. The debootstrap tarball and the
built stand-ins (``docker save``) are cached under .sentinel/compose-test/cache, keyed by their
inputs, so a second run loads them in seconds; a fresh clone builds them from nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from .common import CACHE, RUN_DIR, CheckFailed, log, python, run

PREFIX = "stream-sentinel-test"
BASE_IMAGE = f"{PREFIX}/debian:bookworm"
STANDINS = {
    "python": f"{PREFIX}/python:3.11-slim",
    "kafka": f"{PREFIX}/kafka:4.1.1",
    "prometheus": f"{PREFIX}/prometheus:v2.55.1",
}
SOURCES = Path(__file__).with_name("images")
ROOTFS_TAR = CACHE / "debian-bookworm-minbase.tar"
DEBIAN_MIRROR = os.environ.get("COMPOSE_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


def kafka_libs() -> Path:
    """The broker's jars plus the command-line tools, resolved with the dev broker's pom.

    Same pom, same Maven Central resolution and ~/.m2 cache as the dev broker; the ``tools``
    profile adds kafka-tools (kafka-topics.sh and friends). Cached beside the dev broker's jars.
    """
    from streaming.kafka.broker_config import KAFKA_VERSION, BrokerConfig
    from streaming.kafka.maven import POM_PATH, kafka_cache_dir

    root = kafka_cache_dir(BrokerConfig(data_dir=CACHE)).with_name(f"kafka-{KAFKA_VERSION}-tools")
    stamp = f"{KAFKA_VERSION} {hashlib.sha256(POM_PATH.read_bytes()).hexdigest()[:16]}\n"
    marker = root / ".resolved"
    if marker.is_file() and marker.read_text() == stamp:
        return root / "libs"
    if shutil.which("mvn") is None:
        raise CheckFailed("mvn not found: apt-get install maven")
    shutil.rmtree(root / "libs", ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    log(f"resolving Apache Kafka {KAFKA_VERSION} jars + tools from Maven Central "
        "(streaming/kafka/pom.xml -P tools)")
    run(["mvn", "-B", "-q", "-Dstyle.color=never", "-f", str(POM_PATH), "-P", "tools",
         "dependency:copy-dependencies", f"-Dkafka.version={KAFKA_VERSION}", f"-Dkafka.cache.dir={root}"],
        cwd=root, timeout=900, log_file=RUN_DIR / "maven.log")
    if not any((root / "libs").glob("kafka-tools-*.jar")):
        raise CheckFailed(f"Maven resolved no kafka-tools jar into {root / 'libs'}")
    marker.write_text(stamp)
    return root / "libs"


def base_image(docker: str) -> str:
    """Import the debootstrap'ed bookworm minbase as BASE_IMAGE (debootstrap only when not cached)."""
    if not ROOTFS_TAR.is_file():
        rootfs = CACHE / "rootfs.tmp"
        shutil.rmtree(rootfs, ignore_errors=True)
        log(f"debootstrap --variant=minbase bookworm from {DEBIAN_MIRROR}")
        run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), DEBIAN_MIRROR], timeout=900,
            log_file=RUN_DIR / "debootstrap.log")
        # The images run apt-get update themselves: the package lists and .debs are dead weight.
        for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / sub).glob("*"):
                if path.is_file():
                    path.unlink()
        tmp = ROOTFS_TAR.with_suffix(".tmp")
        run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(tmp), "."], timeout=600)
        tmp.replace(ROOTFS_TAR)
        shutil.rmtree(rootfs, ignore_errors=True)
    run([docker, "import", str(ROOTFS_TAR), BASE_IMAGE], timeout=600)
    return BASE_IMAGE


def standins(docker: str, libs: Path) -> dict[str, str]:
    """Load each stand-in from the cache, or build it on BASE_IMAGE and save it there."""
    base_key = _file_digest(ROOTFS_TAR)
    contexts = {"python": _python_context(), "kafka": _kafka_context(libs),
                "prometheus": _plain_context("prometheus")}
    saved_dir = CACHE / "images"
    saved_dir.mkdir(parents=True, exist_ok=True)
    for name, context in contexts.items():
        tag = STANDINS[name]
        key = _tree_digest(context, base_key)[:16]
        saved = saved_dir / f"{name}-{key}.tar"
        if saved.is_file():
            run([docker, "load", "-q", "-i", str(saved)], timeout=600)
            log(f"loaded {tag} from {saved.name}")
        else:
            build_args = [f"--build-arg=BASE={BASE_IMAGE}"]
            build_args += [f"--build-arg={var}={os.environ[var]}" for var in PROXY_VARS if var in os.environ]
            run([docker, "build", "--pull=false", "-t", tag, *build_args, str(context)], timeout=900,
                env={"DOCKER_BUILDKIT": "0"}, log_file=RUN_DIR / f"build-{name}.log")
            for old in saved_dir.glob(f"{name}-*.tar"):
                old.unlink()
            tmp = saved.with_suffix(".tmp")
            run([docker, "save", "-o", str(tmp), tag], timeout=600)
            tmp.replace(saved)
            log(f"built {tag}, saved as {saved.name}")
        shutil.rmtree(context, ignore_errors=True)
    return dict(STANDINS)


def _plain_context(name: str) -> Path:
    context = RUN_DIR / f"context-{name}"
    shutil.rmtree(context, ignore_errors=True)
    shutil.copytree(SOURCES / name, context)
    return context


def _kafka_context(libs: Path) -> Path:
    context = _plain_context("kafka")
    shutil.copytree(libs, context / "libs")
    return context


def _python_context() -> Path:
    """The python stand-in with the host's pip settings, so `pip install .` reaches PyPI as the host does."""
    context = _plain_context("python")
    env, cert = pip_settings()
    lines = []
    if cert is not None:
        shutil.copy(cert, context / "ca-bundle.crt")
        lines.append("COPY ca-bundle.crt /usr/local/share/compose-test/ca-bundle.crt")
        env["PIP_CERT"] = "/usr/local/share/compose-test/ca-bundle.crt"
    if env:
        quoted = " ".join(f'{k}="{_escape(v)}"' for k, v in sorted(env.items()))
        lines.append(f"ENV {quoted}")
    dockerfile = context / "Dockerfile"
    text = dockerfile.read_text(encoding="utf-8")
    dockerfile.write_text(text.replace("# @PIP_SETTINGS@", "\n".join(lines) or "# (no pip settings)"),
                          encoding="utf-8")
    return context


def pip_settings() -> tuple[dict[str, str], Path | None]:
    """The host's pip index, timeout, proxy and CA bundle (pip config files and PIP_* variables).

    The CA bundle matters where HTTPS goes through an intercepting proxy: the container's pip
    then needs the host's bundle (PIP_CERT) to reach PyPI at all.
    """
    res = run([python(), "-m", "pip", "config", "list"], check=False, timeout=60)
    values: dict[str, str] = {}
    for line in res.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.split(".", 1)[-1]] = value.strip().strip("'\"")
    names = {"index-url": "PIP_INDEX_URL", "extra-index-url": "PIP_EXTRA_INDEX_URL",
             "trusted-host": "PIP_TRUSTED_HOST", "default-timeout": "PIP_DEFAULT_TIMEOUT",
             "proxy": "PIP_PROXY"}
    env = {var: values[key] for key, var in names.items() if values.get(key)}
    env.update({var: os.environ[var] for var in PROXY_VARS if os.environ.get(var)})
    candidates = [values.get("cert"), os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"]
    cert = next((Path(c) for c in candidates if c and Path(c).is_file()), None)
    return env, cert


def remove(docker: str, tags: Iterable[str]) -> None:
    """Remove the images this test made (stand-ins, base, project image); absent ones are fine."""
    run([docker, "rmi", "-f", *tags], check=False, timeout=300)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _tree_digest(root: Path, seed: str) -> str:
    """Content hash of a build context (paths, modes, bytes) and the base it builds on."""
    digest = hashlib.sha256(seed.encode())
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(root)} {path.stat().st_mode & 0o777:o}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
