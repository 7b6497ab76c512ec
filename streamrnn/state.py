"""Per-key models and the stores that keep them across restarts and rebalances.

:class:`KeyedModels` holds the models of one input partition: one model per key, made from a
template on first sight. Hot models are live estimators; beyond ``max_hot`` the least recently used
ones are evicted to their serialised form (a model is a handful of numpy arrays: ``pickle`` stores
their buffers, not an object graph) and revived when their key comes back.

A store persists the models of a partition together with ``marker``, the last input offset they
cover. :class:`ChangelogStore` keeps them in a compacted Kafka topic, the way Kafka Streams keeps
its state: changelog partition ``p`` holds the state of input partition ``p``, one record per key
plus a marker record, so any worker can restore any partition. :class:`DirectoryStore` keeps them
in files, for runs on files. The runner writes state first and commits offsets after, so the state
always covers what is committed.
"""

from __future__ import annotations

import collections
import os
import struct
import pathlib
import pickle
import time

MARKER = "__marker__"
_OFFSET = struct.Struct(">q")


class _Versions:
    """Reads a partition's changelog records in order. A model record carries the marker of the
    checkpoint that wrote it; it counts only once that checkpoint's marker record follows, so a
    worker killed in the middle of a checkpoint leaves no model newer than the marker (its events
    would be learned twice on replay)."""

    def __init__(self, topic):
        self.prefix = f"{topic}|".encode()
        self.models: dict = {}
        self.pending: dict = {}
        self.marker = -1

    def add_record(self, key: bytes | None, value):
        """A changelog record as read: records of other input topics sharing the changelog are
        skipped."""
        if key is not None and key.startswith(self.prefix):
            self.add(key[len(self.prefix):].decode(), value)

    def add(self, key: str, value):
        if key == MARKER:
            self.marker = int(value)
            for k, (covered, blob) in list(self.pending.items()):
                if covered <= self.marker:
                    del self.pending[k]
                    self.models[k] = blob
        elif value is None:
            self.models.pop(key, None)
            self.pending.pop(key, None)
        else:
            self.pending[key] = (_OFFSET.unpack_from(value)[0], value[_OFFSET.size:])


def _changelog_records(topic, blobs: dict, marker: int):
    """``(key, value)`` of the records one checkpoint writes for a partition: each model behind the
    offset its state covers, then the marker (last: see :class:`_Versions`)."""
    covered = _OFFSET.pack(marker)
    for key, blob in blobs.items():
        yield f"{topic}|{key}".encode(), covered + blob
    yield f"{topic}|{MARKER}".encode(), str(marker).encode()


def dumps(model) -> bytes:
    return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)


def loads(blob: bytes):
    return pickle.loads(blob)


class KeyedModels:
    """The models of one partition, by key."""

    def __init__(self, template, blobs: dict | None = None, marker: int = -1, max_hot: int = 10_000):
        self.template = template
        self.cold: dict = dict(blobs or {})  # key -> serialised model
        self.hot: collections.OrderedDict = collections.OrderedDict()  # key -> model, LRU order
        self.dirty: set = set()
        self.marker = marker
        self.max_hot = max_hot
        self.created = 0
        self.evicted = 0

    def __len__(self):
        return len(self.hot) + len(self.cold)

    def get(self, key):
        model = self.hot.get(key)
        if model is not None:
            self.hot.move_to_end(key)
            return model
        blob = self.cold.pop(key, None)
        if blob is not None:
            model = loads(blob)
        else:
            model = self.template.clone()
            self.created += 1
        self.hot[key] = model
        if len(self.hot) > self.max_hot:
            old_key, old = self.hot.popitem(last=False)
            self.cold[old_key] = dumps(old)
            self.evicted += 1
        return model

    def touch(self, key):
        self.dirty.add(key)

    def take_dirty(self) -> dict:
        """Serialised models changed since the last call."""
        out = {}
        for key in self.dirty:
            model = self.hot.get(key)
            out[key] = dumps(model) if model is not None else self.cold[key]
        self.dirty.clear()
        return out

    def all_blobs(self) -> dict:
        out = dict(self.cold)
        out.update({k: dumps(m) for k, m in self.hot.items()})
        return out

    def model(self, key):
        """The model of ``key`` (for inspection), without changing the LRU order."""
        if key in self.hot:
            return self.hot[key]
        return loads(self.cold[key])


class DirectoryStore:
    """Partition state in files: ``<dir>/<topic>-<partition>.state`` (atomically replaced)."""

    def __init__(self, directory):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._cache: dict = {}

    def _path(self, topic, partition):
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(topic))
        return self.dir / f"{safe}-{partition}.state"

    def restore(self, topic, partition):
        path = self._path(topic, partition)
        if not path.exists():
            return {}, -1
        with open(path, "rb") as f:
            state = pickle.load(f)
        self._cache[(topic, partition)] = state
        return dict(state["models"]), state["marker"]

    def write(self, topic, partition, blobs: dict, marker: int):
        state = self._cache.setdefault((topic, partition), {"models": {}, "marker": -1})
        state["models"].update(blobs)
        state["marker"] = marker
        path = self._path(topic, partition)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def flush(self):
        pass

    def close(self):
        pass


def _restore_options(options):
    from kafka import KafkaConsumer

    from connectors.kafka import options_for

    out = options_for(KafkaConsumer, options)
    for k in ("group_id", "session_timeout_ms", "heartbeat_interval_ms", "max_poll_records"):
        out.pop(k, None)
    return out


class ChangelogStore:
    """Partition state in a compacted Kafka topic (created on first use with as many partitions as
    the input topic). Record key: ``<input topic>|<model key>``; the marker record's value is the
    last covered offset."""

    def __init__(self, bootstrap_servers, topic, client_options=None):
        from kafka import KafkaProducer

        from connectors.kafka import options_for

        self.bootstrap = bootstrap_servers
        self.topic = topic
        self.options = dict(client_options or {})
        self.producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=5,
                                      enable_idempotence=True, max_request_size=16 * 1024 * 1024,
                                      **options_for(KafkaProducer, self.options))
        self._partitions_known = False
        self.restore_seconds = 0.0

    def ensure_topic(self, partitions: int):
        from kafka import KafkaAdminClient
        from kafka.admin import NewTopic
        from kafka.errors import TopicAlreadyExistsError

        if self._partitions_known:
            return
        from connectors.kafka import options_for

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, **options_for(KafkaAdminClient, self.options))
        try:
            admin.create_topics([NewTopic(self.topic, partitions, 1, topic_configs={
                "cleanup.policy": "compact", "max.message.bytes": str(16 * 1024 * 1024)})])
        except TopicAlreadyExistsError:
            pass
        finally:
            admin.close()
        self._partitions_known = True

    def restore(self, topic, partition):
        """Read changelog partition ``partition`` to its end: the latest blob per key and the
        marker of input ``topic``."""
        from kafka import KafkaConsumer, TopicPartition

        start = time.perf_counter()
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                 max_partition_fetch_bytes=32 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024,
                                 **_restore_options(self.options))
        tp = TopicPartition(self.topic, partition)
        models, marker = {}, -1
        try:
            if partition not in (consumer.partitions_for_topic(self.topic) or set()):
                return models, marker
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            end = consumer.end_offsets([tp])[tp]
            versions = _Versions(topic)
            while consumer.position(tp) < end:
                for records in consumer.poll(timeout_ms=1000).values():
                    for r in records:
                        versions.add_record(r.key, r.value)
            models, marker = versions.models, versions.marker
        finally:
            consumer.close()
        self.restore_seconds += time.perf_counter() - start
        return models, marker

    def write(self, topic, partition, blobs: dict, marker: int):
        for key, value in _changelog_records(topic, blobs, marker):
            self.producer.send(self.topic, key=key, value=value, partition=partition)

    def flush(self):
        self.producer.flush()

    def close(self):
        self.producer.flush()
        self.producer.close()


class ConfluentChangelogStore(ChangelogStore):
    """:class:`ChangelogStore` on librdkafka (``--kafka-client confluent``): the same records,
    written and restored at librdkafka's speed (restoring is reading a whole partition)."""

    def __init__(self, bootstrap_servers, topic, client_options=None):
        from connectors.kafka_confluent import Delivery, translate

        self.bootstrap = bootstrap_servers
        self.topic = topic
        self.options = dict(client_options or {})
        self._delivery = Delivery({"bootstrap.servers": bootstrap_servers, "acks": "all", "enable.idempotence": True,
                                   "linger.ms": 5, "message.max.bytes": 16 * 1024 * 1024,
                                   **translate(self.options, "producer")}, "changelog records")
        self.producer = self._delivery.producer
        self._partitions_known = False
        self.restore_seconds = 0.0

    def ensure_topic(self, partitions: int):
        from confluent_kafka.admin import AdminClient, NewTopic

        from connectors.kafka_confluent import translate

        if self._partitions_known:
            return
        admin = AdminClient({"bootstrap.servers": self.bootstrap, **translate(self.options, "admin")})
        futures = admin.create_topics([NewTopic(self.topic, partitions, 1, config={
            "cleanup.policy": "compact", "max.message.bytes": str(16 * 1024 * 1024)})])
        try:
            futures[self.topic].result()
        except Exception as e:  # already there
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise
        self._partitions_known = True

    def restore(self, topic, partition):
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        from connectors.kafka_confluent import translate

        start = time.perf_counter()
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "streamrnn-restore",
                             "enable.auto.commit": False, "fetch.message.max.bytes": 32 * 1024 * 1024,
                             **translate(_restore_options(self.options), "consumer")})
        models, marker = {}, -1
        try:
            low, high = consumer.get_watermark_offsets(TopicPartition(self.topic, partition), timeout=10)
            if high <= low:
                return models, marker
            consumer.assign([TopicPartition(self.topic, partition, OFFSET_BEGINNING)])
            versions = _Versions(topic)
            position = low
            while position < high:
                for r in consumer.consume(10_000, 1.0):
                    if r.error() is not None:
                        continue
                    position = r.offset() + 1
                    versions.add_record(r.key(), r.value())
            models, marker = versions.models, versions.marker
        finally:
            consumer.close()
        self.restore_seconds += time.perf_counter() - start
        return models, marker

    def write(self, topic, partition, blobs: dict, marker: int):
        for key, value in _changelog_records(topic, blobs, marker):
            self._delivery.produce(self.topic, value, key=key, partition=partition)

    def flush(self):
        self._delivery.flush()

    def close(self):
        self.flush()
