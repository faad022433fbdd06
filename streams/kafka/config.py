"""Client configuration for confluent-kafka and for Faust (aiokafka) from one settings object."""

from __future__ import annotations

import ssl
from typing import Any

from sentimon.settings import KafkaSettings


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


def limit_fetch_wait(max_wait_ms: int) -> None:
    """Make Faust's consumers wait at most ``max_wait_ms`` for a fetch (this process only).

    faust-streaming 0.15.3 hard-codes ``fetch_max_wait_ms=1500`` for aiokafka. A broker answers a fetch
    as soon as data arrives, in principle; tansu often holds it for the whole wait, which measured up
    to 0.45 s per hop (about 20 ms with 100 ms). Faust offers no setting, so its driver gets a consumer
    class with our value; everything else of aiokafka is untouched.
    """
    import types

    import aiokafka
    from faust.transport.drivers import aiokafka as driver

    class Consumer(aiokafka.AIOKafkaConsumer):
        def __init__(self, *args, **kwargs):
            kwargs["fetch_max_wait_ms"] = max_wait_ms
            super().__init__(*args, **kwargs)

    class Module(types.ModuleType):
        def __getattr__(self, name):
            return getattr(aiokafka, name)

    patched = Module("aiokafka")
    patched.AIOKafkaConsumer = Consumer  # type: ignore[attr-defined]
    driver.aiokafka = patched  # type: ignore[attr-defined]
