"""A dataset bundled with River, replayed as a stream of JSON events."""

from __future__ import annotations

import datetime as dt
import json

from .base import Event, OnePartitionSource


def _jsonable(v):
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    return v


class RiverDatasetSource(OnePartitionSource):
    """Events ``{"<feature>": ..., "<target>": y}`` from ``river.datasets.<name>`` (no download:
    only datasets shipped inside the river package work offline)."""

    def __init__(self, name: str, target: str = "y"):
        from river import datasets

        try:
            self.dataset = getattr(datasets, name)()
        except AttributeError:
            raise ValueError(f"river.datasets has no dataset {name!r}") from None
        self.name = self.topic = name
        self.target = target

    def __iter__(self):
        for offset, (x, y) in self._unread(self.dataset):
            record = {k: _jsonable(v) for k, v in x.items()}
            record[self.target] = _jsonable(y)
            yield Event(value=json.dumps(record).encode(), topic=self.name, partition=0, offset=offset)
