"""The Source/Sink interface every connector implements.

A source yields :class:`Event` objects: the original bytes of one message (or line), where it came
from, and its key, headers and timestamp. The runner decodes the bytes; a source never drops or
alters an event, so that every input can be accounted for and bad ones dead-lettered verbatim.

A source remembers what the runner has *processed* through :meth:`Source.commit`, which takes the
positions that are now safe to skip on a restart (Kafka offsets, line numbers). Nothing is
committed automatically.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Iterator, Sequence

import orjson


@dataclasses.dataclass(slots=True)
class Event:
    """One input message.

    ``partition`` and ``offset`` locate it in its stream: the Kafka partition and offset, or
    partition 0 and the 0-based record number of a file.
    """

    value: bytes
    topic: str
    partition: int = 0
    offset: int = 0
    key: bytes | None = None
    headers: Sequence[tuple[str, bytes]] = ()
    timestamp_ms: int | None = None

    @property
    def position(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


class DecodeError(ValueError):
    """The bytes of an event are not a valid record."""


class Source:
    """An iterable of :class:`Event`. ``decode`` turns an event's bytes into a dict of fields.

    A live source may also yield ``None`` when nothing arrived for a while (a heartbeat), so that
    the runner can checkpoint and notice a shutdown request on a quiet stream.
    """

    def __iter__(self) -> Iterator[Event]:
        raise NotImplementedError

    def decode(self, event: Event) -> dict:
        return decode_json(event.value)

    def commit(self, positions: dict[tuple[str, int], int]) -> None:
        """Record that every event up to and including ``positions[(topic, partition)]`` was
        processed. File sources have nothing to commit: the runner's checkpoint holds their
        position."""

    def seek(self, positions: dict[tuple[str, int], int]) -> None:
        """Resume after ``positions`` (the last processed offset of each partition)."""
        raise NotImplementedError(f"{type(self).__name__} cannot seek")

    def end_offset(self, topic: str, partition: int) -> int | None:
        """The offset the next event of ``topic``/``partition`` will have (every event there so far
        has a smaller one), or None where the source cannot tell. State that claims to cover an
        offset at or past it is forged, or from another stream."""
        return None

    def stop(self) -> None:
        """End the iteration at the next event (safe from a signal handler). A source that never
        blocks for long may ignore it."""

    def partition_count(self, topic: str) -> int:
        """How many partitions ``topic`` has (one for a file)."""
        return 1

    def owned_partitions(self) -> set | None:
        """The ``(topic, partition)`` pairs this member of a consumer group holds now, or None for
        a source outside any group (it owns whatever it reads)."""
        return None

    def on_revoke(self, callback) -> None:
        """Call ``callback(partitions)`` when a rebalance takes ``partitions`` from this member,
        before they go. A source outside any group never calls it."""

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class OnePartitionSource(Source):
    """A source of one partition (a file, a text, a dataset), named ``topic``: its events are
    numbered from 0, and ``seek`` resumes after an event number."""

    topic = "stream"
    _start_after = -1

    def seek(self, positions):
        self._start_after = positions.get((self.topic, 0), -1)

    def _unread(self, items):
        """``(offset, item)`` for the items after the position ``seek`` was given."""
        for offset, item in enumerate(items):
            if offset > self._start_after:
                yield offset, item


class Sink:
    """Writes records (dicts, encoded as JSON unless the sink says otherwise)."""

    def write(self, record: dict, key: bytes | None = None, headers: list[tuple[str, bytes]] | None = None) -> None:
        raise NotImplementedError

    def write_raw(self, value: bytes, key: bytes | None = None, headers: list[tuple[str, bytes]] | None = None) -> None:
        """Write bytes as they are (a dead-letter sink keeps the original message)."""
        raise NotImplementedError

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def decode_json(value: bytes) -> dict:
    try:
        record = orjson.loads(value)  # several times faster than json (docs/design.md)
    except orjson.JSONDecodeError:
        # what orjson refuses and json takes (NaN and Infinity literals) is decided
        # by json, so that such a record is read, and refused or not, as it always was
        try:
            record = json.loads(value)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DecodeError(f"malformed JSON: {e}") from None
        except RecursionError:
            raise DecodeError("malformed JSON: nested too deep") from None
        except ValueError as e:  # e.g. an integer of more digits than Python converts
            raise DecodeError(f"malformed JSON: {str(e)[:100]}") from None
    if not isinstance(record, dict):
        raise DecodeError(f"expected a JSON object, got {type(record).__name__}")
    return record


def encode_json(record: dict) -> bytes:
    try:
        # keys that are not strings (class labels in probabilities) become strings, as in json
        out = orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # a type orjson does not know: json decides, as it always did
        out = None
    # orjson writes a NaN or an infinity as null; json (allow_nan=False) refuses them, since a NaN in
    # the output would be invalid JSON for most consumers. A null is rare in a record: json then
    # writes it again (the same record, or the refusal).
    if out is None or b"null" in out:
        return json.dumps(record, separators=(",", ":"), allow_nan=False).encode()
    return out


class NullSink(Sink):
    """Discards what it is given (counts it)."""

    def __init__(self):
        self.count = 0

    def write(self, record, key=None, headers=None):
        self.count += 1

    def write_raw(self, value, key=None, headers=None):
        self.count += 1


class ListSink(Sink):
    """Keeps records in memory (for tests and notebooks)."""

    def __init__(self):
        self.records: list = []

    def write(self, record, key=None, headers=None):
        self.records.append(record)

    def write_raw(self, value, key=None, headers=None):
        self.records.append({"value": value, "key": key, "headers": headers or []})
