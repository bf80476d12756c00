# stream-sentinel worker and tools (`sentinel worker`, `sentinel produce ...`, `sentinel alerts tail`).
# The serving install only: no TensorFlow, no [train] or [dev] extras. Built and run by
# docker-compose.yml; see docs/operations.md.
# PYTHON_IMAGE: the base image; the official one unless a build swaps it (the compose test
# builds on a local stand-in, scripts/compose_test).
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Build from a scratch copy that is deleted afterwards, so the installed package is the only
# copy of the code in the image (.dockerignore keeps tests, runs and reports out of the context).
WORKDIR /tmp/src
COPY pyproject.toml README.md ./
COPY streaming/ streaming/
COPY export/ export/
COPY training/ training/
COPY sentinel/ sentinel/
RUN pip install . \
    && rm -rf /tmp/src

# Released models (models/<name>/<version>/{model.onnx, manifest.json, ...}), read-only for the
# worker, which verifies each manifest and sha256 before serving it.
COPY models/ /opt/stream-sentinel/models/

RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/sentinel sentinel \
    && mkdir -p /var/lib/sentinel \
    && chown sentinel:sentinel /var/lib/sentinel

ENV SENTINEL_MODELS_DIR=/opt/stream-sentinel/models \
    SENTINEL_DATA_DIR=/var/lib/sentinel \
    SENTINEL_METRICS_HOST=0.0.0.0 \
    SENTINEL_METRICS_PORT=9108

USER sentinel
WORKDIR /var/lib/sentinel
EXPOSE 9108

# The slim image has no curl: probe /metrics with the Python that is already there.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/metrics' % os.environ.get('SENTINEL_METRICS_PORT', '9108'), timeout=4)"]

ENTRYPOINT ["sentinel"]
CMD ["worker"]
