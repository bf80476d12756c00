# stream-sentinel: `make demo` and `make test` do all the set-up on a fresh machine.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAGE  := bash scripts/stage.sh
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help demo test test-fast compose-test lint install install-train system-deps broker-start broker-stop clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# Set-up stages print one line each with their time (scripts/stage.sh; output only on failure).
$(PY):
	@$(STAGE) venv sh -c 'python3 -m venv $(VENV) && $(PIP) install -q --upgrade pip && echo "created $(VENV)"'

# Serving + test tools (no TensorFlow): what the demo needs.
$(VENV)/.installed-dev: pyproject.toml | $(PY)
	@$(STAGE) "python packages" sh -c "$(PIP) install -q -e '.[dev]' && echo 'installed stream-sentinel[dev] into $(VENV)'"
	@touch $@

# Everything, including the [train] extra (TensorFlow, tf2onnx) for the training tests.
$(VENV)/.installed-all: pyproject.toml | $(PY)
	@$(STAGE) "python packages" sh -c "$(PIP) install -q -e '.[train,dev]' && echo 'installed stream-sentinel[train,dev] into $(VENV)'"
	@touch $@ $(VENV)/.installed-dev

install: $(VENV)/.installed-dev ## serving install + dev tools into .venv

install-train: $(VENV)/.installed-all ## add the [train] extra (TensorFlow, tf2onnx, pandas)

system-deps: ## Java 17 + Maven (dev Kafka broker), Chromium (report test), Prometheus/promtool (ops tests)
	@$(STAGE) "system packages" bash scripts/install_system_deps.sh

demo: system-deps install ## run the demo: broker, worker, producers, alerts, metrics (Ctrl-C stops)
	$(VENV)/bin/sentinel demo

test: system-deps install-train ## run the whole test suite (unit, integration on a real broker, e2e)
	$(PY) -m pytest

test-fast: install ## unit tests only, seconds
	$(PY) -m pytest -m "not integration and not train"

# Installs and starts Docker where missing (root), builds local stand-ins for the official base
# images from Debian's packages and runs docker-compose.yml for real (scripts/compose_test).
compose-test: install ## docker-compose.yml brought up and checked for real (~6 min, 10 on a fresh machine)
	COMPOSE_TEST_REQUIRED=1 $(PY) -m pytest tests/compose -m compose -s

lint: install ## ruff + mypy
	$(VENV)/bin/ruff check streaming training export tests scripts/compose_test
	$(VENV)/bin/mypy streaming export

broker-start: install ## start the dev Kafka broker on 127.0.0.1:9092
	$(VENV)/bin/sentinel broker start

broker-stop: ## stop the dev Kafka broker
	$(VENV)/bin/sentinel broker stop

clean: ## remove local state (.sentinel) and caches, keep the venv
	rm -rf .sentinel .pytest_cache .ruff_cache .mypy_cache
