"""Topic administration: create Sentimon's topics if missing (idempotent)."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from streams.kafka.settings import KafkaConfig
from streams.kafka.config import confluent_config

PIPELINE_TOPICS = ("raw_news", "raw_social", "documents", "scores", "dead_letters", "alerts")


def ensure_topics(settings: KafkaConfig, timeout_s: float = 20.0) -> list[str]:
    """Create the pipeline's topics (prefix included) that do not exist; returns the names created."""
    admin = AdminClient(confluent_config(settings.kafka))
    names = [settings.topics.name(t) for t in PIPELINE_TOPICS]
    try:
        existing = set(admin.list_topics(timeout=timeout_s).topics)
    except KafkaException as exc:
        raise ConnectionError(
            f"cannot reach Kafka at {settings.kafka.bootstrap_servers}: {exc}. "
            "Start the local broker with `sentimon broker` or set SENTIMON_KAFKA__BOOTSTRAP_SERVERS."
        ) from None
    missing = [n for n in names if n not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(n, settings.kafka.partitions, settings.kafka.replication_factor) for n in missing],
        operation_timeout=timeout_s,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return created
