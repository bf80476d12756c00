"""Topic creation and client settings shared by the worker, producers and consumers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from streaming import topics
from streaming.errors import ConfigError
from streaming.settings import Settings

logger = logging.getLogger(__name__)


def client_kwargs(settings: Settings) -> dict[str, Any]:
    """aiokafka connection arguments, including security when configured."""
    kwargs: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap}
    if settings.security_protocol != "PLAINTEXT":
        kwargs["security_protocol"] = settings.security_protocol
    if settings.sasl_mechanism:
        kwargs.update(sasl_mechanism=settings.sasl_mechanism,
                      sasl_plain_username=settings.sasl_username,
                      sasl_plain_password=settings.sasl_password.value)
    context = ssl_context(settings)
    if context is not None:
        kwargs["ssl_context"] = context
    return kwargs


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """TLS for SSL/SASL_SSL (or whenever a CA file is given).

    Without a CA file the system trust store is used, which is what managed Kafka with
    public CAs needs; a client certificate and key add mTLS.
    """
    if not (settings.ssl_cafile or settings.security_protocol.endswith("SSL")):
        return None
    try:
        context = ssl.create_default_context(cafile=settings.ssl_cafile or None)
        if settings.ssl_certfile:
            context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"TLS settings cannot be used: {exc}") from None
    context.check_hostname = settings.ssl_check_hostname
    return context


def changelog_topic(settings: Settings, table: str) -> str:
    """Faust's name for a table's changelog topic."""
    return f"{settings.app_id}-{table}-changelog"


# Checkpoints rewrite every active symbol's state (up to ~18 KB) every 2 s, and a restarted
# worker reads the changelog back before it processes anything, at ~2,500-3,000 records/s
# (scripts/recovery_check.py, docs/results/recovery.json). The log cleaner never touches the
# active segment, so a restart reads one record per symbol plus the uncleaned tail: segments
# that roll every 64 MB or 10 s and a low dirty ratio keep that tail to seconds of checkpoints
# (the soak measured minutes of recovery with Kafka's 1 GB / 7 day segments, 10-16 s with 60 s).
CHANGELOG_CONFIG = {"cleanup.policy": "compact", "segment.bytes": str(64 * 2**20), "segment.ms": "10000",
                    "min.cleanable.dirty.ratio": "0.1", "delete.retention.ms": "60000"}


async def ensure_topics(settings: Settings, timeout: float = 30.0,
                        compacted: tuple[str, ...] = ()) -> None:
    """Create every contract topic with the configured partition count (idempotent).

    ``compacted`` names extra topics (table changelogs) created before Faust starts:
    on a fresh broker Faust's own creation races its consumer's metadata and the
    table agent crashes with PartitionsMismatch.
    """
    admin = AIOKafkaAdminClient(**client_kwargs(settings), request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
    except (KafkaConnectionError, KafkaError, TimeoutError, OSError) as exc:
        await admin.close()
        raise ConfigError(f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc or type(exc).__name__}"
                          " (start one with `sentinel broker start`)") from None
    try:
        existing = set(await admin.list_topics())
        wanted = [settings.topic(t) for t in (*topics.INPUT_TOPICS, *topics.OUTPUT_TOPICS)]
        rf, isr = settings.replication_factor, {"min.insync.replicas": str(settings.min_insync_replicas)}
        new = [NewTopic(t, settings.partitions, rf, topic_configs=dict(isr))
               for t in wanted if t not in existing]
        new += [NewTopic(t, settings.partitions, rf, topic_configs={**CHANGELOG_CONFIG, **isr})
                for t in compacted if t not in existing]
        await _report_partition_mismatch(admin, settings, [t for t in (*wanted, *compacted) if t in existing])
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
            logger.info("created topics %s", ", ".join(t.name for t in new))
    finally:
        await admin.close()


async def _report_partition_mismatch(admin: AIOKafkaAdminClient, settings: Settings,
                                     names: list[str]) -> None:
    """One line per existing topic whose partition count differs from the setting (never fatal)."""
    if not names:
        return
    try:
        described = await admin.describe_topics(names)
    except (KafkaError, OSError) as exc:
        logger.warning("could not describe topics to check partition counts: %s", exc)
        return
    for topic in described:
        count = len(topic.get("partitions") or [])
        if count and count != settings.partitions:
            logger.warning("topic %s has %d partitions, SENTINEL_PARTITIONS is %d: the existing "
                           "count is used", topic.get("topic"), count, settings.partitions)
