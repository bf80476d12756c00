"""Topic creation and client settings shared by the worker, producers and consumers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
    if settings.ssl_cafile:
        from aiokafka.helpers import create_ssl_context

        kwargs["ssl_context"] = create_ssl_context(cafile=settings.ssl_cafile)
    return kwargs


def changelog_topic(settings: Settings, table: str) -> str:
    """Faust's name for a table's changelog topic."""
    return f"{settings.app_id}-{table}-changelog"


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
        new = [NewTopic(t, settings.partitions, 1) for t in wanted if t not in existing]
        new += [NewTopic(t, settings.partitions, 1, topic_configs={"cleanup.policy": "compact"})
                for t in compacted if t not in existing]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
            logger.info("created topics %s", ", ".join(t.name for t in new))
    finally:
        await admin.close()
