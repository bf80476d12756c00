"""The shared /metrics reader, on a real registry's exposition text."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from streaming.tools.scrape import by_label, parse, value


def test_values_by_name_and_labels() -> None:
    registry = CollectorRegistry()
    c = Counter("demo_messages", "doc", ["topic", "outcome"], registry=registry)
    c.labels("t", "ok").inc(3)
    c.labels("t", "invalid").inc(2)
    c.labels("u", "ok").inc(5)
    h = Histogram("demo_seconds", "doc", ["agent"], registry=registry)
    h.labels("prices").observe(0.5)
    samples = parse(generate_latest(registry).decode())
    assert value(samples, "demo_messages_total") == 10
    assert value(samples, "demo_messages_total", outcome="ok") == 8
    assert value(samples, "demo_messages_total", topic="t", outcome="invalid") == 2
    assert value(samples, "demo_seconds_count", agent="prices") == 1
    assert value(samples, "no_such_metric") == 0
    assert by_label(samples, "demo_seconds_sum", "agent") == {"prices": 0.5}
