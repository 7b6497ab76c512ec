"""File sources and sinks: CSV, JSON Lines, and recordings of Kafka topics.

Records are one per line. A source yields the raw bytes of each line (without the line break) and
decodes them on request, so a malformed line reaches the dead-letter sink exactly as it was.
Replay runs as fast as possible, or paced by a timestamp field at ``speed`` times real time.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import json
import pathlib
import sys
import time
from typing import Iterator

from .base import DecodeError, Event, OnePartitionSource, Sink, encode_json


# seconds since the epoch of years 1 and 9999, the range of a datetime
_EARLIEST, _LATEST = -62135596800.0, 253402300799.0


def parse_timestamp(value) -> float:
    """Seconds since the epoch from a number (seconds, or milliseconds when > 1e11) or an ISO
    8601 string (``2014-04-01 00:00:00`` included). A number that is not finite, or not within
    the years 1 to 9999, raises :class:`~connectors.base.DecodeError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise DecodeError(f"timestamp of type {type(value).__name__}")
    try:
        v = float(value)
    except OverflowError:
        raise DecodeError("timestamp out of range") from None
    except ValueError:
        v = None
    if v is not None:
        v = v / 1000.0 if v > 1e11 else v
        if not _EARLIEST <= v <= _LATEST:  # (False for NaN too)
            raise DecodeError(f"timestamp {str(value)[:40]!r} is not a time between the years 1 and 9999")
        return v
    s = value.strip()
    try:
        t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise DecodeError(f"cannot read timestamp {value[:40]!r}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.timestamp()


class _LineSource(OnePartitionSource):
    """Lines of a file (or of an open binary stream) as events, optionally paced."""

    def __init__(self, path, timestamp_field: str | None = None, speed: float | None = None, skip_header=False):
        self.path = path
        self.timestamp_field = timestamp_field
        self.speed = speed
        self.skip_header = skip_header
        self.header: list[str] | None = None

    @property
    def topic(self):
        return str(self.path)

    def stop(self):
        """End the iteration (and any pacing sleep) at the next event; safe from a signal handler."""
        self._stop = True

    def end_offset(self, topic, partition):
        if self.path == "-" or topic != self.topic or partition != 0:
            return None
        return sum(1 for _ in self._lines())

    def _open(self):
        if self.path == "-":
            return sys.stdin.buffer
        return open(self.path, "rb")

    def _lines(self) -> Iterator[bytes]:
        f = self._open()
        try:
            if self.skip_header:
                self.header = self._read_header(f.readline().decode("utf-8-sig").rstrip("\r\n"))
            for line in f:
                line = line.rstrip(b"\r\n")
                if line:
                    yield line
        finally:
            if f is not sys.stdin.buffer:
                f.close()

    def __iter__(self) -> Iterator[Event]:
        self._stop = False
        pacer = _Pacer(self.speed, lambda: self._stop) if self.timestamp_field and self.speed else None
        for offset, line in self._unread(self._lines()):
            event = Event(value=line, topic=self.topic, partition=0, offset=offset)
            if pacer is not None:
                try:
                    ts = parse_timestamp(self.decode(event)[self.timestamp_field])
                except (DecodeError, KeyError):
                    ts = None  # a broken record is not delayed; the runner dead-letters it
                if ts is not None:
                    pacer.wait(ts)
                    event.timestamp_ms = int(ts * 1000)
            if self._stop:
                return
            yield event


class _Pacer:
    """Sleeps so that event time advances ``speed`` times faster than wall time. A sleep ends early
    when ``stopped()`` turns true, and lasts at most ``max_wait`` seconds (a gap longer than that
    in the replayed stream is cut short, and the pace follows from there)."""

    def __init__(self, speed, stopped=lambda: False, max_wait=60.0):
        self.speed = speed
        self.stopped = stopped
        self.max_wait = max_wait
        self.origin = None

    def wait(self, ts):
        now = time.monotonic()
        if self.origin is None:
            self.origin = (ts, now)
            return
        due = self.origin[1] + (ts - self.origin[0]) / self.speed
        if due - now > self.max_wait:
            self.origin = (ts, now + self.max_wait)
            due = now + self.max_wait
        while not self.stopped():
            left = due - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, 0.1))


class CsvSource(_LineSource):
    """A CSV file with a header row; each row decodes to a dict of strings. The delimiter is read
    from the header when not given: the one of ``,`` ``;`` tab ``|`` it holds most often (a
    ``;``-separated export read with ``,`` would be one field per row, every row refused)."""

    DELIMITERS = ",;\t|"

    def __init__(self, path, timestamp_field=None, speed=None, delimiter=None):
        super().__init__(path, timestamp_field, speed, skip_header=True)
        self.delimiter = delimiter

    def _read_header(self, line):
        if self.delimiter is None:
            self.delimiter = max(self.DELIMITERS, key=line.count) if any(map(line.count, self.DELIMITERS)) else ","
        return next(csv.reader([line], delimiter=self.delimiter), [])

    def decode(self, event):
        try:
            row = next(csv.reader([event.value.decode("utf-8")], delimiter=self.delimiter))
        except (UnicodeDecodeError, csv.Error, StopIteration) as e:
            raise DecodeError(f"malformed CSV row: {e}") from None
        if len(row) != len(self.header):
            raise DecodeError(f"CSV row has {len(row)} fields, the header has {len(self.header)}")
        return dict(zip(self.header, row))


class JsonlSource(_LineSource):
    """One JSON object per line (JSON Lines); or a ``.json`` file holding one JSON array of
    objects, read element by element (the whole file is read at once then: use JSON Lines for
    large files). A ``.jsonl`` file is always read as lines, whatever its first line holds."""

    def _lines(self):
        if self.path == "-" or pathlib.Path(self.path).suffix.lower() != ".json":
            yield from super()._lines()
            return
        with open(self.path, "rb") as f:
            head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        if not head.startswith(b"["):
            yield from super()._lines()
            return
        yield from _json_array_elements(pathlib.Path(self.path).read_bytes())


def _json_array_elements(data: bytes) -> Iterator[bytes]:
    """The raw bytes of each element of the JSON array ``data``. What cannot be read as one (from
    the first malformed element on) is yielded as one last element, which the decoder refuses."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        yield data
        return
    decoder, pos, end = json.JSONDecoder(), text.index("[") + 1, len(text)
    while True:
        while pos < end and text[pos] in " \t\r\n":
            pos += 1
        if pos >= end:
            return
        if text[pos] == "]":
            if text[pos + 1:].strip():
                yield text[pos + 1:pos + 65537].strip().encode()  # after the array: refused, counted
            return
        try:
            _, stop = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            yield text[pos:pos + 65536].encode()
            return
        yield text[pos:stop].encode()
        pos = stop
        while pos < end and text[pos] in " \t\r\n":
            pos += 1
        if pos < end and text[pos] == ",":
            pos += 1
        elif pos < end and text[pos] != "]":
            yield text[pos:pos + 65536].encode()
            return


class RecordingSource(_LineSource):
    """Replays a recording made by :class:`RecordingSink`: the same bytes, keys, headers,
    partitions and offsets as the recorded Kafka messages."""

    def __init__(self, path):
        super().__init__(path)
        self._positions: dict = {}

    def __iter__(self):
        for offset, line in enumerate(self._lines()):
            r = json.loads(line)
            event = Event(
                value=base64.b64decode(r["value"]),
                topic=r["topic"],
                partition=r["partition"],
                offset=r["offset"],
                key=None if r["key"] is None else base64.b64decode(r["key"]),
                headers=[(k, base64.b64decode(v)) for k, v in r["headers"]],
                timestamp_ms=r["timestamp_ms"],
            )
            if event.offset <= self._positions.get((event.topic, event.partition), -1):
                continue
            yield event

    def seek(self, positions):
        self._positions = dict(positions)


class _FileSink(Sink):
    """A sink writing text to a file it owns (or to standard output for ``-``)."""

    def __init__(self, path, append=False, newline=None):
        self.path = path
        if path == "-":
            self._f = sys.stdout
            self._owned = False
        else:
            self._f = open(path, "a" if append else "w", encoding="utf-8", newline=newline)
            self._owned = True

    def write_raw(self, value, key=None, headers=None):
        self.write(_raw_record(value, key, headers))

    def flush(self):
        self._f.flush()

    def close(self):
        self.flush()
        if self._owned:
            self._f.close()


class JsonlSink(_FileSink):
    """Writes one JSON object per line to a file, or to standard output for ``-``."""

    def write(self, record, key=None, headers=None):
        self._f.write(encode_json(record).decode())
        self._f.write("\n")


class CsvSink(_FileSink):
    """Writes records as CSV rows; the columns are the keys of the first record (nested values
    are written as JSON)."""

    def __init__(self, path, append=False):
        super().__init__(path, append, newline="")
        self._writer = None
        self._columns = None

    def write(self, record, key=None, headers=None):
        if self._writer is None:
            self._columns = list(record)
            self._writer = csv.writer(self._f)
            if not self._owned or self._f.tell() == 0:
                self._writer.writerow(self._columns)
        self._writer.writerow(
            [json.dumps(v) if isinstance(v, (dict, list)) else v for v in (record.get(c) for c in self._columns)]
        )


class RecordingSink(Sink):
    """Records events byte for byte (value, key, headers, partition, offset, timestamp) as JSON
    lines with base64 payloads; :class:`RecordingSource` replays them."""

    def __init__(self, path, append=False):
        self._f = open(path, "a" if append else "w", encoding="utf-8")

    def write_event(self, event: Event):
        b64 = lambda b: None if b is None else base64.b64encode(b).decode()  # noqa: E731
        self._f.write(json.dumps({
            "topic": event.topic,
            "partition": event.partition,
            "offset": event.offset,
            "timestamp_ms": event.timestamp_ms,
            "key": b64(event.key),
            "value": b64(event.value),
            "headers": [[k, b64(v)] for k, v in event.headers],
        }) + "\n")

    def flush(self):
        self._f.flush()

    def close(self):
        self.flush()
        self._f.close()


def _raw_record(value: bytes, key, headers) -> dict:
    """A raw message as a JSON-safe dict: text where it is UTF-8, base64 where it is not."""
    def enc(b):
        if b is None:
            return None
        try:
            return {"text": b.decode("utf-8")}
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(b).decode()}

    return {
        "value": enc(value),
        "key": enc(key),
        "headers": {k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else v) for k, v in (headers or [])},
    }


__all__ = [
    "CsvSink", "CsvSource", "JsonlSink", "JsonlSource", "RecordingSink", "RecordingSource",
    "parse_timestamp",
]
