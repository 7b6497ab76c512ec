"""Kafka source and sink on confluent-kafka (librdkafka), the fast path.

The same contract as :mod:`connectors.kafka` (consumer group, no auto-commit, commits only of
processed offsets; ``acks=all`` and idempotence on the producer; keys and headers kept), with
librdkafka doing the protocol work in C, at a fraction of kafka-python's cost per message
(docs/design.md). Select it with ``--kafka-client confluent``
(or ``STREAMRNN_KAFKA_CLIENT=confluent``); install with ``pip install confluent-kafka``.

Client settings use kafka-python's names (``security_protocol``, ``sasl_plain_username``, ...),
translated to librdkafka's; a name with dots (``ssl.endpoint.identification.algorithm``) passes
through unchanged.
"""

from __future__ import annotations

from typing import Callable, Iterator

from .base import Event, Sink, encode_json
from .kafka import GroupSource
from .transaction import TRANSACTION_TIMEOUT_MS, Transaction

# kafka-python option -> librdkafka property, where the names differ beyond '_' -> '.'
_RENAMES = {
    "sasl_plain_username": "sasl.username",
    "sasl_plain_password": "sasl.password",
    "ssl_cafile": "ssl.ca.location",
    "ssl_certfile": "ssl.certificate.location",
    "ssl_keyfile": "ssl.key.location",
    "ssl_password": "ssl.key.password",
    "ssl_check_hostname": "ssl.endpoint.identification.algorithm",
    "request_timeout_ms": "request.timeout.ms",
    "max_poll_interval_ms": "max.poll.interval.ms",
    "max_request_size": "message.max.bytes",
}
_CONSUMER_ONLY = {"session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms", "fetch.wait.max.ms",
                  "fetch.min.bytes", "auto.offset.reset", "group.id", "enable.auto.commit", "max.partition.fetch.bytes",
                  "isolation.level"}
_PRODUCER_ONLY = {"linger.ms", "batch.size", "acks", "enable.idempotence", "compression.type", "retries",
                  "message.max.bytes", "queue.buffering.max.messages", "transactional.id", "transaction.timeout.ms"}


def translate(options: dict | None, role: str) -> dict:
    """kafka-python style settings -> librdkafka properties for a 'consumer' or 'producer'."""
    out = {}
    for key, value in (options or {}).items():
        if "." in key:
            prop = key
        elif key == "fetch_max_wait_ms":
            prop = "fetch.wait.max.ms"
        else:
            prop = _RENAMES.get(key, key.replace("_", "."))
        if key == "ssl_check_hostname":
            value = "https" if value else "none"
        if (role == "consumer" and prop in _PRODUCER_ONLY or role == "producer" and prop in _CONSUMER_ONLY
                or role == "admin" and prop in _PRODUCER_ONLY | _CONSUMER_ONLY):
            continue
        out[prop] = value
    return out


class ConfluentKafkaSource(GroupSource):
    """Consume ``topics`` in ``group_id`` with librdkafka; see :class:`connectors.kafka.KafkaSource`."""

    def __init__(self, bootstrap_servers, topics, group_id="streamrnn", client_options=None,
                 idle_timeout=None, poll_timeout_ms=200, max_poll_records=2000,
                 on_assign: Callable | None = None, on_revoke: Callable | None = None, read_committed=False):
        from confluent_kafka import Consumer

        self._join(topics, idle_timeout, on_assign, on_revoke, bootstrap_servers)
        self.poll_timeout = poll_timeout_ms / 1000.0
        self.batch = max_poll_records
        config = {"bootstrap.servers": bootstrap_servers, "group.id": group_id, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100, "enable.partition.eof": False,
                  "isolation.level": "read_committed" if read_committed else "read_uncommitted"}
        config.update(translate(client_options, "consumer"))
        self.consumer = Consumer(config)
        self.consumer.subscribe(self.topics, on_assign=self._assigned, on_revoke=self._revoked)

    def _assigned(self, consumer, partitions):
        for tp in partitions:
            start = self._start_position(tp.topic, tp.partition)
            if start is not None:
                tp.offset = start
        consumer.assign(partitions)
        self._partitions_assigned([(tp.topic, tp.partition) for tp in partitions])

    def _revoked(self, consumer, partitions):
        self._partitions_revoked([(tp.topic, tp.partition) for tp in partitions])
        consumer.unassign()

    def __iter__(self) -> Iterator[Event]:
        self._heard()
        consumer = self.consumer
        while not self._stop:
            # what is already fetched, without waiting for a full batch (that would add latency);
            # if nothing is, block for the next message
            messages = consumer.consume(self.batch, 0)
            if not messages:
                m = consumer.poll(self.poll_timeout)
                messages = [m] if m is not None else []
            if not messages:
                if self._idle():
                    return
                yield None  # a heartbeat: the runner may checkpoint or stop while the topic is quiet
                continue
            self._heard()
            for m in messages:
                if m.error() is not None:
                    continue  # transient errors; librdkafka retries by itself
                topic, partition = m.topic(), m.partition()
                if (topic, partition) not in self.assigned:
                    continue  # revoked while we were busy: another member owns it now
                ts = m.timestamp()
                yield Event(value=m.value() or b"", topic=topic, partition=partition, offset=m.offset(),
                            key=m.key(), headers=m.headers() or (), timestamp_ms=ts[1] if ts[0] else None)
                if self._stop:
                    return

    def partition_count(self, topic) -> int:
        meta = self.consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise RuntimeError(f"no partition metadata for {topic!r}")
        return max(meta.partitions) + 1

    def end_offset(self, topic, partition):
        from confluent_kafka import TopicPartition

        return self.consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]

    def commit(self, positions):
        from confluent_kafka import TopicPartition

        if positions:
            self.consumer.commit(offsets=[TopicPartition(t, p, o + 1) for (t, p), o in positions.items()],
                                 asynchronous=False)

    def committed(self, topic, partition):
        """The group's committed offset of ``topic``/``partition`` (the next to read), or None."""
        from confluent_kafka import TopicPartition

        offset = self.consumer.committed([TopicPartition(topic, partition)], timeout=30)[0].offset
        return offset if offset >= 0 else None

    def group_metadata(self):
        """What a transaction needs to commit offsets for this member (KIP-447 fencing)."""
        return self.consumer.consumer_group_metadata()

    def close(self):
        self.consumer.close()


class ConfluentTransaction(Transaction):
    """A librdkafka transactional producer (see :mod:`connectors.transaction`)."""

    def __init__(self, bootstrap_servers, transactional_id, client_options=None,
                 timeout_ms=TRANSACTION_TIMEOUT_MS, max_request_bytes=16 * 1024 * 1024):
        from confluent_kafka import Producer

        super().__init__(transactional_id)
        config = {"bootstrap.servers": bootstrap_servers, "transactional.id": transactional_id,
                  "transaction.timeout.ms": timeout_ms, "linger.ms": 5, "message.max.bytes": max_request_bytes}
        config.update(translate(client_options, "producer"))
        self.producer = Producer(config)
        self.producer.init_transactions(60.0)  # fences an earlier producer of this id, aborting its transaction

    def _begin(self):
        self.producer.begin_transaction()

    def _send(self, topic, value, key, headers, partition):
        while True:
            try:
                if partition is None:
                    self.producer.produce(topic, value, key, headers=headers)
                else:
                    self.producer.produce(topic, value, key, partition, headers=headers)
                return
            except BufferError:
                self.producer.poll(0.05)

    def _send_offsets(self, offsets, group_metadata):
        from confluent_kafka import TopicPartition

        self.producer.send_offsets_to_transaction(
            [TopicPartition(t, p, o) for (t, p), o in offsets.items()], group_metadata, 60.0)

    def _commit(self):
        self.producer.commit_transaction(60.0)

    def _abort(self):
        self.producer.abort_transaction(30.0)

    def close(self):
        self.abort("closed with the transaction open")
        self.producer.flush(10.0)


class Delivery:
    """A librdkafka producer of ``config``, with back-pressure (a full local queue waits for sends)
    and delivery failures raised at flush. Only failures are reported back to Python: a callback
    per delivered message would cost about a microsecond each."""

    def __init__(self, config: dict, what="records"):
        from confluent_kafka import Producer

        self.producer = Producer({**config, "on_delivery": self._report, "delivery.report.only.error": True})
        self.what = what
        self.failures: list = []
        self.count = 0

    def _report(self, err, msg):
        if err is not None:
            self.failures.append(err)

    def produce(self, topic, value, key=None, headers=None, partition=None):
        while True:
            try:
                if partition is None:
                    self.producer.produce(topic, value, key, headers=headers or None)
                else:
                    self.producer.produce(topic, value, key, partition, headers=headers or None)
                break
            except BufferError:
                self.producer.poll(0.05)
        self.count += 1
        if self.count % 1000 == 0:
            self.producer.poll(0)  # serve delivery reports

    def flush(self):
        """Block until everything produced so far is acknowledged; raise if anything was not."""
        while self.producer.flush(30.0) > 0:
            pass
        if self.failures:
            failures, self.failures = self.failures, []
            raise RuntimeError(f"{len(failures)} {self.what} were not delivered: {failures[0]}")


class ConfluentKafkaSink(Sink):
    """Produce JSON records with librdkafka, ``acks=all`` and idempotence; keys and headers kept.
    With a ``transaction`` (:class:`ConfluentTransaction`), records go into it."""

    def __init__(self, bootstrap_servers, topic, client_options=None, linger_ms=5, transaction=None):
        self.topic = topic
        self.transaction = transaction
        if transaction is not None:
            return
        config = {"bootstrap.servers": bootstrap_servers, "acks": "all", "enable.idempotence": True,
                  "linger.ms": linger_ms}
        config.update(translate(client_options, "producer"))
        self._delivery = Delivery(config)
        self.producer = self._delivery.producer

    def write_raw(self, value, key=None, headers=None):
        if self.transaction is not None:
            self.transaction.send(self.topic, value, key, headers)
        else:
            self._delivery.produce(self.topic, value, key, headers)

    def write(self, record, key=None, headers=None):
        self.write_raw(encode_json(record), key, headers)

    def flush(self):
        if self.transaction is None:
            self._delivery.flush()  # in a transaction, its commit delivers

    def close(self):
        self.flush()
