"""Sources and sinks that feed streamrnn: Kafka topics, files (CSV, JSON Lines, text,
recordings of topics), River datasets; and a local Kafka broker for development and tests.

:func:`open_source` and :func:`open_sink` turn the runner's URIs into connectors::

    kafka://HOST:PORT[,HOST:PORT]/TOPIC   a Kafka topic (source: joins --group)
    file:PATH                             CSV (.csv), JSON Lines (.jsonl/.json/.ndjson),
                                          text (.txt) or a topic recording (.rec)
    -                                     JSON Lines on standard input / output
    river:NAME                            a dataset bundled with River (source only)
    null:                                 discard (sink only)
"""

from .base import DecodeError, Event, ListSink, NullSink, Sink, Source, decode_json, encode_json
from .uri import open_sink, open_source

__all__ = ["DecodeError", "Event", "ListSink", "NullSink", "Sink", "Source", "decode_json", "encode_json",
           "open_sink", "open_source"]
