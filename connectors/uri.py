"""Connector URIs -> sources and sinks (see the package docstring)."""

from __future__ import annotations

import os
import pathlib

from .base import NullSink
from .files import CsvSink, CsvSource, JsonlSink, JsonlSource, RecordingSink, RecordingSource
from .kafka import KafkaSink, KafkaSource, parse_kafka_uri

_JSONL = {".jsonl", ".json", ".ndjson"}


def _file_path(uri: str) -> str:
    if "://" in uri and not uri.startswith("file:"):
        scheme = uri.split("://", 1)[0]
        raise ValueError(f"unknown scheme {scheme}:// in {uri!r}: use kafka://HOST:PORT/TOPIC, file:PATH, "
                         "river:NAME (source), null: (sink) or -")
    return uri[len("file:"):] if uri.startswith("file:") else uri


def is_text_source(uri: str) -> bool:
    """Whether ``open_source`` reads ``uri`` as a text file (symbols, not records)."""
    if uri == "-" or uri.startswith(("kafka://", "river:")) or ("://" in uri and not uri.startswith("file:")):
        return False
    return pathlib.Path(_file_path(uri)).suffix.lower() == ".txt"


def kafka_client(name: str | None = None) -> str:
    """'kafka-python' (the default) or 'confluent' (librdkafka, much faster), from ``name`` or
    STREAMRNN_KAFKA_CLIENT."""
    name = name or os.environ.get("STREAMRNN_KAFKA_CLIENT", "kafka-python")
    if name not in ("kafka-python", "confluent"):
        raise ValueError(f"Kafka client must be 'kafka-python' or 'confluent', got {name!r}")
    return name


def open_source(uri: str, *, group_id="streamrnn", client_options=None, idle_timeout=None,
                timestamp_field=None, speed=None, text_mode="chars", context=1, kafka_client_name=None,
                **kafka_kw):
    """A source for ``uri``. ``timestamp_field``/``speed`` pace file replays; ``text_mode`` and
    ``context`` configure text files."""
    if uri.startswith("kafka://"):
        servers, topic = parse_kafka_uri(uri)
        cls = KafkaSource
        if kafka_client(kafka_client_name) == "confluent":
            from .kafka_confluent import ConfluentKafkaSource as cls
        return cls(servers, topic.split(","), group_id=group_id, client_options=client_options,
                   idle_timeout=idle_timeout, **kafka_kw)
    if uri.startswith("river:"):
        from .river_source import RiverDatasetSource

        return RiverDatasetSource(uri[len("river:"):])
    if uri == "-":
        return JsonlSource("-", timestamp_field, speed)
    path = _file_path(uri)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path} (source {uri!r})")
    suffix = pathlib.Path(path).suffix.lower()
    if suffix == ".csv":
        return CsvSource(path, timestamp_field, speed)
    if suffix in _JSONL:
        return JsonlSource(path, timestamp_field, speed)
    if suffix == ".rec":
        return RecordingSource(path)
    if suffix == ".txt":
        from .text import TextSource

        return TextSource(path, mode=text_mode, context=context)
    raise ValueError(f"cannot tell the format of {uri!r}: use .csv, .jsonl, .txt or .rec")


def open_sink(uri: str, *, client_options=None, append=False, kafka_client_name=None, transaction=None):
    """A sink for ``uri``; a Kafka sink writes into ``transaction`` when one is given."""
    if uri.startswith("kafka://"):
        servers, topic = parse_kafka_uri(uri)
        if kafka_client(kafka_client_name) == "confluent":
            from .kafka_confluent import ConfluentKafkaSink

            return ConfluentKafkaSink(servers, topic, client_options=client_options, transaction=transaction)
        return KafkaSink(servers, topic, client_options=client_options, transaction=transaction)
    if uri in ("null:", "null"):
        return NullSink()
    if uri == "-":
        return JsonlSink("-")
    path = _file_path(uri)
    suffix = pathlib.Path(path).suffix.lower()
    if suffix == ".csv":
        return CsvSink(path, append=append)
    if suffix in _JSONL:
        return JsonlSink(path, append=append)
    if suffix == ".rec":
        return RecordingSink(path, append=append)
    raise ValueError(f"cannot tell the format of {uri!r}: use .csv, .jsonl or .rec")
