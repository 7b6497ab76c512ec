"""Compacted Kafka topics as state stores, Kafka Streams style (kafka-python and librdkafka).

A store is a transport for changelog records: ``records(topic, partition)`` reads changelog
partition ``partition`` from its beginning to its end, ``write(topic, partition, records)`` appends
``(key, value)`` records to it. What the records mean (models and markers, and checking them) is
the business of :mod:`streamrnn.state`; the stores neither parse nor trust them. The topic is
created on first use, compacted, with as many partitions as the input topic.

With a ``transaction`` (exactly-once, :mod:`connectors.transaction`) records are written in the
worker's transaction, beside its predictions and offsets. Reading is always ``read_committed``:
records of an aborted transaction (a worker killed before its commit) are never restored.
"""

from __future__ import annotations

MAX_RECORD_BYTES = 16 * 1024 * 1024


class _Changelog:
    def __init__(self, bootstrap_servers, topic, client_options=None, transaction=None):
        self.bootstrap = bootstrap_servers
        self.topic = topic
        self.options = dict(client_options or {})
        self.transaction = transaction
        self._partitions_known = False

    def ensure_topic(self, partitions: int):
        if not self._partitions_known:
            self._create(partitions)
            self._partitions_known = True

    def records(self, topic, partition):
        """``(key, value)`` of changelog partition ``partition``, oldest first (``topic``, the input
        topic, is for the reader: records of every input topic share the changelog)."""
        return list(self._read(partition))

    def write(self, topic, partition, records):
        if self.transaction is not None:
            for key, value in records:
                self.transaction.send(self.topic, value, key, partition=partition, max_bytes=MAX_RECORD_BYTES)
        else:
            self._write(partition, records)

    def flush(self):
        if self.transaction is None:  # in a transaction, its commit delivers
            self._producer_flush()

    def close(self):
        self.flush()


class ChangelogStore(_Changelog):
    """A changelog topic through kafka-python."""

    def __init__(self, bootstrap_servers, topic, client_options=None, transaction=None):
        from kafka import KafkaProducer

        from .kafka_settings import options_for

        super().__init__(bootstrap_servers, topic, client_options, transaction)
        self.producer = None if transaction is not None else KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=5,
                                      enable_idempotence=True, max_request_size=MAX_RECORD_BYTES,
                                      **options_for(KafkaProducer, self.options))

    def _create(self, partitions):
        from kafka import KafkaAdminClient
        from kafka.admin import NewTopic
        from kafka.errors import TopicAlreadyExistsError

        from .kafka_settings import options_for

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, **options_for(KafkaAdminClient, self.options))
        try:
            admin.create_topics([NewTopic(self.topic, partitions, 1, topic_configs={
                "cleanup.policy": "compact", "max.message.bytes": str(MAX_RECORD_BYTES)})])
        except TopicAlreadyExistsError:
            pass
        finally:
            admin.close()

    def _read(self, partition):
        from kafka import KafkaConsumer, TopicPartition

        from .kafka_settings import options_for

        options = options_for(KafkaConsumer, self.options)
        for k in ("group_id", "session_timeout_ms", "heartbeat_interval_ms", "max_poll_records"):
            options.pop(k, None)
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                 isolation_level="read_committed", max_partition_fetch_bytes=2 * MAX_RECORD_BYTES, fetch_max_bytes=4 * MAX_RECORD_BYTES,
                                 **options)
        tp = TopicPartition(self.topic, partition)
        try:
            if partition not in (consumer.partitions_for_topic(self.topic) or set()):
                return
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            end = consumer.end_offsets([tp])[tp]
            while consumer.position(tp) < end:
                for records in consumer.poll(timeout_ms=1000).values():
                    for r in records:
                        yield r.key, r.value
        finally:
            consumer.close()

    def _write(self, partition, records):
        for key, value in records:
            self.producer.send(self.topic, key=key, value=value, partition=partition)

    def _producer_flush(self):
        self.producer.flush()

    def close(self):
        if self.producer is not None:
            self.producer.flush()
            self.producer.close()


class ConfluentChangelogStore(_Changelog):
    """A changelog topic through librdkafka (``--kafka-client confluent``): the same records,
    written and read at librdkafka's speed (restoring is reading a whole partition)."""

    def __init__(self, bootstrap_servers, topic, client_options=None, transaction=None):
        from .kafka_confluent import Delivery, translate

        super().__init__(bootstrap_servers, topic, client_options, transaction)
        self._delivery = None if transaction is not None else Delivery({"bootstrap.servers": bootstrap_servers, "acks": "all", "enable.idempotence": True,
                                   "linger.ms": 5, "message.max.bytes": MAX_RECORD_BYTES,
                                   **translate(self.options, "producer")}, "changelog records")

    def _create(self, partitions):
        from confluent_kafka.admin import AdminClient, NewTopic

        from .kafka_confluent import translate

        admin = AdminClient({"bootstrap.servers": self.bootstrap, **translate(self.options, "admin")})
        futures = admin.create_topics([NewTopic(self.topic, partitions, 1, config={
            "cleanup.policy": "compact", "max.message.bytes": str(MAX_RECORD_BYTES)})])
        try:
            futures[self.topic].result()
        except Exception as e:  # already there
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise

    def _read(self, partition):
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        from .kafka_confluent import translate

        options = {k: v for k, v in self.options.items()
                   if k not in ("group_id", "session_timeout_ms", "heartbeat_interval_ms", "max_poll_records")}
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "streamrnn-restore",
                             "enable.auto.commit": False, "fetch.message.max.bytes": 2 * MAX_RECORD_BYTES,
                             "isolation.level": "read_committed",
                             **translate(options, "consumer")})
        try:
            tp = TopicPartition(self.topic, partition)
            # read_committed: the high mark is the last stable offset (what is committed)
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            if high <= low:
                return
            consumer.assign([TopicPartition(self.topic, partition, OFFSET_BEGINNING)])
            position = low
            while position < high:
                records = consumer.consume(10_000, 1.0)
                for r in records:
                    if r.error() is not None:
                        continue
                    position = r.offset() + 1
                    yield r.key(), r.value()
                if not records:
                    # the last offsets may be transaction markers, which are never delivered
                    position = max(position, consumer.position([tp])[0].offset)
        finally:
            consumer.close()

    def _write(self, partition, records):
        for key, value in records:
            self._delivery.produce(self.topic, value, key=key, partition=partition)

    def _producer_flush(self):
        self._delivery.flush()
