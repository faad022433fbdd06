"""The thin Kafka layer: client configuration, topic administration and a batching producer.

Everything here speaks the plain Kafka protocol, so the local tansu broker and a production Apache
Kafka cluster differ only in :class:`sentimon.settings.KafkaSettings`.
"""
