"""A dataset bundled with River, replayed as a stream of JSON events."""

from __future__ import annotations

import datetime as dt
import json

from .base import Event, Source


def _jsonable(v):
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    return v


class RiverDatasetSource(Source):
    """Events ``{"<feature>": ..., "<target>": y}`` from ``river.datasets.<name>`` (no download:
    only datasets shipped inside the river package work offline)."""

    def __init__(self, name: str, target: str = "y"):
        from river import datasets

        try:
            self.dataset = getattr(datasets, name)()
        except AttributeError:
            raise ValueError(f"river.datasets has no dataset {name!r}") from None
        self.name = name
        self.target = target
        self._start_after = -1

    def seek(self, positions):
        self._start_after = positions.get((self.name, 0), -1)

    def __iter__(self):
        for offset, (x, y) in enumerate(self.dataset):
            if offset <= self._start_after:
                continue
            record = {k: _jsonable(v) for k, v in x.items()}
            record[self.target] = _jsonable(y)
            yield Event(value=json.dumps(record).encode(), topic=self.name, partition=0, offset=offset)
