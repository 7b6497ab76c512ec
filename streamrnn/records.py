"""Decoded records -> ``(x, y)`` for the runner's tasks: which fields are the target and the
features, and which values a model may be given (finite numbers, categories as strings)."""

from __future__ import annotations

import datetime as dt
import logging
import math

from connectors.files import parse_timestamp

from .encoder import check_number
from .errors import BadInput

log = logging.getLogger(__name__)
LOOK_AT = 200  # events whose categorical values are looked at for the warnings below

TASKS = ("regress", "classify", "forecast", "anomaly")


class BadRecord(BadInput):
    """A decoded record that cannot be fed to the model (missing or ill-typed fields)."""


def _number(value, what):
    """A record's field as a number: JSON numbers, booleans, and numeric text (as CSV gives it);
    the checks are the estimators' (:func:`streamrnn.encoder.check_number`)."""
    if type(value) is float and value - value == 0.0:
        return value  # the common case: a finite float, as JSON gives it
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise BadRecord(f"{what} is not numeric: {value[:40]!r}") from None
    elif not isinstance(value, (int, float)):
        raise BadRecord(f"{what} is not numeric: {type(value).__name__}")
    try:
        return check_number(value, what)
    except BadInput as e:
        raise BadRecord(str(e)) from None


class RecordReader:
    """Turns a decoded record into ``(x, y)`` for a task, or raises :class:`BadRecord`.

    With ``features`` given, exactly those fields are read as numbers (``categorical`` ones as
    strings) and each must be present. Otherwise every field but the target, the key and the
    timestamp is a feature: numbers (and numeric strings, as CSV gives them) are numeric, other
    strings categorical, nulls missing.
    """

    def __init__(self, task, target, features=None, categorical=None, exclude=(), timestamp_field=None):
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        self.task = task
        self.target = target
        self.features = list(features or [])
        self.categorical = list(categorical or [])
        self.timestamp_field = timestamp_field
        self.exclude = {target, timestamp_field, *[e for e in exclude if e]}
        self._looked = 0
        self._distinct: dict = {}  # categorical field -> the values seen in the first LOOK_AT events
        self._warned: set = set()

    def _timestamp(self, record, x):
        """The ``timestamp_field`` as a UTC datetime in ``x``: the estimators turn it into calendar
        inputs (day of week, day of year, hour of day)."""
        raw = record.get(self.timestamp_field)
        if raw is not None:
            x[self.timestamp_field] = dt.datetime.fromtimestamp(parse_timestamp(raw), dt.timezone.utc)

    def _look(self, name, value):
        """Warn, once per field, about a string column that is one-hot encoded but probably should
        not be: a date (give it as --timestamp) or an identifier (nearly every value new)."""
        if name in self._warned:
            return
        if name not in self._distinct:
            try:
                dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                self._distinct[name] = set()
            else:
                self._warned.add(name)
                log.warning("field %r looks like a date but is read as a category (one input per value): give it "
                            "as --timestamp %s to get calendar inputs", name, name)
                return
        seen = self._distinct[name]
        seen.add(value)
        if len(seen) > LOOK_AT // 2:
            self._warned.add(name)
            log.warning("field %r had %d distinct values in the first %d events: each becomes an input of its own; "
                        "leave it out with --features, or give it as --key (one model per value)", name, len(seen),
                        self._looked)

    def read(self, record: dict):
        if self.task == "anomaly":  # no target: the event itself is what is scored
            y = None
        elif self.target not in record or record[self.target] is None:
            raise BadRecord(f"missing target field {self.target!r}")
        else:
            y = self._target(record[self.target])
        return self._features(record), y

    def _target(self, raw_y):
        if self.task == "classify":
            if isinstance(raw_y, (dict, list)):
                raise BadRecord(f"target {self.target!r} is not a label: {type(raw_y).__name__}")
            if isinstance(raw_y, float) and not math.isfinite(raw_y):
                raise BadRecord(f"target {self.target!r} is not finite")
            return raw_y
        return _number(raw_y, f"target {self.target!r}")

    def _features(self, record):
        x = {}
        if self.features or self.categorical:
            for name in self.features:
                if name not in record or record[name] is None:
                    raise BadRecord(f"missing feature field {name!r}")
                x[name] = _number(record[name], f"feature {name!r}")
            for name in self.categorical:
                v = record.get(name)
                if v is not None:
                    if isinstance(v, (dict, list)):
                        raise BadRecord(f"feature {name!r} is not a category: {type(v).__name__}")
                    x[name] = str(v)
            if self.timestamp_field is not None:
                self._timestamp(record, x)
            return x
        for name, v in record.items():
            if name in self.exclude or v is None:
                continue
            if isinstance(v, (bool, int, float)):
                x[name] = _number(v, f"feature {name!r}")
            elif isinstance(v, str):
                try:
                    x[name] = _number(v, f"feature {name!r}")
                except BadRecord:
                    if v.strip().lower() in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity"):
                        raise
                    x[name] = v
                    if self._looked < LOOK_AT:
                        self._look(name, v)
            else:
                raise BadRecord(f"feature {name!r} has unsupported type {type(v).__name__}")
        if self.timestamp_field is not None:
            self._timestamp(record, x)
        self._looked += 1
        return x
