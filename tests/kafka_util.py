"""Helpers for the tests that use a real broker."""

import json
import uuid

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic


def unique(name):
    return f"{name}-{uuid.uuid4().hex[:8]}"


def create_topic(bootstrap, name, partitions=1):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()
    return name


def produce(bootstrap, topic, values, keys=None, partition=None):
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    for i, v in enumerate(values):
        producer.send(topic, value=v, key=None if keys is None else keys[i], partition=partition)
    producer.flush()
    producer.close()


def consume_all(bootstrap, topic, idle_ms=3000):
    """Every message of ``topic``, read from the beginning of every partition (no consumer
    group: a kafka-python group member can be left with no partition, see connectors.kafka)."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=idle_ms)
    out = list(consumer)
    consumer.close()
    return out


def records(messages):
    return [json.loads(m.value) for m in messages]
