"""Client configuration for confluent-kafka and for Faust (aiokafka) from one settings object."""

from __future__ import annotations

import ssl
from typing import Any

from streams.kafka.settings import KafkaSettings


def confluent_config(kafka: KafkaSettings, **extra: Any) -> dict[str, Any]:
    """librdkafka properties: bootstrap servers plus any SASL/TLS settings, then ``extra``."""
    config: dict[str, Any] = {"bootstrap.servers": kafka.bootstrap_servers, "security.protocol": kafka.security_protocol}
    if kafka.sasl_mechanism:
        config["sasl.mechanism"] = kafka.sasl_mechanism
    if kafka.sasl_username:
        config["sasl.username"] = kafka.sasl_username
    if kafka.sasl_password:
        config["sasl.password"] = kafka.sasl_password.get_secret_value()
    if kafka.ssl_cafile:
        config["ssl.ca.location"] = str(kafka.ssl_cafile)
    config.update(extra)
    return config


def faust_broker(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for ``faust.App``: broker URL(s) and credentials."""
    import faust

    urls = ";".join(f"kafka://{server.strip()}" for server in kafka.bootstrap_servers.split(","))
    out: dict[str, Any] = {"broker": urls, "broker_session_timeout": kafka.session_timeout_s}
    context = None
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
    if kafka.security_protocol.startswith("SASL"):
        out["broker_credentials"] = faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
            mechanism=kafka.sasl_mechanism or "PLAIN",
            ssl_context=context,
        )
    elif context is not None:
        out["broker_credentials"] = faust.SSLCredentials(context)
    return out


def serve_in_turn(records: dict) -> None:
    """Move the partition served first to the back of ``records`` (aiokafka's fetch buffer, partition ->
    records, in place): each poll then starts at the next partition, so every partition with records is
    served within as many polls as there are partitions."""
    if len(records) > 1:
        first = next(iter(records))
        records[first] = records.pop(first)


def tune_faust_consumer(kafka: KafkaSettings, prompt_delivery: bool = True) -> None:
    """Give Faust's consumers (this process only) ``kafka.fetch_max_wait_ms`` and polls of at most
    ``kafka.max_poll_records`` that take the partitions in turn.

    - faust-streaming 0.15.3 hard-codes ``fetch_max_wait_ms=1500`` for aiokafka. A broker answers a fetch
      as soon as data arrives, in principle; tansu often holds it for the whole wait, which measured up to
      0.45 s per hop (about 20 ms with 100 ms).
    - One consumer and one drainer feed every agent of a Faust worker, and aiokafka's poll hands out its
      buffered records partition by partition in the order they were fetched. A backlog of raw items,
      fetched first, was moved into ingest's buffer before the first documents reached scoring (0.4-0.6 s
      per 6,000 items, traced). With polls bounded and each starting at the next partition
      (:func:`serve_in_turn`), the documents are served within a poll per partition.

    - Faust's own consumer hands each message to its streams promptly (:mod:`streams.kafka.delivery`;
      ``prompt_delivery=False``, for the benchmark that measures Faust's own way, installs nothing and
      leaves an earlier installation in this process as it is).

    Faust offers no setting for any of them, so its driver gets consumer classes with them; everything
    else of aiokafka and Faust is untouched.
    """
    import types

    from streams.kafka import delivery

    if prompt_delivery:
        delivery.install()

    import aiokafka
    from faust.transport.drivers import aiokafka as driver

    class Consumer(aiokafka.AIOKafkaConsumer):
        def __init__(self, *args, **kwargs):
            kwargs["fetch_max_wait_ms"] = kafka.fetch_max_wait_ms
            kwargs["max_poll_records"] = kafka.max_poll_records  # what Faust's polls ask for
            super().__init__(*args, **kwargs)

        async def start(self):
            await super().start()
            fetcher = self._fetcher  # aiokafka 0.14's fetch buffer (``_records``), read by every poll
            poll = fetcher.fetched_records

            async def in_turn(partitions, timeout=0, max_records=None):
                serve_in_turn(fetcher._records)
                return await poll(partitions, timeout=timeout, max_records=max_records)

            fetcher.fetched_records = in_turn

    class Module(types.ModuleType):
        def __getattr__(self, name):
            return getattr(aiokafka, name)

    patched = Module("aiokafka")
    patched.AIOKafkaConsumer = Consumer  # type: ignore[attr-defined]
    driver.aiokafka = patched  # type: ignore[attr-defined]
