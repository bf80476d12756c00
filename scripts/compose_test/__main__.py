"""Run the compose test: ``python -m scripts.compose_test [--report FILE]`` from the repository root.

Steps: engine (install/start) -> Kafka jars -> base + stand-in images -> the override swaps image
names only -> build the project's image -> stack up and checks -> --scale worker=2 -> replay ->
down/up from the volumes -> cleanup (always, also on failure or Ctrl-C). Exit code 0 passed,
1 failed, 3 no Docker engine could be had here (the pytest wrapper skips on 3 unless CI=true).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from . import engine as engine_mod
from . import images
from .common import REPO, RUN_DIR, CheckFailed, EngineUnavailable, Report, log, run
from .netguard import BUILD, EgressGuard
from .scenario import Scenario
from .stack import IMAGE_TAG, PROJECT_IMAGE, Compose, free_port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.compose_test", description=__doc__)
    parser.add_argument("--report", type=Path, default=RUN_DIR / "report.json", help="JSON result file")
    args = parser.parse_args(argv)
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _interrupt)
    report = Report()
    try:
        _run(report)
    except KeyboardInterrupt:
        report.outcome, report.error = "failed", "interrupted"
    report.write(args.report)
    log(f"compose test {report.outcome} in {sum(s.seconds for s in report.steps):.0f}s"
        f"{': ' + report.error if report.error else ''} (report: {args.report})")
    return {"passed": 0, "unavailable": 3}.get(report.outcome, 1)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # the finally blocks clean up on SIGTERM as on Ctrl-C


def _run(report: Report) -> None:
    eng: engine_mod.Engine | None = None
    try:
        with report.step("docker engine and compose v2"):
            installed = engine_mod.ensure_packages()
            eng = engine_mod.ensure_engine(RUN_DIR)
            compose_cmd = engine_mod.compose_command(eng.docker)
            compose_version = run([*compose_cmd, "version", "--short"], timeout=60).stdout.strip()
            report.facts.update(engine=eng.server_version, started_engine=eng.process is not None,
                                compose=f"{' '.join(compose_cmd)} {compose_version}", apt_installed=installed)
    except EngineUnavailable as exc:
        report.outcome, report.error = "unavailable", str(exc)
        return
    except CheckFailed as exc:
        report.outcome, report.error = "failed", str(exc)
        return
    try:
        _with_engine(report, eng, compose_cmd)
    finally:
        eng.stop()


def _with_engine(report: Report, eng: engine_mod.Engine, compose_cmd: list[str]) -> None:
    docker = eng.docker
    guard = EgressGuard.setup(images.DEBIAN_MIRROR)
    report.facts["egress_guard"] = guard is not None
    with open(RUN_DIR / "image-events.jsonl", "w") as events_log:  # the child keeps its own descriptor
        events = subprocess.Popen([docker, "events", "--format", "{{json .}}", "--filter", "type=image"],
                                  stdout=events_log, stderr=subprocess.DEVNULL)
    ports = {"KAFKA_HOST_PORT": free_port(), "PROMETHEUS_PORT": free_port(), "GRAFANA_PORT": free_port()}
    variables = {
        "COMPOSE_TEST_PYTHON_IMAGE": images.STANDINS["python"],
        "COMPOSE_TEST_KAFKA_IMAGE": images.STANDINS["kafka"],
        "COMPOSE_TEST_PROMETHEUS_IMAGE": images.STANDINS["prometheus"],
        "SENTINEL_IMAGE_TAG": IMAGE_TAG,
        "SENTINEL_DATA_ROOT": str(_replay_data()),
        # Documented knobs: the sample's 10 days (nights and a weekend included) replay in about
        # 50 s instead of 5.5 min; gaps keep their proportions, which is what the detector uses.
        "SENTINEL_REPLAY_SPEED": "20000",
        "SENTINEL_FEEDBACK_RATE": "10",
        **{k: str(v) for k, v in ports.items()},
    }
    compose = Compose(compose_cmd, docker, variables)
    cache_before = _build_cache_ids(docker)
    report.facts["ports"] = ports
    try:
        if guard is not None:
            guard.guard_bridge("docker0", BUILD)
        _down(compose)  # leftovers of a run that was killed
        with report.step("Kafka jars (Maven Central, dev broker's pom)"):
            libs = images.kafka_libs()
        with report.step("base image (debootstrap bookworm minbase)"):
            images.base_image(docker)
        with report.step("stand-in images (python, kafka, prometheus)"):
            images.standins(docker, libs)
        scenario = Scenario(report, compose, ports, guard)
        scenario.override_swaps_images_only()
        scenario.build_project_image()
        if guard is not None:
            guard.unguard_bridge("docker0")
        scenario.run()
        report.outcome = "passed"
    except CheckFailed as exc:
        report.outcome, report.error = "failed", str(exc)
        _dump_logs(compose)
    finally:
        with report.step("cleanup (containers, networks, volumes, images, build cache)") as details:
            _down(compose)
            images.remove(docker, [*images.STANDINS.values(), images.BASE_IMAGE, PROJECT_IMAGE])
            if not cache_before:
                run([docker, "builder", "prune", "-f"], check=False, timeout=300)
                details.append("dangling build cache pruned (the engine had none before)")
            else:
                details.append("build cache left: the engine had build cache before this test")
            events.terminate()
            events.wait(timeout=10)
            pulls = _pulls(RUN_DIR / "image-events.jsonl")
            report.facts["image_pulls"] = pulls
            if guard is not None:
                report.facts["egress_dropped_packets"] = guard.dropped()
                guard.remove()
            left = {kind: compose.labelled(kind) for kind in ("container", "network", "volume")}
            left["image"] = [t for t in [*images.STANDINS.values(), images.BASE_IMAGE, PROJECT_IMAGE]
                             if run([docker, "image", "inspect", t], check=False, timeout=60).returncode == 0]
            leftovers = {k: v for k, v in left.items() if v}
            details.append(f"left behind: {leftovers or 'nothing'}")
        problems = []
        if leftovers:
            problems.append(f"cleanup left {leftovers}")
        if pulls:
            problems.append(f"the engine pulled images from a registry: {pulls}")
        dropped = report.facts.get("egress_dropped_packets", {})
        if any(dropped.values()):
            problems.append(f"the egress guard dropped packets (traffic to neither a project container "
                            f"nor a package registry): {dropped}; see {RUN_DIR}")
        if problems and report.outcome == "passed":
            report.outcome, report.error = "failed", "; ".join(problems)


def _down(compose: Compose) -> None:
    compose("down", "--volumes", "--remove-orphans", "--timeout", "30", profiles=("replay",), check=False,
            timeout=300)


def _replay_data() -> Path:
    """The shipped sample laid out like SENTINEL_DATA_ROOT (prices/intraday/recent_5min, reviews)."""
    root = RUN_DIR / "data"
    prices, reviews = root / "prices" / "intraday" / "recent_5min", root / "reviews"
    for directory in (prices, reviews):
        directory.mkdir(parents=True, exist_ok=True)
    samples = REPO / "data" / "samples"
    for src, dest in [*((p, prices) for p in (samples / "prices").glob("*.csv")),
                      *((r, reviews) for r in (samples / "reviews").glob("*.csv.gz"))]:
        shutil.copy(src, dest / src.name)
        (dest / src.name).chmod(0o644)
    for directory in (root, root / "prices", root / "prices" / "intraday", prices, reviews):
        directory.chmod(0o755)
    return root


def _build_cache_ids(docker: str) -> list[str]:
    res = run([docker, "system", "df", "-v", "--format", "{{json .BuildCache}}"], check=False, timeout=120)
    try:
        return [str(c["ID"]) for c in json.loads(res.stdout or "[]") or []]
    except ValueError:
        return ["unknown"]


def _pulls(path: Path) -> list[str]:
    pulls = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event: dict[str, Any] = json.loads(line)
        except ValueError:
            continue
        if event.get("Action") == "pull":
            pulls.append(str(event.get("id") or event.get("Actor", {}).get("ID")))
    return pulls


def _dump_logs(compose: Compose) -> None:
    """Every service's log into the run directory, for the failure report."""
    out = RUN_DIR / "service-logs.txt"
    res = compose("logs", "--no-color", "--timestamps", profiles=("replay",), check=False, timeout=120,
                  log_name=None)
    out.write_text(res.stdout + res.stderr, encoding="utf-8")
    log(f"service logs: {out}")


if __name__ == "__main__":
    sys.exit(main())
