"""docker-compose.yml, Dockerfile and .dockerignore, checked without a Docker engine.

The compose file is parsed with PyYAML and validated against the Compose Specification JSON
schema (vendored beside this file as compose-spec.json; upstream
https://github.com/compose-spec/compose-spec/blob/main/schema/compose-spec.json, Apache-2.0,
taken from the npm package dclint 3.1.0). Then it is cross-checked with the code it runs: the
worker's settings object, the CLI parser, the topic names, the Prometheus scrape config and the
Grafana datasource.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from dataclasses import fields
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from sentinel.cli import build_parser
from streaming import topics
from streaming.settings import PREFIX, Settings, load_settings

REPO = Path(__file__).resolve().parents[3]
COMPOSE = REPO / "docker-compose.yml"
SCHEMA = Path(__file__).with_name("compose-spec.json")
PROMETHEUS = REPO / "deploy" / "prometheus" / "prometheus.yml"
DATASOURCES = REPO / "deploy" / "grafana" / "provisioning" / "datasources"

CORE = {"kafka", "topic-init", "worker", "prometheus", "grafana"}
REPLAY = {"producer-prices", "producer-feedback", "alerts"}
SENTINEL_SERVICES = {"worker"} | REPLAY
LONG_RUNNING = {"kafka", "worker", "prometheus", "grafana"}
# The worker settings the brief fixes for containers (all must be set on the worker).
WORKER_ENV = {"SENTINEL_KAFKA_BOOTSTRAP", "SENTINEL_TOPIC_PREFIX", "SENTINEL_MODELS_DIR",
              "SENTINEL_METRICS_HOST", "SENTINEL_METRICS_PORT", "SENTINEL_DATA_DIR",
              "SENTINEL_PARTITIONS"}
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def interpolate(value: Any) -> Any:
    """Compose interpolation with no variables set: ``${X:-default}`` -> default, ``$$`` -> ``$``."""
    if isinstance(value, str):
        return _VAR.sub(lambda m: "$" if m.group(0) == "$$" else (m.group(2) or ""), value)
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    return interpolate(raw)


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def schema_errors(validator: jsonschema.Draft7Validator, doc: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator.iter_errors(doc)]


# ------------------------------------------------------------------ the specification schema


def test_compose_file_is_valid_against_the_compose_specification(
        raw: dict[str, Any], compose: dict[str, Any], validator: jsonschema.Draft7Validator) -> None:
    assert schema_errors(validator, raw) == []
    assert schema_errors(validator, compose) == []


@pytest.mark.parametrize("mutate", [
    lambda d: d["services"]["worker"]["depends_on"]["kafka"].update(condition="service_ready"),
    lambda d: d["services"]["worker"].update(helthcheck={"test": ["CMD", "true"]}),
    lambda d: d["services"]["kafka"].update(ports="9094:9094"),
    lambda d: d.update(volume={}),
], ids=["bad-condition", "misspelt-key", "ports-not-a-list", "unknown-top-level"])
def test_the_schema_rejects_broken_compose_files(
        raw: dict[str, Any], validator: jsonschema.Draft7Validator, mutate: Any) -> None:
    broken = copy.deepcopy(raw)
    mutate(broken)
    assert schema_errors(validator, broken), "the vendored schema accepted a broken file"


# ------------------------------------------------------------------------------ services


def test_services_and_profiles(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == CORE | REPLAY
    for name in CORE:
        assert "profiles" not in services[name], f"{name} must start with a plain `up`"
    for name in ("producer-prices", "producer-feedback"):
        assert services[name]["profiles"] == ["replay"]
    assert "replay" in services["alerts"]["profiles"]


def test_official_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["topic-init"]["image"] == services["kafka"]["image"]
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    images = {services[s]["image"] for s in SENTINEL_SERVICES}
    assert len(images) == 1, "worker and tools share one image"
    for name in SENTINEL_SERVICES:
        assert services[name]["build"] == {"context": ".", "dockerfile": "Dockerfile"}


def test_kafka_runs_in_kraft_mode(compose: dict[str, Any]) -> None:
    env = env_of(compose["services"]["kafka"])
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "CONTROLLER://:9093" in env["KAFKA_LISTENERS"]
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["CLUSTER_ID"]
    assert "zookeeper" not in json.dumps(compose).lower()


def test_worker_is_scalable(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert "container_name" not in worker, "container_name prevents --scale worker=N"
    assert "ports" not in worker, "a fixed host port prevents --scale worker=N"
    assert "hostname" not in worker


# ------------------------------------------------------------- settings and the worker CLI


def test_sentinel_env_vars_are_real_settings(compose: dict[str, Any]) -> None:
    known = {PREFIX + f.name.upper() for f in fields(Settings)}
    for name in SENTINEL_SERVICES:
        env = env_of(compose["services"][name])
        sentinel = {k for k in env if k.startswith(PREFIX)}
        assert sentinel <= known, f"{name} sets unknown settings {sentinel - known}"
        load_settings(environ=env)  # every value parses


def test_worker_settings(compose: dict[str, Any]) -> None:
    env = env_of(compose["services"]["worker"])
    assert set(env) >= WORKER_ENV
    settings = load_settings(environ=env)
    assert settings.metrics_host == "0.0.0.0", "the metrics port must be reachable from Prometheus"
    host, port = settings.kafka_bootstrap.split(":")
    assert host == "kafka" and f"PLAINTEXT://kafka:{port}" in env_of(
        compose["services"]["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    assert str(settings.metrics_port) in compose["services"]["worker"]["expose"]
    assert settings.partitions == int(env_of(compose["services"]["topic-init"])["SENTINEL_PARTITIONS"])
    assert settings.topic_prefix == env_of(compose["services"]["topic-init"])["SENTINEL_TOPIC_PREFIX"]
    assert str(settings.models_dir) == dockerfile_env()["SENTINEL_MODELS_DIR"]
    assert str(settings.data_dir) == dockerfile_env()["SENTINEL_DATA_DIR"]


def test_clients_share_the_worker_settings(compose: dict[str, Any]) -> None:
    worker = load_settings(environ=env_of(compose["services"]["worker"]))
    for name in REPLAY:
        client = load_settings(environ=env_of(compose["services"][name]))
        assert (client.kafka_bootstrap, client.topic_prefix) == (worker.kafka_bootstrap, worker.topic_prefix)


def test_commands_parse_with_the_real_cli(compose: dict[str, Any]) -> None:
    parser = build_parser()
    parsed = {name: parser.parse_args(compose["services"][name]["command"]) for name in SENTINEL_SERVICES}
    assert parsed["worker"].command == "worker"
    prices, feedback = parsed["producer-prices"], parsed["producer-feedback"]
    assert (prices.command, prices.source) == ("produce", "prices")
    assert prices.csv_dir.startswith("/data/") and prices.speed > 0
    assert (feedback.command, feedback.source) == ("produce", "feedback")
    assert feedback.csv.startswith("/data/") and feedback.rate > 0
    assert (parsed["alerts"].command, parsed["alerts"].action) == ("alerts", "tail")


def test_topic_init_creates_every_contract_topic(compose: dict[str, Any]) -> None:
    init = compose["services"]["topic-init"]
    script = init["command"][0]
    assert init["entrypoint"][-1] == "-c" and "kafka-topics.sh" in script and "--if-not-exists" in script
    loop = re.search(r"for topic in ([^;]+);", script)
    assert loop is not None
    assert set(loop.group(1).split()) == set(topics.INPUT_TOPICS + topics.OUTPUT_TOPICS)
    assert '--partitions "${SENTINEL_PARTITIONS}"' in script
    assert '"${SENTINEL_TOPIC_PREFIX}${topic}"' in script, "topic names must take the prefix"


# --------------------------------------------------------------- healthchecks and ordering


def test_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in LONG_RUNNING:
        check = services[name]["healthcheck"]
        assert not check.get("disable") and check["test"][0] in ("CMD", "CMD-SHELL"), name
    worker_check = " ".join(services["worker"]["healthcheck"]["test"])
    port = load_settings(environ=env_of(services["worker"])).metrics_port
    assert "python" in worker_check and f"127.0.0.1:{port}/metrics" in worker_check
    for name in REPLAY:  # the image's HEALTHCHECK probes /metrics, which tools do not serve
        assert services[name]["healthcheck"] == {"disable": True}


def test_depends_on_conditions(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dep, spec in service.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            assert spec["condition"] in ("service_started", "service_healthy",
                                         "service_completed_successfully"), f"{name} -> {dep}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dep] and not services[dep]["healthcheck"].get("disable")
    assert services["topic-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["worker"]["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "topic-init": {"condition": "service_completed_successfully"}}
    for name in ("producer-prices", "producer-feedback"):
        assert services[name]["depends_on"]["worker"]["condition"] == "service_healthy"
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


# ------------------------------------------------------------------- volumes and mounts


def _mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for v in service.get("volumes", []):
        if isinstance(v, dict):
            out.append((v["source"], v["target"]))
        else:
            source, target = v.split(":")[:2]
            out.append((source, target))
    return out


def test_named_volumes_are_declared_and_used(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    used = {src for s in compose["services"].values() for src, _ in _mounts(s)
            if not src.startswith((".", "/"))}
    assert used == declared == {"kafka-data", "prometheus-data", "grafana-data"}
    assert ("kafka-data", env_of(compose["services"]["kafka"])["KAFKA_LOG_DIRS"]) in _mounts(
        compose["services"]["kafka"])


def test_bind_mounts_point_at_shipped_files(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for source, _ in _mounts(service):
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
    prom = dict((t, s) for s, t in _mounts(compose["services"]["prometheus"]))
    assert prom["/etc/prometheus/prometheus.yml"] == "./deploy/prometheus/prometheus.yml"
    assert prom["/etc/prometheus/rules"] == "./deploy/prometheus/rules"
    assert "--config.file=/etc/prometheus/prometheus.yml" in compose["services"]["prometheus"]["command"]
    graf = dict((t, s) for s, t in _mounts(compose["services"]["grafana"]))
    provider = yaml.safe_load((REPO / graf["/etc/grafana/provisioning/dashboards"] /
                               "stream-sentinel.yml").read_text(encoding="utf-8"))
    dash_dir = provider["providers"][0]["options"]["path"]
    assert graf[dash_dir] == "./deploy/grafana/dashboards"
    home = env_of(compose["services"]["grafana"])["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (REPO / graf[dash_dir] / Path(home).relative_to(dash_dir)).is_file()


def test_replay_data_is_mounted_read_only(compose: dict[str, Any]) -> None:
    for name in ("producer-prices", "producer-feedback"):
        (volume,) = compose["services"][name]["volumes"]
        assert volume["target"] == "/data" and volume["read_only"] is True


# --------------------------------------------------------- Prometheus and Grafana wiring


def test_prometheus_scrapes_every_worker_replica(compose: dict[str, Any]) -> None:
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "sentinel-worker"]
    (sd,) = job["dns_sd_configs"]
    port = load_settings(environ=env_of(compose["services"]["worker"])).metrics_port
    assert sd["names"] == ["worker"] and sd["type"] == "A" and sd["port"] == port
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert config["rule_files"] == ["rules/*.yml"], "relative to the mounted config file"
    assert list((PROMETHEUS.parent / "rules").glob("*.yml"))


def test_grafana_datasource_points_at_the_prometheus_service(compose: dict[str, Any]) -> None:
    (path,) = DATASOURCES.glob("*.yml")
    (ds,) = yaml.safe_load(path.read_text(encoding="utf-8"))["datasources"]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    published = compose["services"]["prometheus"]["ports"][0]
    assert published.endswith(":9090")
    dashboard = json.loads((REPO / "deploy/grafana/dashboards/stream-sentinel.json").read_text())
    uids = {p["datasource"]["uid"] for p in dashboard["panels"] if "datasource" in p}
    assert uids == {ds["uid"]}


# ------------------------------------------------------------------ Dockerfile, .dockerignore


def dockerfile_lines() -> list[str]:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in dockerfile_lines():
        if line.startswith("ENV "):
            env.update(tok.split("=", 1) for tok in shlex.split(line[4:]))
    return env


def test_dockerfile_is_slim_non_root_and_serving_only() -> None:
    lines = dockerfile_lines()
    # The base is a build argument (the compose test swaps in a local stand-in) whose default
    # is the official slim image.
    assert lines[:2] == ["ARG PYTHON_IMAGE=python:3.11-slim", "FROM ${PYTHON_IMAGE}"]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    installs = [line for line in lines if "pip install" in line]
    assert len(installs) == 1 and re.search(r"pip install \.(\s|$)", installs[0]), installs
    assert "[" not in installs[0], "the serving install has no extras"
    assert any(line.startswith("COPY models/") for line in lines)
    (check,) = [line for line in lines if line.startswith("HEALTHCHECK")]
    assert "python" in check and "/metrics" in check and "curl" not in check
    env = dockerfile_env()
    assert env["SENTINEL_METRICS_HOST"] == "0.0.0.0"
    models_target = next(line.split()[-1] for line in lines if line.startswith("COPY models/"))
    assert env["SENTINEL_MODELS_DIR"].rstrip("/") == models_target.rstrip("/")


def test_dockerignore_keeps_the_build_inputs() -> None:
    rules = [r.strip() for r in (REPO / ".dockerignore").read_text().splitlines()
             if r.strip() and not r.startswith("#")]
    assert rules[0] == "*", "exclude everything, then allow the inputs back in"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    copied: set[str] = set()
    for line in dockerfile_lines():
        if line.startswith("COPY "):
            sources = [p for p in line.split()[1:] if not p.startswith("--")][:-1]
            copied |= {p.rstrip("/") for p in sources}
    assert {"pyproject.toml", "README.md", "streaming", "export", "training", "models"} <= allowed
    assert copied <= allowed
