"""The checks against the running stack, in the order a user would meet them."""

from __future__ import annotations

import copy
import functools
import json
import os
import selectors
import subprocess
import time

import yaml

from streaming import topics

from .common import REPO, RUN_DIR, CheckFailed, Report, python, run, wait_for
from .images import STANDINS
from .netguard import STACK, EgressGuard
from .stack import (
    COMPOSE_FILE,
    CORE,
    OVERRIDE,
    PROJECT,
    PROJECT_IMAGE,
    Compose,
    Prometheus,
    committed_offsets,
    end_offsets,
)

GROUP = "stream-sentinel"  # the worker's Faust app id = its consumer group
CONTRACT = [*topics.INPUT_TOPICS, *topics.OUTPUT_TOPICS]
PARTITIONS = 4  # docker-compose.yml's SENTINEL_PARTITIONS default
RULES = REPO / "deploy" / "prometheus" / "rules"
SAMPLE_PRICES = REPO / "data" / "samples" / "prices"


class Scenario:
    def __init__(self, report: Report, compose: Compose, ports: dict[str, int],
                 guard: EgressGuard | None) -> None:
        self.report, self.compose, self.guard = report, compose, guard
        self.bootstrap = f"localhost:{ports['KAFKA_HOST_PORT']}"
        self.prometheus = Prometheus(ports["PROMETHEUS_PORT"])
        self.guarded: set[str] = set()

    # ---------------------------------------------------------------- before the stack runs

    def override_swaps_images_only(self) -> None:
        with self.report.step("the override swaps image names only") as details:
            users = self.compose.config(COMPOSE_FILE)
            tested = self.compose.config(COMPOSE_FILE, OVERRIDE)
            swapped = []
            for name, service in tested["services"].items():
                service = copy.deepcopy(service)
                original = users["services"][name]
                if service.get("image") != original.get("image"):
                    swapped.append(f"{name}: {original.get('image')} -> {service.get('image')}")
                    service["image"] = original.get("image")
                args = service.get("build", {}).get("args", {})
                if args.pop("PYTHON_IMAGE", None) is not None:
                    swapped.append(f"{name}: build arg PYTHON_IMAGE")
                    if not args:
                        service["build"].pop("args")
                if service != original:
                    raise CheckFailed(f"the override changes service {name} beyond its image")
            strip = {k: v for k, v in tested.items() if k != "services" and not k.startswith("x-")}
            if strip != {k: v for k, v in users.items() if k != "services" and not k.startswith("x-")}:
                raise CheckFailed("the override changes top-level keys (networks, volumes, name)")
            details.append(f"{len(swapped)} swaps, nothing else differs")

    def build_project_image(self) -> None:
        with self.report.step("build the project's image (docker compose build, BuildKit)") as details:
            self.compose("build", "worker", timeout=900, log_name="build-project.log")
            size = run([self.compose.docker, "image", "inspect", "-f", "{{.Size}}", PROJECT_IMAGE]).stdout
            details.append(f"{PROJECT_IMAGE} on {STANDINS['python']}, {int(size) / 1e6:.0f} MB")

    # ---------------------------------------------------------------------------- the stack

    def run(self) -> None:
        self.stack_up()
        self.broker_and_topics()
        self.worker_healthy()
        self.prometheus_rules_and_targets(workers=1)
        self.scale_to_two()
        self.replay()
        self.alerts_reach_host_subscriber()
        self.restart_from_volumes()

    def _up(self, *services: str, scale: int = 1, profiles: tuple[str, ...] = ()) -> None:
        """`up` with the guard on the project's network before any container of it starts."""
        # --scale on both calls: a bare `up` scales the worker back to 1. Never pull: the images are local.
        flags = ("--no-build", "--pull", "never", "--scale", f"worker={scale}")
        self.compose("up", "--no-start", *flags, *services, profiles=profiles)
        self._guard_network()
        self.compose("up", "-d", *flags, *services, profiles=profiles, timeout=600)

    def _guard_network(self) -> None:
        if self.guard is None:
            return
        network = f"{PROJECT}_default"
        net_id = run([self.compose.docker, "network", "inspect", "-f", "{{.Id}}", network]).stdout
        bridge = f"br-{net_id.strip()[:12]}"
        if bridge not in self.guarded:
            self.guard.guard_bridge(bridge, STACK)
            self.guarded.add(bridge)

    def stack_up(self) -> None:
        with self.report.step("stack up: kafka, topic-init, worker, prometheus (no grafana)"):
            self._up(*CORE)

    def broker_and_topics(self) -> None:
        with self.report.step("broker healthy, topic-init created every topic") as details:
            self._wait_healthy("kafka", 1, 180)
            (init,) = self.compose.containers("topic-init", include_stopped=True)
            status, _, code = self.compose.state(init)
            if (status, code) != ("exited", 0):
                raise CheckFailed(f"topic-init is {status} with exit code {code}")
            offsets = end_offsets(self.bootstrap, CONTRACT)
            wrong = {t: len(p) for t, p in offsets.items() if len(p) != PARTITIONS}
            if wrong:
                raise CheckFailed(f"topics with a partition count other than {PARTITIONS}: {wrong}")
            details.append(f"{len(CONTRACT)} topics x {PARTITIONS} partitions, read on the published port")

    def worker_healthy(self) -> None:
        with self.report.step("worker healthy (compose healthcheck and the image's HEALTHCHECK)") as details:
            (worker,) = self._wait_healthy("worker", 1, 180)
            check = json.loads(run([self.compose.docker, "image", "inspect", "-f",
                                    "{{json .Config.Healthcheck}}", PROJECT_IMAGE]).stdout)
            test = check["Test"]
            if test[0] != "CMD":
                raise CheckFailed(f"unexpected image HEALTHCHECK {test}")
            run([self.compose.docker, "exec", worker, *test[1:]], timeout=30)
            details.append("both probes answer")

    def prometheus_rules_and_targets(self, workers: int) -> None:
        with self.report.step(f"Prometheus: every rule loaded, {workers} worker target(s) up"):
            self._wait_healthy("prometheus", 1, 120)
            expected = {rule["alert"] for path in RULES.glob("*.yml")
                        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
                        for rule in group["rules"] if "alert" in rule}

            def rules_ok() -> bool:
                groups = self.prometheus.api("rules")["groups"]
                loaded = {r["name"]: r["health"] for g in groups for r in g["rules"]}
                if set(loaded) != expected:
                    raise CheckFailed(f"loaded rules {sorted(loaded)} != {sorted(expected)}")
                bad = {n: h for n, h in loaded.items() if h != "ok"}
                if bad:
                    raise CheckFailed(f"rules not evaluated ok yet: {bad}")
                return True

            wait_for("Prometheus rules", rules_ok, 90, 3)
            self._wait_targets(workers)

    def _wait_targets(self, workers: int) -> None:
        def targets() -> bool:
            ups = self.prometheus.query('up{job="sentinel-worker"}')
            values = sorted(float(u["value"][1]) for u in ups)
            if values != [1.0] * workers:
                raise CheckFailed(f"up{{job=\"sentinel-worker\"}} = {values}")
            return True

        wait_for(f"{workers} worker targets up", targets, 120, 3)

    def scale_to_two(self) -> None:
        with self.report.step("--scale worker=2: two healthy workers share the partitions") as details:
            self._up(*CORE, scale=2)
            self._wait_healthy("worker", 2, 180)
            owners = wait_for("both workers own input partitions", lambda: self._owners(2), 180, 5)
            self._wait_targets(2)
            details.append(", ".join(f"{host}: {len(tps)} input partitions" for host, tps in owners.items()))

    def _owners(self, hosts: int) -> dict[str, list[str]] | None:
        """Input partitions per consumer host (container), from kafka-consumer-groups.sh in the broker."""
        out = self.compose.exec("kafka", "/opt/kafka/bin/kafka-consumer-groups.sh", "--bootstrap-server",
                                "localhost:9092", "--describe", "--group", GROUP)
        owners: dict[str, list[str]] = {}
        seen = 0
        for line in out.splitlines():
            cols = line.split()
            if len(cols) >= 9 and cols[0] == GROUP and cols[1] in topics.INPUT_TOPICS:
                seen += 1
                if cols[6] != "-":
                    owners.setdefault(cols[7].lstrip("/"), []).append(f"{cols[1]}:{cols[2]}")
        owned = sum(len(v) for v in owners.values())
        want = len(topics.INPUT_TOPICS) * PARTITIONS
        if len(owners) != hosts or owned != want or seen != want:
            raise CheckFailed(f"{owned}/{want} input partitions owned by {len(owners)} consumers")
        return owners

    def replay(self) -> None:
        with self.report.step("replay profile: prices and feedback processed, by both workers") as details:
            self._up(*CORE, "producer-prices", "producer-feedback", "alerts", scale=2, profiles=("replay",))
            for producer in ("producer-prices", "producer-feedback"):
                wait_for(f"{producer} finished", functools.partial(self._exited_ok, producer), 300, 5)
            inputs = end_offsets(self.bootstrap, list(topics.INPUT_TOPICS))
            totals = {t: sum(p.values()) for t, p in inputs.items()}
            if not all(totals.values()):
                raise CheckFailed(f"the producers wrote nothing: {totals}")

            def processed() -> dict[str, float]:
                got = {t: self.prometheus.scalar(f'sum(sentinel_messages_total{{topic="{t}"}})') or 0.0
                       for t in totals}
                if any(got[t] < totals[t] for t in totals):
                    raise CheckFailed(f"processed {got} of {totals}")
                return got

            got = wait_for("every input message processed", processed, 180, 5)
            per_worker = {r["metric"]["instance"]: float(r["value"][1]) for r in
                          self.prometheus.query("sum by (instance) (sentinel_messages_total)")}
            if len(per_worker) != 2 or not all(per_worker.values()):
                raise CheckFailed(f"messages per worker: {per_worker} (both must process)")
            if any(got[t] != totals[t] for t in totals):
                raise CheckFailed(f"processed {got} != produced {totals} (duplicates)")
            details.append(f"produced = processed = {totals}; per worker {per_worker}")

    def _exited_ok(self, service: str) -> bool:
        (container,) = self.compose.containers(service, include_stopped=True)
        status, _, code = self.compose.state(container)
        if status == "exited" and code != 0:
            raise CheckFailed(f"{service} exited with code {code}") from None
        return status == "exited"

    def alerts_reach_host_subscriber(self) -> None:
        with self.report.step("alerts reach a subscriber on the published Kafka port") as details:
            anomalies, escalations = self._tail_alerts(timeout=90)
            if not anomalies or not escalations:
                raise CheckFailed(f"`sentinel alerts tail --json` from the host got {anomalies} anomalies, "
                                  f"{escalations} escalations")
            printed = self.compose("logs", "--no-color", "alerts", profiles=("replay",), log_name=None).stdout
            lines = [ln for ln in printed.splitlines() if "feedback" in ln or "price" in ln]
            if not lines:
                raise CheckFailed("the alerts service printed no alert")
            details.append(f"host tail: {anomalies} anomalies, {escalations} escalations; "
                           f"alerts service: {len(lines)} lines")

    def _tail_alerts(self, timeout: float) -> tuple[int, int]:
        cmd = [python(), "-m", "sentinel", "alerts", "tail", "--json", "--from-beginning",
               "--bootstrap", self.bootstrap]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
        with open(RUN_DIR / "alerts-tail.stderr", "w") as err:
            proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        assert proc.stdout is not None
        anomalies = escalations = 0
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            try:
                while time.monotonic() < deadline and not (anomalies and escalations):
                    if not sel.select(timeout=1.0):
                        if proc.poll() is not None:
                            break
                        continue
                    line = proc.stdout.readline()
                    if not line:
                        break
                    record = json.loads(line)
                    anomalies += "symbol" in record
                    escalations += "priority" in record
            finally:
                proc.terminate()
                proc.wait(timeout=15)
        return anomalies, escalations

    def restart_from_volumes(self) -> None:
        with self.report.step("down, then up again: resumes from the volumes") as details:
            t0 = time.time()
            before = end_offsets(self.bootstrap, CONTRACT)
            committed = {k: v for k, v in committed_offsets(self.bootstrap, GROUP).items()
                         if k.split(":")[0] in topics.INPUT_TOPICS}
            total = self.prometheus.scalar("sum(sentinel_messages_total)", at=t0)
            self.compose("down", "--timeout", "30", profiles=("replay",), timeout=300)
            volumes = self.compose.labelled("volume")
            if len(volumes) < 2:
                raise CheckFailed(f"`down` without -v left volumes {volumes}")
            self._up(*CORE)
            (worker,) = self._wait_healthy("worker", 1, 180)
            wait_for("the restarted worker owns every input partition", lambda: self._owners(1), 180, 5)
            time.sleep(10)  # a worker that re-read its input would have produced output by now
            after = end_offsets(self.bootstrap, CONTRACT)
            if after != before:
                changed = sorted(t for t in CONTRACT if after[t] != before[t])
                raise CheckFailed(f"topics changed across down/up with no new input: {changed}")
            again = {k: v for k, v in committed_offsets(self.bootstrap, GROUP).items()
                     if k.split(":")[0] in topics.INPUT_TOPICS}
            if again != committed:
                raise CheckFailed(f"committed offsets changed across down/up: {committed} -> {again}")
            kept = self.prometheus.scalar("sum(sentinel_messages_total)", at=t0)
            if total is None or kept != total:
                raise CheckFailed(f"Prometheus lost its data: sum(sentinel_messages_total) at the time "
                                  f"before `down` was {total}, now reads {kept}")
            # The symbols' windows come back from the changelog in the Kafka volume: with them,
            # every new tick gets a forecast at once; a lost state would need 60 ticks per symbol.
            ticks = 30
            env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
            run([python(), "-m", "sentinel", "produce", "prices", "--csv-dir", str(SAMPLE_PRICES),
                 "--limit", str(ticks), "--speed", "0", "--rate", "0", "--bootstrap", self.bootstrap],
                cwd=REPO, env=env, timeout=120)

            def forecasts() -> float:
                # The worker's own /metrics: Prometheus still holds the previous workers' series
                # (it was stopped with them, so it never marked them stale).
                metrics = self._worker_metrics(worker)
                done = metrics.get('sentinel_messages_total{outcome="ok",topic="prices.ticks"}', 0.0)
                made = metrics.get("sentinel_forecasts_total", 0.0)
                if done < ticks:
                    raise CheckFailed(f"{done:.0f} of {ticks} new ticks processed")
                if made != done:
                    raise CheckFailed(f"{done:.0f} new ticks processed but {made:.0f} forecasts (a lost "
                                      f"state needs 60 ticks per symbol before forecasting)")
                return made

            made = wait_for("forecasts for the new ticks", forecasts, 120, 3)
            details.append(f"topics, committed offsets and Prometheus data kept; {ticks} new ticks -> "
                           f"{made:.0f} forecasts (windows restored from the changelog)")

    def _worker_metrics(self, container: str) -> dict[str, float]:
        """The worker's /metrics read inside its container: ``name{labels}`` -> value."""
        from prometheus_client.parser import text_string_to_metric_families

        probe = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9108/metrics').read().decode())"
        text = run([self.compose.docker, "exec", container, "python", "-c", probe], timeout=30).stdout
        out = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}" if labels else sample.name] = float(sample.value)
        return out

    def _wait_healthy(self, service: str, count: int, timeout: float) -> list[str]:
        def probe() -> list[str]:
            ids = self.compose.containers(service)
            states = [self.compose.state(c) for c in ids]
            if len(ids) != count or any(health != "healthy" for _, health, _ in states):
                seen = [f"{status}/{health or '-'}" for status, health, _ in states]
                raise CheckFailed(f"{service}: {seen}, want {count} healthy")
            return ids

        return wait_for(f"{service} healthy", probe, timeout, 3)
