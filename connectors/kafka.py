"""Kafka source and sink (kafka-python).

The source joins a consumer group and never auto-commits: the runner calls :meth:`commit` with
the offsets it has processed (and whose predictions the sink has flushed). The sink produces JSON
with ``acks='all'`` and idempotence, and keeps message keys and headers.

Client settings (security included) pass through to kafka-python: ``client_options`` such as
``security_protocol='SASL_SSL'``, ``sasl_mechanism='PLAIN'``, ``sasl_plain_username``, ... ;
:mod:`connectors.kafka_settings` reads them from properties files and ``STREAMRNN_KAFKA_<OPTION>``
variables.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Callable, Iterator

from .base import Event, Sink, Source, encode_json
from .kafka_settings import ENV_PREFIX, options_for
from .transaction import TRANSACTION_TIMEOUT_MS, Transaction

log = logging.getLogger(__name__)

class GroupSource(Source):
    """What a Kafka source keeps of its consumer-group membership, whichever client it uses: the
    partitions assigned, the callbacks of a rebalance, where to start on assignment, and when the
    stream counts as idle (partitions assigned, and no message and no rebalance for
    ``idle_timeout`` seconds: a member waiting for its share while a busy peer compiles or restores
    is not idle)."""

    def _join(self, topics, idle_timeout, on_assign, on_revoke, bootstrap_servers=""):
        self.bootstrap_servers = bootstrap_servers
        self.topics = [topics] if isinstance(topics, str) else list(topics)
        self.idle_timeout = idle_timeout
        self._seek_to: dict = {}
        self._stop = False
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self.assigned: set = set()
        self._activity = time.monotonic()  # last message or rebalance

    def _start_position(self, topic, partition):
        """The offset to start from on assignment, or None for the committed one."""
        last = self._seek_to.get((topic, partition))
        return None if last is None else last + 1

    def _partitions_assigned(self, parts):
        self._activity = time.monotonic()
        self.assigned.update(parts)
        if self._on_assign and parts:
            self._on_assign(parts)

    def _partitions_revoked(self, parts):
        self._activity = time.monotonic()
        self.assigned.difference_update(parts)
        if self._on_revoke and parts:
            self._on_revoke(parts)

    def _heard(self):
        self._activity = time.monotonic()

    def _idle(self) -> bool:
        if not (self.idle_timeout is not None and bool(self.assigned)
                and time.monotonic() - self._activity > self.idle_timeout):
            return False
        if not _any_broker_answers(self.bootstrap_servers):
            # a broker outage is not a quiet stream: wait for the broker, as the clients do
            log.warning("no Kafka broker of %s answers: not idle, waiting for it", self.bootstrap_servers)
            self._activity = time.monotonic()
            return False
        return True

    def seek(self, positions):
        """Start after these offsets when the partitions are assigned (e.g. from a checkpoint
        that got ahead of the committed offsets)."""
        self._seek_to.update(positions)

    def owned_partitions(self) -> set:
        return set(self.assigned)

    def on_revoke(self, callback):
        self._on_revoke = callback

    def stop(self):
        self._stop = True


def wait_for_broker(bootstrap_servers: str, seconds: float, on_wait=None) -> bool:
    """Whether one of the bootstrap servers accepts a TCP connection within ``seconds``;
    ``on_wait()`` is called once if the first try fails."""
    deadline = time.monotonic() + seconds
    first = True
    while True:
        if _any_broker_answers(bootstrap_servers, timeout=min(2.0, max(seconds, 0.1))):
            return True
        if time.monotonic() >= deadline:
            return False
        if first and on_wait is not None:
            on_wait()
        first = False
        time.sleep(min(0.5, max(deadline - time.monotonic(), 0.0)))


def _any_broker_answers(bootstrap_servers: str, timeout=2.0) -> bool:
    """Whether a TCP connection to one of the bootstrap servers opens."""
    import socket

    for server in filter(None, (s.strip() for s in bootstrap_servers.split(","))):
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout=timeout):
                return True
        except (OSError, ValueError):
            continue
    return not bootstrap_servers  # nothing to ask: as before


class KafkaSource(GroupSource):
    """Consume ``topics`` as a member of ``group_id``; offsets are committed only by :meth:`commit`.

    ``idle_timeout`` (seconds) ends the iteration once no message has arrived for that long
    (for draining a topic); ``None`` waits forever. ``on_assign``/``on_revoke`` are called with the
    list of (topic, partition) on a rebalance, from inside ``poll``.

    ``metadata_wait`` (seconds): how long to wait for the partitions of the topics before the
    first group join. A kafka-python 3.0.12 group leader that joins before it knows its topics'
    partitions assigns nothing, and in about 1 join in 20 (measured here) never rejoins when the
    partitions become known: the member then holds no partition forever, and with it the group.
    The CI runs that hung here match it; knowing the partitions first avoids it (0 in 60). A
    topic that still has no partition after ``metadata_wait`` is joined without (the race is
    then possible again).

    ``read_committed``: skip the records of aborted transactions, and wait for open ones (the
    input of an exactly-once worker; see :mod:`connectors.transaction`).

    ``join_timeout`` (seconds): a consumer whose first group join has not completed that long after
    it subscribed is closed and replaced by a new one (counted in ``rejoins``): a guard for a
    coordinator that never answers. A member that never joined owns nothing to lose.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topics: list[str] | str,
        group_id: str = "streamrnn",
        client_options: dict | None = None,
        idle_timeout: float | None = None,
        poll_timeout_ms: int = 200,
        max_poll_records: int = 2000,
        on_assign: Callable | None = None,
        on_revoke: Callable | None = None,
        join_timeout: float | None = 120.0,
        metadata_wait: float = 10.0,
        read_committed: bool = False,
    ):
        from kafka import KafkaConsumer

        self._join(topics, idle_timeout, on_assign, on_revoke, bootstrap_servers)
        self.poll_timeout_ms = poll_timeout_ms
        self.join_timeout = join_timeout
        self.metadata_wait = metadata_wait
        self.rejoins = 0
        self._options = dict(
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=max_poll_records,
            isolation_level="read_committed" if read_committed else "read_uncommitted",
        )
        self._options.update(options_for(KafkaConsumer, client_options))
        self._connect()

    def _connect(self):
        from kafka import ConsumerRebalanceListener, KafkaConsumer

        self.consumer = KafkaConsumer(**self._options)
        self._join_deadline = None if self.join_timeout is None else time.monotonic() + self.join_timeout
        source = self

        class Listener(ConsumerRebalanceListener):
            # kafka-python runs these inside poll(): no blocking consumer calls here
            def on_partitions_revoked(self, revoked):
                source._partitions_revoked([(tp.topic, tp.partition) for tp in revoked])

            def on_partitions_assigned(self, assigned):
                source._join_deadline = None  # the join completed (even with no partition for us)
                for tp in assigned:
                    start = source._start_position(tp.topic, tp.partition)
                    if start is not None:
                        source.consumer.seek(tp, start)
                source._partitions_assigned([(tp.topic, tp.partition) for tp in assigned])

        self.consumer.subscribe(self.topics, listener=Listener())
        # kafka-python joins the group in its first poll(); see ``metadata_wait`` for why the
        # partitions must be known by then. The subscription's own metadata request (which also
        # has the broker create a missing topic, where it may) usually brings them within ms.
        deadline = time.monotonic() + self.metadata_wait
        for topic in self.topics:
            self._partitions(topic, deadline)

    def _rejoin_if_stuck(self):
        if self._join_deadline is None or time.monotonic() < self._join_deadline:
            return
        log.warning("group join not completed %.0f s after subscribing: replacing the consumer",
                    self.join_timeout)
        try:
            self.consumer.close(autocommit=False, timeout_ms=5000)
        except Exception as e:  # it is being replaced because it misbehaves
            log.warning("closing the stuck consumer failed: %r", e)
        self.rejoins += 1
        self._connect()

    def __iter__(self) -> Iterator[Event]:
        self._heard()
        while not self._stop:
            batches = self.consumer.poll(timeout_ms=self.poll_timeout_ms)
            if not batches:
                if self._idle():
                    return
                self._rejoin_if_stuck()
                yield None  # a heartbeat: the runner may checkpoint or stop while the topic is quiet
                continue
            self._heard()
            for tp, records in batches.items():
                for r in records:
                    if (tp.topic, tp.partition) not in self.assigned:
                        break  # revoked while we were busy: another member owns it now
                    yield Event(
                        value=r.value if r.value is not None else b"",
                        topic=r.topic,
                        partition=r.partition,
                        offset=r.offset,
                        key=r.key,
                        headers=list(r.headers or []),
                        timestamp_ms=r.timestamp,
                    )
                    if self._stop:
                        return

    def _partitions(self, topic, deadline) -> set:
        """The partition ids of ``topic``, asking until some are known or ``deadline`` passes
        (then empty)."""
        while True:
            parts = self.consumer.partitions_for_topic(topic)
            if parts or time.monotonic() >= deadline:
                return parts
            time.sleep(0.05)

    def partition_count(self, topic) -> int:
        parts = self._partitions(topic, time.monotonic() + 10.0)
        if not parts:
            raise RuntimeError(f"no partition metadata for {topic!r}")
        return max(parts) + 1

    def end_offset(self, topic, partition):
        from kafka.structs import TopicPartition

        tp = TopicPartition(topic, partition)
        return self.consumer.end_offsets([tp])[tp]

    def commit(self, positions):
        from kafka.structs import OffsetAndMetadata, TopicPartition

        if not positions:
            return
        self.consumer.commit(
            {TopicPartition(t, p): OffsetAndMetadata(o + 1, "", -1) for (t, p), o in positions.items()}
        )

    def committed(self, topic, partition):
        """The group's committed offset of ``topic``/``partition`` (the next to read), or None."""
        from kafka.structs import TopicPartition

        return self.consumer.committed(TopicPartition(topic, partition))

    def group_metadata(self):
        """What a transaction needs to commit offsets for this member (KIP-447 fencing)."""
        return self.consumer.group_metadata()

    def close(self):
        self.consumer.close(autocommit=False)


class KafkaTransaction(Transaction):
    """A kafka-python transactional producer (see :mod:`connectors.transaction`)."""

    def __init__(self, bootstrap_servers, transactional_id, client_options=None,
                 timeout_ms=TRANSACTION_TIMEOUT_MS, max_request_bytes=16 * 1024 * 1024):
        from kafka import KafkaProducer

        super().__init__(transactional_id)
        # a longer linger than the at-least-once sink's: output is visible at the commit anyway, and
        # fuller batches leave the worker's thread more of the GIL
        options = dict(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=50, batch_size=1024 * 1024,
                       enable_idempotence=True, transactional_id=transactional_id,
                       transaction_timeout_ms=timeout_ms, max_request_size=max_request_bytes)
        options.update(options_for(KafkaProducer, client_options))
        self.producer = KafkaProducer(**options)
        self.producer.init_transactions()  # fences an earlier producer of this id, aborting its transaction

    def _begin(self):
        self.producer.begin_transaction()

    def _send(self, topic, value, key, headers, partition):
        self.producer.send(topic, value=value, key=key, headers=headers, partition=partition)

    def _send_offsets(self, offsets, group_metadata):
        from kafka.structs import OffsetAndMetadata, TopicPartition

        self.producer.send_offsets_to_transaction(
            {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()}, group_metadata)

    def _commit(self):
        self.producer.commit_transaction()

    def _abort(self):
        self.producer.abort_transaction()

    def close(self):
        self.abort("closed with the transaction open")
        self.producer.close()


class KafkaSink(Sink):
    """Produce records as JSON to ``topic`` with ``acks='all'``; keys and headers are kept. With a
    ``transaction`` (:class:`KafkaTransaction`), records go into it and are delivered when it commits."""

    def __init__(self, bootstrap_servers: str, topic: str, client_options: dict | None = None, linger_ms: int = 20,
                 batch_size: int = 1024 * 1024, transaction: Transaction | None = None):
        # a 20 ms linger (5 before) makes kafka-python's batches fuller and its sender thread, which
        # shares the GIL with the model, wake less often: see docs/benchmarks.md. Latency-bound
        # jobs set linger_ms lower with --kafka-option.
        from kafka import KafkaProducer

        self.topic = topic
        self.transaction = transaction
        if transaction is not None:
            return
        options = dict(
            bootstrap_servers=bootstrap_servers,
            acks="all",
            linger_ms=linger_ms,
            batch_size=batch_size,
            enable_idempotence=True,
            retries=2**31 - 1,
            max_in_flight_requests_per_connection=5,
        )
        options.update(options_for(KafkaProducer, client_options))
        self.producer = KafkaProducer(**options)
        # futures since the last flush, checked there (a callback per record costs a third more)
        self._pending: list = []

    def write_raw(self, value, key=None, headers=None):
        if self.transaction is not None:
            self.transaction.send(self.topic, value, key, headers)
            return
        self._pending.append(self.producer.send(self.topic, value=value, key=key, headers=headers or None))

    def write(self, record, key=None, headers=None):
        self.write_raw(encode_json(record), key, headers)

    def flush(self):
        """Block until every record written so far is acknowledged by all in-sync replicas;
        raise if any was not. (In a transaction: nothing to do; the commit delivers.)"""
        if self.transaction is not None:
            return
        self.producer.flush()
        pending, self._pending = self._pending, []
        errors = [f.exception for f in pending if f.failed()]
        if errors:
            raise RuntimeError(f"{len(errors)} records were not delivered: {errors[0]!r}")

    def close(self):
        if self.transaction is not None:
            return  # its owner closes the transaction
        try:
            self.flush()
        finally:
            self.producer.close()


def parse_kafka_uri(uri: str) -> tuple[str, str]:
    """``kafka://host:port[,host:port]/topic`` -> (bootstrap servers, topic). Without a host
    (``kafka:///topic``) the servers come from ``STREAMRNN_KAFKA_BOOTSTRAP_SERVERS``."""
    rest = uri[len("kafka://"):]
    servers, _, topic = rest.partition("/")
    if not topic:
        raise ValueError(f"no topic in {uri!r}: expected kafka://HOST:PORT/TOPIC")
    if not servers:
        servers = os.environ.get(ENV_PREFIX + "BOOTSTRAP_SERVERS", "")
        if not servers:
            raise ValueError(f"{uri!r} names no broker and {ENV_PREFIX}BOOTSTRAP_SERVERS is not set")
    return servers, topic
