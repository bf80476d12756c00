"""Every Prometheus metric of the worker, declared once with help text and buckets.

A ``Metrics`` object is built on an injected registry so each test gets a fresh
``CollectorRegistry`` and the worker exposes exactly these families.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

# The *_created series double every family for no dashboard use.
disable_created_metrics()

# Inference runs ~0.1 ms per window batched and a few ms for a large sentiment batch;
# buckets span 50 µs .. 2.5 s so both ends stay resolvable.
INFERENCE_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                     0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Tick-to-publish latency: the target is tens of ms; seconds show a lagging consumer.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


class Metrics:
    """The worker's metric families (names follow Prometheus conventions)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.messages = Counter(
            "sentinel_messages_total", "Input messages (ticks count one each) by topic and outcome "
            "(ok, late, invalid).", ["topic", "outcome"], registry=registry)
        self.batch_seconds = Histogram(
            "sentinel_batch_processing_seconds", "Wall time to process one batch of input events.",
            ["agent"], buckets=INFERENCE_BUCKETS, registry=registry)
        self.batch_size = Histogram(
            "sentinel_batch_size", "Input events per processed batch.", ["agent"],
            buckets=BATCH_BUCKETS, registry=registry)
        self.inference_seconds = Histogram(
            "sentinel_inference_seconds", "onnxruntime time per inference call.", ["model"],
            buckets=INFERENCE_BUCKETS, registry=registry)
        self.inference_batch = Histogram(
            "sentinel_inference_batch_size", "Rows per inference call.", ["model"],
            buckets=BATCH_BUCKETS, registry=registry)
        self.forecasts = Counter(
            "sentinel_forecasts_total", "Forecasts published.", registry=registry)
        # Symbol cardinality is bounded by the tracked universe (hundreds), acceptable here.
        self.anomalies = Counter(
            "sentinel_anomalies_total", "Anomalies published, by kind (price or volume).",
            ["symbol", "severity", "kind"],
            registry=registry)
        self.last_anomaly_score = Gauge(
            "sentinel_last_anomaly_score", "Score of the latest anomaly per symbol.", ["symbol"],
            registry=registry)
        self.last_anomaly_time = Gauge(
            "sentinel_last_anomaly_timestamp_seconds", "Tick time of the latest anomaly per symbol.",
            ["symbol"], registry=registry)
        self.sentiment = Counter(
            "sentinel_sentiment_total", "Feedback messages classified, by label.", ["label"],
            registry=registry)
        self.escalations = Counter(
            "sentinel_escalations_total", "Feedback escalations published.", ["priority"],
            registry=registry)
        self.dead_letters = Counter(
            "sentinel_dead_letters_total", "Messages sent to the dead-letter topic.",
            ["topic", "reason"], registry=registry)
        self.symbols_tracked = Gauge(
            "sentinel_symbols_tracked", "Symbols with state on this worker.", registry=registry)
        self.state_bytes = Gauge(
            "sentinel_state_bytes", "Bytes of symbol state this worker last checkpointed (its live "
            "copy takes about as much again): what grows with symbols and their histories.",
            registry=registry)
        self.end_to_end = Histogram(
            "sentinel_end_to_end_latency_seconds", "From the input message ts to publishing its result.",
            ["topic"], buckets=LATENCY_BUCKETS, registry=registry)
        self.model_info = Gauge(
            "sentinel_model_info", "Loaded models (value 1) with their version.",
            ["name", "version", "kind"], registry=registry)
        self.model_load_failures = Counter(
            "sentinel_model_load_failures_total", "Models refused at load or reload.", ["name"],
            registry=registry)
        self.model_reloads = Counter(
            "sentinel_model_reloads_total", "Hot reload outcomes (swapped, refused).", ["name", "result"],
            registry=registry)
        self.consumer_lag = Gauge(
            "sentinel_consumer_lag", "Messages behind the partition end, per input partition.",
            ["topic", "partition"], registry=registry)
        self.offset_rewinds = Counter(
            "sentinel_offset_rewinds_total", "Input offsets Faust skipped, caught and re-read "
            "(streaming/worker/offset_guard.py).", ["topic"], registry=registry)
        self.checkpoints = Counter(
            "sentinel_checkpoints_total", "Symbol-state checkpoints written to the changelog and "
            "acknowledged (streaming/worker/checkpoint.py).", registry=registry)
        self.checkpoint_seconds = Histogram(
            "sentinel_checkpoint_seconds", "From a checkpoint's first changelog record sent to all of "
            "them acknowledged.", buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=registry)
        self.checkpoint_symbols = Histogram(
            "sentinel_checkpoint_symbols", "Symbol states (changelog records) per checkpoint.",
            buckets=(10, 100, 1000, 10_000, 100_000), registry=registry)
        self.gc_pause_seconds = Histogram(
            "sentinel_gc_pause_seconds", "Cyclic garbage-collector pauses, per generation (2 = full; "
            "streaming/worker/gc_pauses.py).", ["generation"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5), registry=registry)
        self.errors = Counter(
            "sentinel_processing_errors_total", "Records whose processing raised (dead-lettered as "
            "processing_error) and agents that stopped.", ["agent"],
            registry=registry)

    def prime(self, input_topics: tuple[str, ...], reasons: tuple[str, ...], models: tuple[str, ...]) -> None:
        """Create the known label sets at zero so ``rate``/``increase`` see their first event.

        Prometheus cannot count the first increment of a series it never saw at 0.
        """
        for topic in input_topics:
            for outcome in ("ok", "late", "invalid"):
                self.messages.labels(topic, outcome)
            for reason in reasons:
                self.dead_letters.labels(topic, reason)
            self.offset_rewinds.labels(topic)
        for priority in ("P1", "P2", "P3"):
            self.escalations.labels(priority)
        for label in ("negative", "positive"):
            self.sentiment.labels(label)
        for agent in ("prices", "feedback"):
            self.errors.labels(agent)
        for name in models:
            self.model_load_failures.labels(name)
            for result in ("swapped", "refused"):
                self.model_reloads.labels(name, result)

    def prime_symbol(self, symbol: str) -> None:
        for severity in ("low", "medium", "high", "critical"):
            self.anomalies.labels(symbol, severity, "price")  # volume series appear when one fires
