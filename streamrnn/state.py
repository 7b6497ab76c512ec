"""Per-key models and the stores that keep them across restarts and rebalances.

:class:`KeyedModels` holds the models of one input partition: one model per key, made from a
template on first sight. Hot models are live estimators; beyond ``max_hot`` the least recently used
ones are evicted to their serialised form (:mod:`streamrnn.persist`: a few numpy arrays and a
small header, never a pickle) and revived when their key comes back.

A store keeps the changelog records of a partition: one record per key (the model, behind the
offset its state covers) and a marker record, the last input offset the models cover. The Kafka
stores (:mod:`connectors.changelog`) keep them in a compacted topic, the way Kafka Streams keeps
its state: changelog partition ``p`` holds the state of input partition ``p``, so any worker can
restore any partition. :class:`DirectoryStore` keeps them in files, for runs on files. A store
only moves bytes; :func:`restore_partition` checks every record before it counts. The runner
writes state first and commits offsets after, so the state always covers what is committed.
"""

from __future__ import annotations

import collections
import os
import struct
import pathlib

import numpy as np

from . import persist

MARKER = "__marker__"
_OFFSET = struct.Struct(">q")


class _Versions:
    """Reads a partition's changelog records in order. A model record carries the marker of the
    checkpoint that wrote it; it counts only once that checkpoint's marker record follows, so a
    worker killed in the middle of a checkpoint leaves no model newer than the marker (its events
    would be learned twice on replay).

    Every record is checked before it counts (:mod:`streamrnn.persist`): a model that is not a
    valid state, a marker beyond ``limit`` (the input partition's end offset: no checkpoint can
    cover an offset not yet written) or not a valid marker document is refused, and its reason kept
    in ``rejected``."""

    def __init__(self, topic, key=None, limit=None):
        self.topic = topic
        self.prefix = f"{topic}|".encode()
        self.key = key
        self.limit = limit
        self.models: dict = {}
        self.pending: dict = {}
        self.marker = -1
        self.rejected: list = []

    def add_record(self, key: bytes | None, value):
        """A changelog record as read: records of other input topics sharing the changelog are
        skipped."""
        if key is not None and key.startswith(self.prefix):
            try:
                name = key[len(self.prefix):].decode("utf-8")
            except UnicodeDecodeError:
                self.rejected.append("a record key that is not UTF-8")
                return
            self.add(name, value)

    def add(self, key: str, value):
        try:
            self._add(key, value)
        except persist.StateError as e:
            self.rejected.append(f"{key[:40]!r}: {e}")

    def _add(self, key, value):
        if value is None:
            self.models.pop(key, None)
            self.pending.pop(key, None)
            return
        if key == MARKER:
            header, _ = persist.unpack_document(value, self.key)
            marker = header.get("marker")
            if header.get("kind") != "marker" or header.get("topic") != self.topic or type(marker) is not int:
                raise persist.StateError("not a marker of this topic")
            if marker < -1 or (self.limit is not None and marker >= self.limit):
                raise persist.StateError(f"marker {marker} is beyond the input partition's end offset {self.limit}: "
                                         "forged or from another topic")
            self.marker = marker
            for k, (covered, blob) in list(self.pending.items()):
                if covered <= self.marker:
                    del self.pending[k]
                    self.models[k] = blob
            return
        if len(value) < _OFFSET.size:
            raise persist.StateError("record too short")
        covered, blob = _OFFSET.unpack_from(value)[0], value[_OFFSET.size:]
        _, fields = persist.loads(blob, self.key, with_fields=True)  # every check, now
        if fields.get("key") != key:
            raise persist.StateError(f"the model was saved for key {str(fields.get('key'))[:40]!r}")
        self.pending[key] = (covered, blob)


def _changelog_records(topic, blobs: dict, marker: int, key=None):
    """``(key, value)`` of the records one checkpoint writes for a partition: each model behind the
    offset its state covers, then the marker (last: see :class:`_Versions`)."""
    covered = _OFFSET.pack(marker)
    for name, blob in blobs.items():
        yield _record_key(topic, name), covered + blob
    yield _record_key(topic, MARKER), persist.pack_document({"kind": "marker", "topic": topic, "marker": marker},
                                                            secret=key)


def _record_key(topic, name) -> bytes:
    try:
        return f"{topic}|{name}".encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"key {name!r} cannot be encoded as UTF-8") from None


class KeyedModels:
    """The models of one partition, by key (strings)."""

    def __init__(self, template, blobs: dict | None = None, marker: int = -1, max_hot: int = 10_000, key=None):
        self.template = template
        self.cold: dict = dict(blobs or {})  # key -> serialised model
        self.hot: collections.OrderedDict = collections.OrderedDict()  # key -> model, LRU order
        self.dirty: set = set()
        self.marker = marker
        self.max_hot = max_hot
        self.key = key  # the HMAC key of the state, or None
        self.evicted = 0

    def __len__(self):
        return len(self.hot) + len(self.cold)

    def _dumps(self, name, model):
        return persist.dumps(model, self.key, key=name)

    def get(self, name):
        model = self.hot.get(name)
        if model is not None:
            self.hot.move_to_end(name)
            return model
        blob = self.cold.pop(name, None)
        model = self.template.clone() if blob is None else persist.loads(blob, self.key)
        self.hot[name] = model
        if len(self.hot) > self.max_hot:
            old_name, old = self.hot.popitem(last=False)
            self.cold[old_name] = self._dumps(old_name, old)
            self.evicted += 1
        return model

    def touch(self, name):
        self.dirty.add(name)

    def take_dirty(self) -> dict:
        """Serialised models changed since the last call."""
        out = {}
        for name in self.dirty:
            model = self.hot.get(name)
            out[name] = self._dumps(name, model) if model is not None else self.cold[name]
        self.dirty.clear()
        return out

    def model(self, name):
        """The model of ``name`` (for inspection), without changing the LRU order."""
        if name in self.hot:
            return self.hot[name]
        return persist.loads(self.cold[name], self.key)


def restore_partition(store, topic, partition, key=None, limit=None) -> _Versions:
    """The checked state of input ``topic``/``partition`` from ``store``'s records (models, marker,
    and the records refused)."""
    versions = _Versions(topic, key, limit)
    for record_key, value in store.records(topic, partition):
        versions.add_record(record_key, value)
    return versions


def write_partition(store, topic, partition, blobs: dict, marker: int, key=None):
    store.write(topic, partition, list(_changelog_records(topic, blobs, marker, key)))


def records_of(header: dict, arrays: dict, where) -> dict:
    """The records (``{key: value}``, both bytes) of an unpacked store file; anything else is
    refused with a :class:`~streamrnn.persist.StateError`."""
    sizes, data = header.get("sizes"), arrays.get("records")
    if header.get("kind") != "records" or type(sizes) is not list or data is None or data.ndim != 1:
        raise persist.StateError(f"{where} is not a streamrnn state file")
    records, raw, at = {}, data.tobytes(), 0
    for item in sizes:
        if not (type(item) is list and len(item) == 2 and all(type(n) is int and n >= 0 for n in item)):
            raise persist.StateError(f"{where}: bad record sizes")
        k, v = raw[at : at + item[0]], raw[at + item[0] : at + item[0] + item[1]]
        at += item[0] + item[1]
        records[k] = v
    if at != len(raw):
        raise persist.StateError(f"{where}: record sizes do not match the data")
    return records


def read_records(path, key=None) -> dict:
    """The records of the store file at ``path`` (none if there is no file), after every check."""
    path = pathlib.Path(path)
    if not path.exists():
        return {}
    header, arrays = persist.unpack_document(path.read_bytes(), key)
    return records_of(header, arrays, path)


def write_records(path, records: dict, key=None):
    """Replace the store file at ``path`` with ``records`` atomically: a temporary file, synced,
    then renamed, so a reader (or a restart after a crash) sees the old file or the new one."""
    sizes = [[len(k), len(v)] for k, v in records.items()]
    data = np.frombuffer(b"".join(k + v for k, v in records.items()), dtype=np.uint8)
    blob = persist.pack_document({"kind": "records", "sizes": sizes}, [("records", data)], key)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class DirectoryStore:
    """Partition state in files, ``<dir>/<topic>-<partition>.state`` (see :func:`write_records`):
    the latest changelog record of every key, in one checksummed (or signed) document."""

    def __init__(self, directory, key=None):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = key
        self._cache: dict = {}

    def _path(self, topic, partition):
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(topic))
        return self.dir / f"{safe}-{partition}.state"

    def records(self, topic, partition):
        records = read_records(self._path(topic, partition), self.key)
        self._cache[(topic, partition)] = records
        return list(records.items())

    def write(self, topic, partition, records):
        cached = self._cache.setdefault((topic, partition), {})
        cached.update(records)
        write_records(self._path(topic, partition), cached, self.key)

    def flush(self):
        pass

    def close(self):
        pass
