"""Reading a ``/metrics`` page with prometheus_client's own parser (demo, bench, tests)."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterable

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


def parse(text: str) -> list[Sample]:
    """Every sample of an exposition text (``name`` is the sample's, e.g. ``x_total``, ``x_bucket``)."""
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def scrape(url: str, timeout: float = 5.0) -> list[Sample]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return parse(resp.read().decode())


def value(samples: Iterable[Sample], name: str, /, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels`` (0.0 if none)."""
    return sum(s.value for s in samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def by_label(samples: Iterable[Sample], name: str, label: str) -> dict[str, float]:
    """``{label value: sample value}`` for the samples called ``name``."""
    return {s.labels.get(label, ""): s.value for s in samples if s.name == name}
